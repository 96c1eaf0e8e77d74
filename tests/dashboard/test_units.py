"""Pure parts of the dashboard: filter SQL, formats and masking, ROC/PR from bins, the offline map, serve()."""

from __future__ import annotations

import json
import socket
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pydantic import SecretStr

from bankpipe import dashboard
from bankpipe.dashboard import charts, filters, queries, ui
from bankpipe.errors import BankpipeError
from bankpipe.settings import Settings

# --- filters ----------------------------------------------------------------------------------------


@pytest.fixture
def tiny_gold() -> duckdb.DuckDBPyConnection:
    """Four transactions, two customers with homes in two provinces, one transaction without a location."""
    con = duckdb.connect()
    con.execute("create schema gold")
    con.execute(
        "create table gold.dim_locations as select * from (values ('L1', 'Bali'), ('L2', 'Papua'),"
        " ('-1', 'Unknown')) t(location_key, province)"
    )
    con.execute(
        "create table gold.dim_customers as select * from (values ('C1', 'Gold', 'L1', true),"
        " ('C1', 'Silver', 'L1', false), ('C2', 'Standard', 'L2', true)) t(customer_key, segment,"
        " location_key, is_current)"
    )
    con.execute(
        """create table gold.fact_transaction_enriched as select * from (values
            ('T1', date '2026-01-01', 'B1', 'C1', 'L1'),
            ('T2', date '2026-01-02', 'B1', 'C1', '-1'),   -- no location: counts at C1's home, Bali
            ('T3', date '2026-01-03', 'B2', 'C2', 'L1'),   -- happened in Bali, customer lives in Papua
            ('T4', date '2026-01-10', 'B2', 'C2', '-1')
        ) t(transaction_id, transaction_date, bank_key, customer_key, location_key)"""
    )
    return con


def ids(con: duckdb.DuckDBPyConnection, flt: filters.Filters) -> set[str]:
    where, params = flt.transactions("f")
    return {
        r[0]
        for r in con.execute(
            f"select transaction_id from gold.fact_transaction_enriched f where {where}", params
        ).fetchall()
    }


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (filters.Filters(), {"T1", "T2", "T3", "T4"}),
        (filters.Filters(start=date(2026, 1, 2), end=date(2026, 1, 3)), {"T2", "T3"}),
        (filters.Filters(banks=("B2",)), {"T3", "T4"}),
        (filters.Filters(segments=("Gold",)), {"T1", "T2"}),  # the current segment, not a past one
        (filters.Filters(segments=("Silver",)), set()),
        (filters.Filters(provinces=("Bali",)), {"T1", "T2", "T3"}),
        (filters.Filters(provinces=("Papua",)), {"T4"}),
        (filters.Filters(banks=("B2",), provinces=("Bali", "Papua")), {"T3", "T4"}),
    ],
)
def test_transaction_filters(tiny_gold: duckdb.DuckDBPyConnection, flt: filters.Filters, expected: set[str]) -> None:
    assert ids(tiny_gold, flt) == expected


def test_customer_filters(tiny_gold: duckdb.DuckDBPyConnection) -> None:
    where, params = filters.Filters(provinces=("Papua",), segments=("Standard",)).customers("c")
    rows = tiny_gold.execute(
        f"select customer_key from gold.dim_customers c where is_current and {where}", params
    ).fetchall()
    assert rows == [("C2",)]


def test_previous_period_has_the_same_length_just_before() -> None:
    flt = filters.Filters(start=date(2026, 1, 11), end=date(2026, 1, 20), banks=("B1",))
    prev = flt.previous()
    assert (prev.start, prev.end, prev.banks) == (date(2026, 1, 1), date(2026, 1, 10), ("B1",))
    assert prev.days == flt.days == 10


@pytest.mark.parametrize(
    ("state", "start", "end"),
    [
        ({filters.KEY_DATES: (date(2026, 1, 1), date(2026, 1, 5))}, date(2026, 1, 1), date(2026, 1, 5)),
        ({filters.KEY_DATES: (date(2026, 1, 1),)}, date(2026, 1, 1), date(2026, 1, 1)),  # half-picked range
        ({}, None, None),
    ],
)
def test_filters_from_session_state(state: dict, start: date | None, end: date | None) -> None:
    flt = filters.from_state(state)
    assert (flt.start, flt.end) == (start, end)


def test_default_range_is_the_last_days_of_data() -> None:
    assert filters.default_range(date(2025, 12, 1), date(2026, 1, 29)) == (date(2025, 12, 31), date(2026, 1, 29))
    assert filters.default_range(date(2026, 1, 20), date(2026, 1, 29)) == (date(2026, 1, 20), date(2026, 1, 29))
    assert filters.default_range(None, None) is None


# --- formats and masking ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (21_456_000_000, "IDR", "Rp 21.5bn"),
        (-9_405.2, "USD", "US$ -9.4k"),
        (12.5, "USD", "US$ 12.50"),
        (3.2e12, "IDR", "Rp 3.2tn"),
        (None, "IDR", "–"),
        (float("nan"), "IDR", "–"),
    ],
)
def test_money(value: float | None, currency: str, text: str) -> None:
    assert ui.money(value, currency) == text


def test_changes() -> None:
    assert ui.change(110, 100) == "+10.0%"
    assert ui.change(90, 100) == "-10.0%"
    assert ui.change(5, 0) is None
    assert ui.change(5, None) is None
    assert ui.point_change(0.95, 0.93) == "+2.0 pp"


def test_masking() -> None:
    assert ui.mask_name("Mega Permatasari") == "M***** P*****"
    assert ui.mask_name("M***** P*****") == "M***** P*****"  # gold's masked form passes unchanged
    assert ui.mask_email("mega.permatasari@example.com") == "m***@example.com"
    assert ui.mask_name(None) == "–"
    df = pd.DataFrame({"full_name": ["Dimas Silalahi"], "email": ["dimas@example.com"], "segment": ["Gold"]})
    masked = ui.masked(df, Settings())
    assert masked.iloc[0].to_dict() == {"full_name": "D***** S*****", "email": "d***@example.com", "segment": "Gold"}

    class AllowsPII(Settings):
        dashboard_show_pii: bool = True

    assert ui.masked(df, AllowsPII()).equals(df)


# --- charts -----------------------------------------------------------------------------------------


def test_curves_from_bins_match_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    y = rng.random(5_000) < 0.05
    score = np.clip(rng.normal(0.3 + 0.4 * y, 0.15), 0, 1)
    binned = np.minimum(np.floor(score * queries.SCORE_BINS), queries.SCORE_BINS - 1) / queries.SCORE_BINS
    bins = (
        pd.DataFrame({"score_bin": binned, "positives": y.astype(int)})
        .groupby("score_bin", as_index=False)
        .agg(transactions=("positives", "size"), positives=("positives", "sum"))
    )
    roc, pr, auc, ap = charts.curves(bins)
    assert auc == pytest.approx(metrics.roc_auc_score(y, binned), abs=1e-9)
    assert ap == pytest.approx(metrics.average_precision_score(y, binned), abs=1e-9)
    assert roc["tpr"].iloc[-1] == pytest.approx(1.0)
    assert pr["recall"].is_monotonic_increasing


def test_curves_need_both_classes() -> None:
    bins = pd.DataFrame({"score_bin": [0.1, 0.9], "transactions": [10, 3], "positives": [0, 0]})
    roc, pr, auc, ap = charts.curves(bins)
    assert roc.empty and pr.empty and auc is None and ap is None


def test_base_map_needs_no_network() -> None:
    fig = charts.base_map()
    spec = json.loads(fig.to_json())
    geo = spec["layout"]["geo"]
    # Any of these layers (or a trace with locationmode) makes plotly.js fetch topojson from a CDN.
    for layer in (
        "showland",
        "showocean",
        "showcoastlines",
        "showcountries",
        "showlakes",
        "showrivers",
        "showsubunits",
    ):
        assert geo[layer] is False, layer
    assert all("locationmode" not in trace for trace in spec["data"])
    lon, lat = charts._outline()["indonesia"]
    points = [(x, y) for x, y in zip(lon, lat, strict=True) if x is not None]
    assert len(points) > 1_000
    assert all(94 <= x <= 142 and -12 <= y <= 7 for x, y in points)  # the archipelago, nothing else


def test_bubble_map_and_view() -> None:
    df = pd.DataFrame(
        {
            "city": ["Denpasar", "Jayapura", "Nowhere"],
            "province": ["Bali", "Papua", "Unknown"],
            "latitude": [-8.65, -2.53, None],
            "longitude": [115.22, 140.72, None],
            "transactions": [100, 10, 5],
            "fraud_rate": [0.01, 0.0, 0.0],
        }
    )
    fig = charts.bubble_map(df, color="fraud_rate", color_label="Fraud rate", percent=True)
    assert len(fig.data) == 3 and len(fig.data[2].lon) == 2  # unlocated places are left off the map
    view = charts.view_of(df.iloc[:1])
    assert view["lon"][0] < 115.22 < view["lon"][1] and view["lon"][1] - view["lon"][0] >= 5


# --- serve ------------------------------------------------------------------------------------------


def test_command_binds_to_loopback_headless() -> None:
    cmd = dashboard.command(8765)
    assert cmd[1:4] == ["-m", "bankpipe.dashboard._launch", str(dashboard.APP)]
    opts = dict(zip(cmd[4::2], cmd[5::2], strict=True))
    assert opts["--server.address"] == "127.0.0.1"
    assert opts["--server.port"] == "8765"
    assert opts["--server.headless"] == "true"
    assert opts["--browser.gatherUsageStats"] == "false"


def test_child_env_carries_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = dashboard.child_env(Settings(state_dir=Path("rel/state")))
    assert env["BANKPIPE_STATE_DIR"] == str(tmp_path / "rel" / "state")
    assert env["BANKPIPE_WAREHOUSE_PATH"] == str(tmp_path / "rel" / "state" / "warehouse.duckdb")
    assert env["BANKPIPE_MLFLOW_URI"].startswith("sqlite:///")


def test_serve_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(BankpipeError, match=f"port {port}"):
            dashboard.serve(Settings(state_dir=tmp_path), port)


def test_child_env_on_snowflake_says_where_but_carries_no_secret(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path).model_copy(
        update={
            "warehouse": "snowflake",
            "snowflake_account": "xy12345.ap-southeast-1",
            "snowflake_user": "bankpipe_reader",
            "snowflake_password": SecretStr("not-for-children"),
            "snowflake_role": "BANKPIPE_READER",
        }
    )
    env = dashboard.child_env(settings)
    assert env["BANKPIPE_WAREHOUSE"] == "snowflake"
    assert env["SNOWFLAKE_ACCOUNT"] == "xy12345.ap-southeast-1" and env["SNOWFLAKE_ROLE"] == "BANKPIPE_READER"
    assert "not-for-children" not in env.values() and "SNOWFLAKE_PASSWORD" not in env


# --- reading through the Warehouse interface --------------------------------------------------------


def test_source_of_a_snowflake_warehouse_has_no_file_version(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path).model_copy(
        update={"warehouse": "snowflake", "snowflake_account": "acme-prod", "snowflake_database": "BANKING_DB"}
    )
    (tmp_path / "warehouse.duckdb").write_bytes(b"an unrelated file must not version Snowflake results")
    src = queries.source(settings)
    assert (src.warehouse, src.version) == ("snowflake://acme-prod/BANKING_DB", 0)


def test_snowflake_shaped_arrow_becomes_the_dtypes_duckdb_gives() -> None:
    # What the Snowflake connector returns: NUMBER as decimals or the narrowest int, TIMESTAMP_TZ in ns.
    snowflake = pa.table(
        {
            "n": pa.array([1, 2], pa.int8()),
            "n_null": pa.array([1, None], pa.int16()),
            "amount": pa.array([Decimal("1.50"), None], pa.decimal128(18, 2)),
            "day": pa.array([date(2026, 1, 1), None], pa.date32()),
            "at": pa.array([datetime(2026, 1, 1, 9, tzinfo=UTC), None], pa.timestamp("ns", "UTC")),
            "flag": pa.array([True, None]),
            "name": pa.array(["a", None]),
        }
    )
    duck = duckdb.sql(
        "select * from (values (1::bigint, 1::bigint, 1.50::decimal(18,2), date '2026-01-01',"
        " timestamptz '2026-01-01 09:00:00+00', true, 'a'), (2, null, null, null, null, null, null))"
        ' t(n, n_null, amount, day, "at", flag, name)'
    ).df()
    got = queries.to_pandas(snowflake)
    assert {c: str(t) for c, t in got.dtypes.items() if c != "at"} == {
        c: str(t) for c, t in duck.dtypes.items() if c != "at"
    }
    assert str(got["at"].dtype).startswith("datetime64[us, ")
    assert got["amount"].iloc[0] == 1.5 and got["n_null"].isna().iloc[1]
    empty = queries.to_pandas(pa.table({"x": pa.array([], pa.null())}))
    assert list(empty.columns) == ["x"] and empty.empty


def test_frame_reads_through_fetch_arrow_with_bound_parameters(tmp_path: Path) -> None:
    from bankpipe.warehouse import DuckDBWarehouse

    with DuckDBWarehouse(tmp_path / "w.duckdb") as wh:
        wh.execute("create table t as select range as i, range * 1.25::decimal(18,2) as v from range(5)")
        df = queries.frame(wh, "select i, v, i > ? as big from t where i between ? and ? order by i", [2, 1, 3])
    assert df.to_dict("list") == {"i": [1, 2, 3], "v": [1.25, 2.5, 3.75], "big": [False, False, True]}
    assert [str(t) for t in df.dtypes] == ["int64", "float64", "bool"]
