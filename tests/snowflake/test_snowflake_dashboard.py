"""The dashboard's loaders on Snowflake (fakesnow, server mode) return what they return on DuckDB.

Both warehouses hold the gold that tests/snowflake/gold.py built from one input. Every loader of
bankpipe.dashboard.queries runs against each (Streamlit's cache bypassed), with no filter and with
every filter set, and the frames are compared after normalising column case, dtypes and row order.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st

from bankpipe.dashboard import queries
from bankpipe.dashboard.filters import Filters
from bankpipe.settings import Settings
from bankpipe.warehouse import connect

from .gold import Built, comparable

pytestmark = [pytest.mark.snowflake_emulated, pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("dbt.adapters.snowflake")


def normalised(df: pd.DataFrame) -> pd.DataFrame:
    """Lower-case columns, numbers as floats rounded to 6 places, rows in a stable order."""
    out = comparable(df)
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].astype("Float64").round(6)
    return out.sort_values(list(out.columns), ignore_index=True, na_position="first")


def same(duck: Any, snow: Any, where: str) -> None:
    """Equal results: frames after normalising, dicts key by key, anything else as is."""
    if isinstance(duck, pd.DataFrame):
        assert isinstance(snow, pd.DataFrame), where
        assert len(duck) == len(snow), f"{where}: {len(duck)} rows on DuckDB, {len(snow)} on Snowflake"
        pd.testing.assert_frame_equal(normalised(duck), normalised(snow), obj=where, check_dtype=False)
    elif isinstance(duck, dict):
        assert isinstance(snow, dict) and duck.keys() == snow.keys(), where
        for key in duck:
            same(duck[key], snow[key], f"{where}[{key}]")
    else:
        assert duck == snow, where


def both(built: Built, loader: Any, *args: Any) -> tuple[Any, Any]:
    """One loader's result on DuckDB and on the emulator (bypassing st.cache_data)."""
    out = []
    for settings in (built.duckdb, built.snowflake):
        out.append(loader.__wrapped__(settings, queries.source(settings), *args))
    return out[0], out[1]


def narrow(settings: Settings, opts: queries.Options) -> Filters:
    """Every filter set, around the busiest bank × segment × home province (so something is left)."""
    with connect(settings, read_only=True) as wh:
        # The seed's transactions say nowhere where they happened: they count at the customer's home.
        bank, segment, province, first = wh.fetchone(
            """select f.bank_key, c.segment, l.province, min(f.transaction_date)
               from gold.fact_transaction_enriched f
               join gold.dim_customers c on c.customer_key = f.customer_key and c.is_current
               join gold.dim_locations l on l.location_key = c.location_key
               group by 1, 2, 3 order by count(*) desc, 1, 2, 3 limit 1"""
        )
    other = next(s for s in opts.segments if s != segment)
    return Filters(
        start=first + timedelta(days=1),  # so that the date range leaves some of the slice out
        end=opts.last_date,
        banks=(bank,),
        segments=(segment, other),
        provinces=(province,),
    )


def test_every_loader_gives_the_same_results_on_snowflake_as_on_duckdb(on_emulator: Built) -> None:
    built = on_emulator
    duck_src, snow_src = queries.source(built.duckdb), queries.source(built.snowflake)
    assert snow_src.version == 0 and snow_src.warehouse == "snowflake://fakesnow/BANKING_DB"
    # the DuckDB source is versioned by its file, so a write refreshes cached results at once
    assert duck_src.version > 0 and duck_src.warehouse == str(built.duckdb.warehouse_file)

    ready = both(built, queries.readiness)
    assert ready[0] == ready[1] == queries.Readiness(True, True, 60)
    opts, snow_opts = both(built, queries.options)
    assert opts is not None and opts == snow_opts
    assert opts.banks and opts.segments and opts.provinces

    narrowed = narrow(built.duckdb, opts)
    for flt in (Filters(), narrowed):
        for grain in queries.GRAINS:
            overview = both(built, queries.overview, flt, grain)
            same(*overview, f"overview({flt}, {grain})")
            assert overview[1]["kpis"]["transactions"].iloc[0] > 0, f"{flt} leaves nothing to compare"
            same(*both(built, queries.risk, flt, grain), f"risk({flt}, {grain})")
        for name, loader in (("customers", queries.customers), ("fx", queries.fx), ("geography", queries.geography)):
            same(*both(built, loader, flt), f"{name}({flt})")
        # Unfiltered, the busiest province: most provinces hold no customer of the small sample.
        province = (flt.provinces or narrowed.provinces)[0]
        trend = both(built, queries.province_trend, flt, province)
        same(*trend, f"province_trend({flt}, {province})")
        assert not trend[1].empty
        # No model has been trained on this input: both say so the same way (see the test below).
        assert both(built, queries.model_monitoring, flt) == (None, None)

    # The KPIs as the Overview page shows them, and against gold itself.
    snow = both(built, queries.overview, Filters(), "day")[1]
    kpis = normalised(snow["kpis"]).iloc[0]
    assert kpis["transactions"] == 60
    with connect(built.duckdb, read_only=True) as wh:
        value_idr, active = wh.fetchone(
            "select sum(case when status = 'Success' then amount_idr end), count(distinct account_key)"
            " from gold.fact_transaction_enriched"
        )
    assert kpis["value_idr"] == pytest.approx(float(value_idr)) and kpis["active_accounts"] == active
    assert int(snow["series"]["transactions"].sum()) == 60

    # A transaction's history (the alert drill-down) by id, binding text and dates.
    with connect(built.duckdb, read_only=True) as wh:
        (tid,) = wh.fetchone("select min(transaction_id) from gold.fact_transaction_enriched")
    history = both(built, queries.transaction_history, tid)
    same(*history, f"transaction_history({tid})")
    assert len(history[1]["anchor"]) == 1 and not history[1]["history"].empty

    # Data quality: the parts that depend on the data, not on when each warehouse was loaded.
    duck_dq, snow_dq = both(built, queries.data_quality)
    for key in ("rejects_by_rule", "reconciliation", "tests"):
        same(duck_dq[key], snow_dq[key], f"data_quality[{key}]")
    same(duck_dq["ingested"].drop(columns="day"), snow_dq["ingested"].drop(columns="day"), "data_quality[ingested]")
    assert list(snow_dq["runs"].columns) == list(duck_dq["runs"].columns)
    gold_rows = {k: v for k, v in duck_dq["status"]["tables"].items() if k.startswith("gold.")}
    assert gold_rows and {k: snow_dq["status"]["tables"].get(k) for k in gold_rows} == gold_rows


MODEL_TABLES = {
    "gold.ml_transaction_scores": "transaction_id varchar, model_name varchar, model_version varchar, score double",
    "gold.fraud_alerts": "transaction_id varchar, account_id varchar, model_name varchar, model_version varchar,"
    " score double, threshold double, alerted_at {tz}, raised_by varchar",
    "gold.ml_model_metrics": "metric_date date, model_name varchar, model_version varchar, target varchar,"
    " n_scored bigint, n_alerts bigint, alert_rate double, labels_matured boolean, roc_auc double",
}


def model_outputs(settings: Settings) -> dict[str, pa.Table]:
    """Deterministic scores for every transaction, alerts above 0.7, one metrics row per day (v1 and v2)."""
    with connect(settings, read_only=True) as wh:
        rows = wh.fetchall(
            "select transaction_id, account_id, transaction_date from gold.fact_transaction_enriched order by 1"
        )
    scores = {tid: (int(tid.rsplit("-", 1)[1]) * 37 % 100) / 100 + 0.004 for tid, _, _ in rows}
    alerted = [(tid, acc) for tid, acc, _ in rows if scores[tid] >= 0.7]
    days = sorted({d for _, _, d in rows})
    at = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    return {
        "gold.ml_transaction_scores": pa.table(
            {
                "transaction_id": [t for t, _, _ in rows] * 2,
                "model_name": ["bankpipe-fraud"] * (2 * len(rows)),
                "model_version": ["1"] * len(rows) + ["2"] * len(rows),
                "score": [scores[t] for t, _, _ in rows] + [scores[t] / 2 for t, _, _ in rows],
            }
        ),
        "gold.fraud_alerts": pa.table(
            {
                "transaction_id": [t for t, _ in alerted],
                "account_id": [a for _, a in alerted],
                "model_name": ["bankpipe-fraud"] * len(alerted),
                "model_version": ["1"] * len(alerted),
                "score": [scores[t] for t, _ in alerted],
                "threshold": [0.7] * len(alerted),
                "alerted_at": [at] * len(alerted),
                "raised_by": ["batch"] * len(alerted),
            }
        ),
        "gold.ml_model_metrics": pa.table(
            {
                "metric_date": days * 2,
                "model_name": ["bankpipe-fraud"] * (2 * len(days)),
                "model_version": ["1"] * len(days) + ["2"] * len(days),
                "target": ["fraud"] * (2 * len(days)),
                "n_scored": [10] * (2 * len(days)),
                "n_alerts": [1] * (2 * len(days)),
                "alert_rate": [0.1] * (2 * len(days)),
                "labels_matured": [i < len(days) - 2 for i in range(len(days))] * 2,
                "roc_auc": [0.75] * (2 * len(days)),
            }
        ),
    }


@pytest.fixture
def with_model_outputs(on_emulator: Built) -> Iterator[Built]:
    """The ML stage's gold tables (scores, alerts, daily metrics), the same rows on both warehouses."""
    data = model_outputs(on_emulator.duckdb)
    for settings in (on_emulator.duckdb, on_emulator.snowflake):
        with connect(settings) as wh:
            tz = "timestamptz" if wh.dialect == "duckdb" else "timestamp_tz"
            for table, columns in MODEL_TABLES.items():
                wh.execute(f"create or replace table {table} ({columns.format(tz=tz)})")
                assert wh.append_arrow(table, data[table]) == data[table].num_rows
    # Snowflake's Source has no version that changes on a write (only the TTL refreshes): results cached
    # by an earlier test, from before these tables existed, must not answer for them.
    st.cache_data.clear()
    yield on_emulator
    for settings in (on_emulator.duckdb, on_emulator.snowflake):
        with connect(settings) as wh:
            for table in MODEL_TABLES:
                wh.execute(f"drop table if exists {table}")


def test_model_and_alert_queries_give_the_same_results_on_snowflake(with_model_outputs: Built) -> None:
    built = with_model_outputs
    opts = both(built, queries.options)[0]
    for flt in (narrow(built.duckdb, opts), Filters()):
        monitoring = both(built, queries.model_monitoring, flt)
        same(*monitoring, f"model_monitoring({flt})")
        assert not monitoring[1]["metrics"].empty and not monitoring[1]["bins"].empty
        risk = both(built, queries.risk, flt, "week")
        same(*risk, f"risk({flt})")
        same(*both(built, queries.geography, flt), f"geography({flt})")
    # Unfiltered (the loop's last round): alerts, riskiest accounts and one alert's drill-down.
    assert not risk[1]["alerts"].empty and risk[1]["accounts"]["alerts"].sum() > 0
    tid = risk[1]["alerts"]["transaction_id"].iloc[0]
    history = both(built, queries.transaction_history, tid)
    same(*history, f"transaction_history({tid})")
    assert history[1]["anchor"]["alert_score"].iloc[0] >= 0.7
