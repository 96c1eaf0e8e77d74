"""ML features, training data and batch scoring on Snowflake (fakesnow, server mode) match DuckDB.

Both warehouses hold the silver and gold that tests/snowflake/gold.py built from one input. The
seed alone is thin for features (one currency, no fraud case, one version per account), so each
test adds the same extras to both for its duration: a bronze tail (a landed file not transformed
yet: a USD, a night, a weekend transaction, a duplicate id, an invalid amount), a later version of
an account and a confirmed fraud case. The feature SQL then runs in each warehouse (temp tables
and the query) and only the target rows come back; scoring writes through the Warehouse interface.
"""

from __future__ import annotations

import hashlib
import json
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlglot

from bankpipe.ml import features, monitor, registry, score, train
from bankpipe.settings import Settings
from bankpipe.warehouse import Warehouse, connect
from bankpipe.warehouse.base import JsonFile

from .gold import Built, comparable

pytestmark = [pytest.mark.snowflake_emulated, pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("dbt.adapters.snowflake")

BATCH = "ml-emulator-test"
ACCOUNT = "ACC-00004"  # a seed account; gets a second version in the middle of the tail
# Batch ids name the load time, which differs between the two builds: compared apart.
IGNORED = ["batch_id"]


# id, date, time, account, amount, currency, channel, at the test location, status — as a landed file says them.
TAIL = [
    # Friday 02:30, before the account's new version: night, USD priced by the as-of rates.
    ("TRX-ML-001", "2025-12-26", "02:30:00", ACCOUNT, "150.25", "usd", "ATM", True, "Success"),
    # Saturday, after the new version; same place and channel as the fraud reported in between.
    ("TRX-ML-002", "2025-12-27", "10:00:00", ACCOUNT, "5000000", None, "atm", True, "Failed"),
    ("TRX-ML-003", "2025-12-27", "10:00:30", "ACC-00005", "75000.50", None, "mobile", False, "Success"),
    # A currency with no rate: its IDR amount (and the ratios built on it) stay null. (Yen have no
    # minor unit: "12.5" would be rejected as too_many_decimals, by silver's rules on the tail too.)
    ("TRX-ML-004", "2025-12-27", "11:15:00", "ACC-00005", "1250", "JPY", None, False, "Pending"),
    # Silver already holds this id (a duplicate) and an amount of 0 is invalid: neither is a target.
    ("TRX-000001", "2025-12-27", "12:00:00", ACCOUNT, "1000", None, None, False, "Success"),
    ("TRX-ML-005", "2025-12-27", "12:00:00", ACCOUNT, "0", None, None, False, "Success"),
]


def tail_records(location: str) -> list[dict[str, Any]]:
    """Stream records landed after the last transform (features read them from bronze)."""
    return [
        {
            "id": tid,
            "date": day,
            "timestamp": time,
            "account_id": account,
            "jumlah_transaksi": amount,
            "tipe_transaksi": "Transfer",
            "akun_tujuan": "ACC-00002",
            "status": status,
            "mata_uang": currency,
            "channel": channel,
            "location_id": location if located else None,
        }
        for tid, day, time, account, amount, currency, channel, located, status in TAIL
    ]


def add_extras(wh: Warehouse, spool: Path, location: str) -> None:
    """The tail, the account version and the fraud case (all tagged BATCH, removed by `remove_extras`)."""
    spool.write_text("".join(json.dumps(r) + "\n" for r in tail_records(location)))
    sha = hashlib.sha256(spool.read_bytes()).hexdigest()
    loaded_at = datetime.now(UTC)
    wh.load_json_files([JsonFile(spool, spool.name, sha, "newline_delimited")], BATCH, loaded_at)
    # The seed's version of the account was extracted today; these two come before it, each loaded
    # as it happened (a version is usable from max(updated_at, load)): the first holds from 12-20,
    # the second from Friday 12:00 in Jakarta (between ML-001 and ML-002).
    for updated_at, balance in (
        (datetime(2025, 12, 20, tzinfo=UTC), "1000000.00"),
        (datetime(2025, 12, 26, 5, tzinfo=UTC), "123456789.00"),
    ):
        wh.execute(
            "insert into bronze.raw_accounts (_batch_id, _loaded_at, _source, _is_deleted, _created_at,"
            " _updated_at, id, customer_id, tipe_akun, saldo)"
            " select ?, ?, ?, false, _created_at, ?, id, customer_id, tipe_akun, ? from bronze.raw_accounts"
            " where id = ? and _batch_id <> ? limit 1",
            [BATCH, updated_at, "ml-test", updated_at, balance, ACCOUNT, BATCH],
        )
    # The account's customer as known since 12-20 too (the seed's own version is from today), so the
    # tail's master features are not missing (before a first known version they would be).
    wh.execute(
        "insert into bronze.raw_customers (_batch_id, _loaded_at, _source, _is_deleted, _created_at, _updated_at,"
        " id, nama_depan, nama_belakang, email, segmen, location_id, bank_id)"
        " select ?, ?, ?, false, _created_at, ?, id, nama_depan, nama_belakang, email, segmen, location_id, bank_id"
        " from bronze.raw_customers where _batch_id <> ?"
        " and id = (select customer_id from bronze.raw_accounts where id = ? limit 1) limit 1",
        [BATCH, datetime(2025, 12, 20, tzinfo=UTC), "ml-test", datetime(2025, 12, 20, tzinfo=UTC), BATCH, ACCOUNT],
    )
    # TRX-ML-001 confirmed as fraud, reported (bank time) before TRX-ML-002; ACC-00005's first
    # transaction too. Each loaded the moment it was reported (UTC = bank time - 7 h): usable from then.
    for tid, reported, loaded in (
        ("TRX-ML-001", "2025-12-26 20:00:00", datetime(2025, 12, 26, 13, tzinfo=UTC)),
        (first_transaction(wh, "ACC-00005"), "2025-12-25 10:00:00", datetime(2025, 12, 25, 3, tzinfo=UTC)),
    ):
        wh.execute(
            "insert into bronze.raw_fraud_cases (_batch_id, _loaded_at, _source, _is_deleted, _created_at,"
            " _updated_at, transaction_id, confirmed_fraud, reported_at)"
            " values (?, ?, 'ml-test', false, ?, ?, ?, ?, ?)",
            [BATCH, loaded, loaded, loaded, tid, "true", reported],
        )


def first_transaction(wh: Warehouse, account: str) -> str:
    """The account's first transaction in silver (the input files decide which id that is)."""
    row = wh.fetchone(
        "select min(transaction_id) from silver.base_transactions where account_id = ? and rejection_rule is null"
        " and transaction_date < '2025-12-25'",
        [account],
    )
    assert row and row[0], f"no transaction of {account} before 2025-12-25 in the input"
    return str(row[0])


def remove_extras(wh: Warehouse) -> None:
    wh.execute("delete from bronze.raw_transaction_records where _batch_id = ?", [BATCH])
    wh.execute("delete from bronze.raw_accounts where _batch_id = ?", [BATCH])
    wh.execute("delete from bronze.raw_customers where _batch_id = ?", [BATCH])
    wh.execute("delete from bronze.raw_fraud_cases where _batch_id = ?", [BATCH])
    wh.execute("delete from ops.run_log where step = 'ml.monitor'")
    for table in ("gold.ml_transaction_scores", "gold.fraud_alerts", "gold.ml_model_metrics"):
        wh.execute(f"drop table if exists {table}")


@pytest.fixture
def with_extras(on_emulator: Built, tmp_path: Path) -> Iterator[Built]:
    with connect(on_emulator.duckdb) as wh:
        row = wh.fetchone("select min(location_id) from silver.int_locations_geocoded where latitude is not null")
    assert row and row[0], "the seed has no geocoded location"
    location = row[0]
    try:
        for settings in (on_emulator.duckdb, on_emulator.snowflake):
            with connect(settings) as wh:
                add_extras(wh, tmp_path / f"landed-{settings.warehouse}.jsonl", location)
        yield on_emulator
    finally:
        for settings in (on_emulator.duckdb, on_emulator.snowflake):
            with connect(settings) as wh:
                remove_extras(wh)


def normalised(df: pd.DataFrame, ignore: list[str] = IGNORED) -> pd.DataFrame:
    """Lower-case columns; numbers as float64, times as datetime64[us], text as objects; rows by id."""
    out = comparable(df.drop(columns=[c for c in df.columns if c.lower() in ignore]))
    keys = [c for c in ("transaction_id", "model_name", "metric_date") if c in out.columns]
    return out.sort_values(keys, ignore_index=True)


def assert_same(duck: pd.DataFrame, snow: pd.DataFrame, what: str, ignore: list[str] = IGNORED) -> None:
    assert len(duck) == len(snow), f"{what}: {len(duck)} rows on DuckDB, {len(snow)} on Snowflake"
    # Same SQL, same inputs: floats may differ only in the last bits (DOUBLE maths on both).
    pd.testing.assert_frame_equal(
        normalised(duck, ignore), normalised(snow, ignore), check_exact=False, rtol=1e-12, atol=1e-9, obj=what
    )


def features_on(settings: Settings, where: str, params: list[Any] | None = None, **kw: Any) -> pd.DataFrame:
    with connect(settings) as wh:
        return features.compute(wh, where, params, **kw)


PREDICATES: list[tuple[str, list[Any] | None, bool]] = [
    ("true", None, False),  # everything (batch scoring's first pass)
    ("transaction_date >= ? and transaction_date < ?", [date(2025, 12, 25), date(2025, 12, 27)], False),  # training
    ("batch_id = ?", [BATCH], True),  # a landed file, from the tail only (real-time scoring)
]


def test_features_are_computed_in_snowflake_and_equal_duckdbs(with_extras: Built) -> None:
    built = with_extras
    for where, params, new_only in PREDICATES:
        duck = features_on(built.duckdb, where, params, new_only=new_only)
        snow = features_on(built.snowflake, where, params, new_only=new_only)
        assert not duck.empty, where
        assert list(snow.columns) == list(duck.columns), where
        assert_same(duck, snow, f"features where {where}")
        # Rows arrive ordered by time on both (the query's ORDER BY ran in the warehouse).
        assert snow["transaction_at"].is_monotonic_increasing, where

    everything = features_on(built.duckdb, "true").set_index("transaction_id")
    tail = everything.loc[["TRX-ML-001", "TRX-ML-002", "TRX-ML-003", "TRX-ML-004"]]
    # What the comparison above covered beyond the seed (else it would prove little).
    assert "TRX-ML-005" not in everything.index and (everything.index == "TRX-000001").sum() == 1
    assert tail.loc["TRX-ML-001", "is_foreign_currency"] == 1 and tail.loc["TRX-ML-001", "is_night"] == 1
    assert np.isfinite(tail.loc["TRX-ML-001", "log_amount_idr"]) and np.isnan(tail.loc["TRX-ML-004", "log_amount_idr"])
    assert tail.loc["TRX-ML-002", "is_weekend"] == 1
    assert tail.loc["TRX-ML-001", "log_balance_idr"] != tail.loc["TRX-ML-002", "log_balance_idr"]
    assert tail.loc["TRX-ML-002", "account_fraud_reports_30d"] == 1
    assert tail.loc["TRX-ML-003", "account_fraud_reports_30d"] == 1
    assert np.isfinite(tail.loc["TRX-ML-002", "distance_from_home_km"])
    assert tail.loc["TRX-ML-002", ["location_fraud_reports_30d", "point_fraud_reports_7d"]].tolist() == [1, 1]
    assert set(features_on(built.snowflake, "batch_id = ?", [BATCH], new_only=True)["batch_id"]) == {BATCH}


def test_training_data_is_the_same_on_snowflake(with_extras: Built) -> None:
    # Training pulls the window's feature rows and the labels to the client (scikit-learn fits in memory).
    cfg = train.TrainConfig(test_days=2, validation_days=1, warmup_days=0, gap_days=0, maturity_days=0)
    duck, duck_split = train.load_data(with_extras.duckdb, "fraud", cfg)
    snow, snow_split = train.load_data(with_extras.snowflake, "fraud", cfg)
    assert snow_split == duck_split
    assert_same(duck, snow, "training frame")
    with connect(with_extras.duckdb) as wh:
        first = first_transaction(wh, "ACC-00005")
    assert sorted(snow.loc[snow["y_test"] == 1, "transaction_id"]) == sorted([first, "TRX-ML-001"])


@dataclass
class Models:
    """Two small fitted pipelines standing in for the registry's champions (MLflow is not under test)."""

    fraud: registry.ModelInfo
    status: registry.ModelInfo
    pipelines: dict[str, Any]


def fitted_models(settings: Settings) -> Models:
    df = features_on(settings, "true")
    cfg = train.TrainConfig()
    pipelines, infos = {}, {}
    for target in ("fraud", "status"):
        num, cat = features.feature_columns(target)
        model = train.make_lr(num, cat, cfg)
        # Any labels will do: the test compares scores, not quality.
        y = (df["log_amount_idr"] > df["log_amount_idr"].median()).astype(int) if target == "fraud" else df["status"]
        model.fit(df[num + cat], y)
        name = registry.model_name(target)
        tags = {"features": json.dumps(num + cat), "feature_version": features.FEATURE_VERSION}
        if target == "fraud":
            # Some rows above it, some below: alerts are raised and compared too.
            tags["threshold"] = str(float(np.quantile(model.predict_proba(df[num + cat])[:, 1], 0.7)))
        pipelines[name] = model
        infos[target] = registry.ModelInfo(name, "1", "run-test", tags)
    return Models(infos["fraud"], infos["status"], pipelines)


@pytest.fixture
def champions(with_extras: Built, monkeypatch: pytest.MonkeyPatch) -> Models:
    models = fitted_models(with_extras.duckdb)
    infos = {"fraud": models.fraud, "status": models.status}
    # Monitoring reads each version's training tags from the registry: none here (no PSI reference).
    runs = types.SimpleNamespace(
        get_model_version=lambda name, version: types.SimpleNamespace(run_id="run-test", tags={})
    )
    monkeypatch.setattr(registry, "client", lambda settings: runs)
    monkeypatch.setattr(registry, "champion", lambda settings, target, mlc=None: infos[target])
    monkeypatch.setattr(registry, "load_model", lambda info: models.pipelines[info.name])
    return models


def outputs(settings: Settings, current: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores and alerts: every row written, or (`current`) the current-score views."""
    scores_from, alerts_from = (
        ("gold.ml_current_scores", "gold.current_fraud_alerts")
        if current
        else ("gold.ml_transaction_scores", "gold.fraud_alerts")
    )
    with connect(settings) as wh:
        scores = wh.fetch_arrow(
            f"select transaction_id, model_name, model_version, score, label, scored_by from {scores_from}"
        ).to_pandas()
        alerts = wh.fetch_arrow(
            "select transaction_id, account_id, model_name, model_version, score, threshold, transaction_at,"
            f" raised_by from {alerts_from}"
        ).to_pandas()
    return scores, alerts


def test_batch_scores_and_alerts_are_the_same_on_snowflake(with_extras: Built, champions: Models) -> None:
    built = with_extras
    summaries = {}
    for settings in (built.duckdb, built.snowflake):
        scorer = score.Scorer(settings)
        with connect(settings) as wh:
            summaries[settings.warehouse] = scorer.score(wh, "true", [], "batch")
            # Incremental: a second pass finds nothing left to score.
            assert scorer.score(wh, "true", [], "batch").rows == 0
    duck, snow = summaries["duckdb"], summaries["snowflake"]
    assert snow.scored == duck.scored and snow.alerts == duck.alerts > 0
    (duck_scores, duck_alerts), (snow_scores, snow_alerts) = outputs(built.duckdb), outputs(built.snowflake)
    assert len(snow_scores) == 2 * len(features_on(built.duckdb, "true"))
    assert_same(duck_scores, snow_scores, "gold.ml_transaction_scores")
    assert_same(duck_alerts, snow_alerts, "gold.fraud_alerts")

    # --rescore all: the champion's rows are added under `rescore` in one transaction (append-only:
    # the served batch rows stay); the current-score views then show the rescoring.
    for settings in (built.duckdb, built.snowflake):
        with connect(settings) as wh:
            assert score.Scorer(settings).rescore(wh, "all").rows == len(duck_scores)
    (duck_all, duck_all_alerts), (snow_all, snow_all_alerts) = outputs(built.duckdb), outputs(built.snowflake)
    assert snow_all["scored_by"].value_counts().to_dict() == {"batch": len(duck_scores), "rescore": len(duck_scores)}
    assert_same(duck_all, snow_all, "gold.ml_transaction_scores after --rescore all")
    assert_same(duck_all_alerts, snow_all_alerts, "gold.fraud_alerts after --rescore all")
    (duck_cur, duck_cur_alerts) = outputs(built.duckdb, current=True)
    (snow_cur, snow_cur_alerts) = outputs(built.snowflake, current=True)
    assert set(snow_cur["scored_by"]) == {"rescore"} and len(snow_cur) == len(duck_scores)
    assert set(snow_cur_alerts["raised_by"]) == {"rescore"} and len(snow_cur_alerts) == duck.alerts
    assert_same(duck_cur, snow_cur, "gold.ml_current_scores after --rescore all")
    assert_same(duck_cur_alerts, snow_cur_alerts, "gold.current_fraud_alerts after --rescore all")


def test_monitoring_metrics_are_the_same_on_snowflake(with_extras: Built, champions: Models) -> None:
    # `bankpipe ml monitor`: scores joined to transactions and labels in the warehouse, metrics on the client.
    metrics = []
    for settings in (with_extras.duckdb, with_extras.snowflake):
        with connect(settings) as wh:
            score.Scorer(settings).score(wh, "true", [], "batch")
        assert monitor.run(settings).rows > 0
        with connect(settings) as wh:
            metrics.append(wh.fetch_arrow("select * from gold.ml_model_metrics").to_pandas())
    duck, snow = metrics
    assert snow["labels_matured"].any() and snow["roc_auc"].notna().any()
    assert_same(duck, snow, "gold.ml_model_metrics", ignore=["computed_at"])


def test_a_real_account_gets_native_asof_joins_and_no_duckdb_only_sql() -> None:
    # The emulator runs the portable as-of joins; a real account gets ASOF JOIN … MATCH_CONDITION,
    # which only a real account can run. This checks the SQL it would be sent, statement by statement.
    bounds = (datetime(2025, 12, 1), datetime(2025, 12, 31, 23, 59, 59))
    statements = [
        features._TAIL,
        features._inline_bounds(features.scope_sql(), *bounds),
        features._inline_bounds(features.counterparty_scope_sql(), *bounds),
        features.master_sql(),
        features._inline_bounds(features.feature_sql(), *bounds),
    ]
    real = [features.to_snowflake(sql) for sql in statements]
    emulated = [features.to_snowflake(sql, emulator=True) for sql in statements]
    for sql in real + emulated:
        sqlglot.parse_one(sql, read="snowflake")  # well-formed Snowflake SQL
        for duckdb_only in (
            r"\bTRY_STRPTIME\(",
            r"(?<!CONVERT_)TIMEZONE\(",
            "infinity",
            r"\bSEMI JOIN\b",
            r"\$\d",
            r"\bFILTER \(",
            r"\bWINDOW\b",
            r"\bEPOCH\(",
            r"\bISODOW\(",
        ):
            assert not re.search(duckdb_only, sql, re.IGNORECASE), (duckdb_only, sql[:200])
        # Quoted names are case-sensitive on Snowflake, which stores unquoted ones upper-case.
        assert not re.search(r'"[a-z_]+"', sql), sql[:200]
    text = "\n".join(real)
    # The FX rates (scope); master data joins dbt's version intervals, no as-of join
    assert text.count("ASOF JOIN") == text.count("MATCH_CONDITION (") == 2
    assert "ASOF" not in "\n".join(emulated) and "_asof_next" in "\n".join(emulated)
    # DuckDB divides numbers in DOUBLE; Snowflake would keep NUMBER with six decimals.
    assert "CAST(location_fraud_reports_30d AS DOUBLE) /" in text
