"""The feature SQL on a real DuckDB: exact values on a hand-built case, point-in-time, subset parity."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from bankpipe.ml import features
from bankpipe.warehouse.duckdb import DuckDBWarehouse
from tests import ml_fixtures as fx

pytestmark = pytest.mark.integration


def _txn(
    tid: str,
    acc: str,
    at: str,
    amount: float,
    cp: str,
    loc: str = "LOC-001",
    channel: str = "mobile",
    ttype: str = "Transfer",
    status: str = "Success",
) -> dict:
    ts = pd.Timestamp(at)
    return {
        "transaction_id": tid,
        "account_id": acc,
        "counterparty_account_id": cp,
        "location_id": loc,
        "transaction_type": ttype,
        "status": status,
        "currency": "IDR",
        "channel": channel,
        "amount": amount,
        "transaction_date": ts.date(),
        "transaction_at": ts,
    }


HAND = [
    _txn("T1", "ACC-A", "2025-10-01 10:00:00", 100_000, "ACC-B"),
    _txn("T2", "ACC-A", "2025-10-01 10:30:00", 200_000, "ACC-B"),
    _txn("T3", "ACC-A", "2025-10-01 10:30:00", 50_000, "ACC-C"),  # same second as T2
    _txn("T4", "ACC-A", "2025-10-02 09:00:00", 1_000_000, "ACC-C", loc="LOC-004"),  # Medan, far from Jakarta
    _txn("T5", "ACC-B", "2025-10-02 12:00:00", 75_000, "ACC-A", channel="atm", ttype="Withdrawal"),
    _txn("T6", "ACC-B", "2025-10-02 13:00:00", 80_000, "ACC-A"),
]


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    w = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    w.ensure_schemas()
    fx.create_silver(w)
    fx.add_accounts(
        w,
        [
            ("ACC-A", "CUST-A", "Savings", 10_000_000, "LOC-001", "BANK-001", "Gold"),
            ("ACC-B", "CUST-B", "Checking", 5_000_000, "LOC-001", "BANK-002", "Silver"),
            ("ACC-C", "CUST-C", "Savings", 1_000_000, "LOC-002", "BANK-001", "Standard"),
        ],
    )
    yield w
    w.close()


def _features(wh: DuckDBWarehouse, where: str = "true", params: list | None = None) -> pd.DataFrame:
    return features.compute(wh, where, params).set_index("transaction_id")


def test_windows_count_only_strictly_earlier_transactions(wh: DuckDBWarehouse) -> None:
    fx.add_transactions(wh, pd.DataFrame(HAND))
    f = _features(wh)
    assert f.loc["T1", ["txn_count_1h", "txn_count_1d", "txn_count_30d"]].tolist() == [0, 0, 0]
    assert f.loc["T2", "txn_count_1h"] == 1  # T1, 30 minutes earlier
    assert f.loc["T2", "log_amount_sum_1h"] == pytest.approx(math.log1p(100_000))
    assert f.loc["T3", "txn_count_1h"] == 1  # T2 is in the same second: not earlier
    assert f.loc["T4", "txn_count_1h"] == 0
    assert f.loc["T4", "txn_count_1d"] == 3  # T1..T3 within 24 h before
    assert f.loc["T4", "log_amount_to_avg_30d"] == pytest.approx(math.log1p(1_000_000 / (350_000 / 3)))
    assert f.loc["T4", "log_seconds_since_prev"] == pytest.approx(math.log1p(22.5 * 3600))


def test_first_time_counterparty_and_distance(wh: DuckDBWarehouse) -> None:
    fx.add_transactions(wh, pd.DataFrame(HAND))
    f = _features(wh)
    assert f.loc[["T1", "T2", "T3", "T4"], "is_new_counterparty"].tolist() == [1, 0, 1, 0]
    assert f.loc["T1", "distance_from_home_km"] == pytest.approx(0.0)
    assert f.loc["T4", "distance_from_home_km"] > 1_000  # Jakarta → Medan
    assert f.loc["T4", "is_far_from_home"] == 1
    assert f.loc["T1", "is_interbank"] == 1 and f.loc["T3", "is_interbank"] == 0
    assert f.loc["T1", ["segment", "account_type", "hour_of_day", "day_of_week"]].tolist() == [
        "Gold",
        "Savings",
        "10",
        "3",
    ]


@pytest.mark.parametrize(
    ("reported_at", "counted_for_t4"),
    [("2025-10-02 08:59:59", 1), ("2025-10-02 09:00:00", 0), ("2025-10-20 00:00:00", 0)],
)
def test_fraud_counts_only_once_reported_before_the_transaction(
    wh: DuckDBWarehouse, reported_at: str, counted_for_t4: int
) -> None:
    fx.add_transactions(wh, pd.DataFrame(HAND))
    fx.add_reports(wh, pd.DataFrame({"transaction_id": ["T2"], "reported_at": [pd.Timestamp(reported_at)]}))
    f = _features(wh)
    assert f.loc["T4", "account_fraud_reports_30d"] == counted_for_t4
    # T2 happened at LOC-001 on mobile: T5 (atm) and T6 (mobile) there later see it once it is reported.
    reported_before_t5 = pd.Timestamp(reported_at) < pd.Timestamp("2025-10-02 12:00:00")
    assert f.loc["T5", "location_fraud_reports_30d"] == int(reported_before_t5)
    assert f.loc["T5", "point_fraud_reports_30d"] == 0  # other channel
    assert f.loc["T6", "point_fraud_reports_30d"] == int(reported_before_t5)
    assert f.loc["T1", "account_fraud_reports_30d"] == 0


def test_a_later_transaction_never_changes_earlier_features(wh: DuckDBWarehouse) -> None:
    fx.add_transactions(wh, pd.DataFrame(HAND[:4]))
    before = _features(wh)
    later = [
        _txn("T9", "ACC-A", "2025-10-02 09:00:01", 9_000_000, "ACC-B"),
        _txn("T10", "ACC-A", "2025-10-02 09:00:00", 1, "ACC-Z"),
    ]  # same second as T4: not earlier
    fx.add_transactions(wh, pd.DataFrame(later), batch_id="silver-2")
    after = _features(wh).loc[before.index]
    pd.testing.assert_frame_equal(before.drop(columns="batch_id"), after.drop(columns="batch_id"))


def test_subsets_get_exactly_the_features_of_the_whole(wh: DuckDBWarehouse) -> None:
    w = fx.world(n_accounts=25, days=40, seed=3)
    fx.build(wh, w)
    whole = _features(wh)
    days = sorted(w.transactions["transaction_date"].unique())
    parts = [_features(wh, "transaction_date = ?", [d]) for d in days[::5]]
    part = pd.concat(parts)
    assert len(part) > 100
    pd.testing.assert_frame_equal(part, whole.loc[part.index], check_exact=True)


def test_bronze_tail_is_typed_like_silver(wh: DuckDBWarehouse) -> None:
    """Files loaded after the last transform are featurised from bronze, by dbt's base_transactions_tail."""
    fx.add_transactions(wh, pd.DataFrame(HAND[:2]))
    records = [
        {
            "id": " T3 ",
            "date": "2025-10-01",
            "timestamp": "10:30:00",
            "account_id": "ACC-A",
            "jumlah_transaksi": "50000.00",
            "tipe_transaksi": "transfer",
            "akun_tujuan": "ACC-C",
            "status": "SUCCESS",
            "channel": "Mobile",
            "location_id": "LOC-001",
        },
        {
            "id": "T1",
            "date": "2025-10-01",
            "timestamp": "10:00:00",
            "account_id": "ACC-A",
            "jumlah_transaksi": "1",
            "tipe_transaksi": "Transfer",
            "akun_tujuan": "ACC-B",
            "status": "Success",
        },
        {
            "id": "BAD",
            "date": "2025-10-01",
            "timestamp": "noon",
            "account_id": "ACC-A",
            "jumlah_transaksi": "1",
            "tipe_transaksi": "Transfer",
            "akun_tujuan": "ACC-B",
            "status": "Success",
        },
    ]
    # Rules the Python copy of them once lacked: dbt's macro applies every one of them.
    valid = records[0] | {"id": "T3"}
    records += [
        valid | {"id": "FUT", "date": "2099-01-01"},  # future_date
        valid | {"id": "OLD", "date": "1999-12-31"},  # date_before_min
        valid | {"id": "XYZ", "mata_uang": "XYZ"},  # unknown_currency
        valid | {"id": "NOCP", "akun_tujuan": None},  # missing_counterparty (a transfer)
        valid | {"id": "DEC", "jumlah_transaksi": "100.1234"},  # too_many_decimals
    ]
    for rec in records:
        wh.execute(
            "insert into bronze.raw_transaction_records values ('stream-x', now(), 'f.json', 'x', ?)",
            [json.dumps(rec)],
        )
    f = _features(wh, "batch_id = ?", ["stream-x"])
    assert f.index.tolist() == ["T3"]  # T1 is silver's already, BAD has no valid time, the rest break a rule
    rules = dict(wh.fetchall("select transaction_id, rejection_rule from silver.base_transactions_tail"))
    assert rules == {
        "T3": None,
        "T1": "duplicate_transaction_id",
        "BAD": "invalid_time",
        "FUT": "future_date",
        "OLD": "date_before_min",
        "XYZ": "unknown_currency",
        "NOCP": "missing_counterparty",
        "DEC": "too_many_decimals",
    }
    assert f.loc["T3", ["transaction_type", "status", "currency", "channel"]].tolist() == [
        "Transfer",
        "Success",
        "IDR",
        "mobile",
    ]
    assert f.loc["T3", "txn_count_1h"] == 1


def test_missing_silver_is_one_clear_error(tmp_path: Path) -> None:
    from bankpipe.errors import BankpipeError

    with DuckDBWarehouse(tmp_path / "empty.duckdb") as w:
        w.ensure_schemas()
        with pytest.raises(BankpipeError, match="run `bankpipe transform` first"):
            features.compute(w, "true")


def _versioned(tmp_path: Path) -> DuckDBWarehouse:
    """CUST-A / ACC-A change at 10:15 WIB on 2025-10-01 (written in UTC, as the source's clock is)."""
    w = DuckDBWarehouse(tmp_path / "versions.duckdb")
    w.ensure_schemas()
    fx.create_silver(w)
    first, change = datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 10, 1, 3, 15, tzinfo=UTC)
    fx.add_customer_version(w, "CUST-A", "LOC-001", "BANK-001", "Silver", first)
    fx.add_account_version(w, "ACC-A", "CUST-A", "Savings", 10_000_000, first)
    fx.add_customer_version(w, "CUST-A", "LOC-004", "BANK-001", "Gold", change)  # moved to Medan
    fx.add_account_version(w, "ACC-A", "CUST-A", "Checking", 2_000_000, change)
    fx.add_accounts(w, [("ACC-B", "CUST-B", "Savings", 5_000_000, "LOC-001", "BANK-002", "Standard")], first)
    fx.add_account_version(w, "ACC-B", "CUST-B", "Savings", 5_000_000, datetime(2025, 10, 2, tzinfo=UTC), deleted=True)
    fx.add_transactions(
        w,
        pd.DataFrame(
            [
                _txn("T0", "ACC-A", "2025-08-15 09:00:00", 100_000, "ACC-B"),  # before the first version
                _txn("T1", "ACC-A", "2025-10-01 10:00:00", 100_000, "ACC-B"),  # 03:00 UTC: before the change
                _txn("T2", "ACC-A", "2025-10-01 10:30:00", 100_000, "ACC-B"),  # after it
                _txn("T3", "ACC-A", "2025-10-03 10:00:00", 100_000, "ACC-B"),  # ACC-B deleted the day before
            ]
        ),
    )
    return w


def test_master_data_is_the_version_in_force_at_the_transaction(tmp_path: Path) -> None:
    with _versioned(tmp_path) as w:
        f = _features(w)
    cols = ["segment", "account_type", "log_balance_idr", "log_amount_to_balance"]
    old = ["Silver", "Savings", math.log1p(10_000_000), math.log1p(100_000 / 10_000_000)]
    new = ["Gold", "Checking", math.log1p(2_000_000), math.log1p(100_000 / 2_000_000)]
    # Before the first known version: missing and flagged, never back-filled from a later version.
    assert f.loc["T0", ["segment", "account_type", "is_master_unknown"]].tolist() == ["Unknown", "Unknown", 1]
    assert f.loc["T0", ["log_balance_idr", "log_amount_to_balance", "distance_from_home_km"]].isna().all()
    assert f.loc[["T1", "T2", "T3"], "is_master_unknown"].tolist() == [0, 0, 0]
    assert f.loc["T1", cols].tolist() == pytest.approx(old)
    assert f.loc["T2", cols].tolist() == pytest.approx(new)
    assert f.loc["T3", cols].tolist() == pytest.approx(new)
    # Home moved from Jakarta to Medan at the change; the transactions happen in Jakarta.
    assert f.loc["T1", "distance_from_home_km"] == pytest.approx(0.0)
    assert f.loc["T2", "distance_from_home_km"] > 1_000 and f.loc["T2", "is_far_from_home"] == 1
    # The counterparty is internal (and at another bank) until it is deleted.
    assert f.loc[["T1", "T2", "T3"], "is_counterparty_internal"].tolist() == [1, 1, 0]
    assert f.loc[["T1", "T2", "T3"], "is_interbank"].tolist() == [1, 1, 0]


def test_a_later_master_data_version_never_changes_earlier_features(tmp_path: Path) -> None:
    with _versioned(tmp_path) as w:
        before = _features(w)
        fx.add_customer_version(w, "CUST-A", "LOC-002", "BANK-003", "Platinum", datetime(2025, 10, 2, tzinfo=UTC))
        fx.add_account_version(w, "ACC-A", "CUST-A", "Loan", 1, datetime(2025, 10, 2, tzinfo=UTC))
        after = _features(w)
    pd.testing.assert_frame_equal(before.loc[["T0", "T1", "T2"]], after.loc[["T0", "T1", "T2"]], check_exact=True)
    assert after.loc["T3", ["segment", "account_type"]].tolist() == ["Platinum", "Loan"]


def test_fraud_model_inputs_exclude_the_authorisation_outcome() -> None:
    num, cat = features.feature_columns("fraud")
    assert "status" not in num + cat
    assert "status" in features.KEYS  # kept in the frame for a one-off comparison


@pytest.mark.parametrize(("reported_at", "risk"), [("2025-10-02 08:59:59", 1.0), ("2025-10-02 09:00:00", 0.0)])
def test_counterparty_traffic_and_known_fraud_share(wh: DuckDBWarehouse, reported_at: str, risk: float) -> None:
    """The counterparty is the handbook's terminal: its recent traffic, and the share of it known to be fraud."""
    fx.add_transactions(wh, pd.DataFrame(HAND))
    fx.add_reports(wh, pd.DataFrame({"transaction_id": ["T3"], "reported_at": [pd.Timestamp(reported_at)]}))
    f = _features(wh)
    # ACC-C received T3 (22.5 h before T4); ACC-B received T1 (30 min before T2, and 10:30 is not "before" T3).
    assert f.loc["T4", ["counterparty_txn_1d", "counterparty_txn_7d", "counterparty_txn_30d"]].tolist() == [1, 1, 1]
    assert f.loc["T4", ["counterparty_risk_1d", "counterparty_risk_7d", "counterparty_risk_30d"]].tolist() == [risk] * 3
    assert f.loc["T2", "counterparty_txn_1d"] == 1 and f.loc["T2", "counterparty_risk_1d"] == 0
    assert f.loc["T1", "counterparty_txn_30d"] == 0
    # T5, T6 pay ACC-A, which nothing paid before.
    assert f.loc["T6", "counterparty_txn_1d"] == 1  # T5, an hour earlier


def test_customer_average_amounts_per_window(wh: DuckDBWarehouse) -> None:
    fx.add_transactions(wh, pd.DataFrame(HAND))
    f = _features(wh)
    avg = 350_000 / 3  # T1..T3, all within a day before T4
    for w in ("1d", "7d", "30d"):
        assert f.loc["T4", f"log_amount_avg_{w}"] == pytest.approx(math.log1p(avg))
        assert f.loc["T4", f"log_amount_to_avg_{w}"] == pytest.approx(math.log1p(1_000_000 / avg))
    assert math.isnan(f.loc["T1", "log_amount_avg_1d"])  # no history: missing, not 0


# Payments to ACC-M, all at LOC-001 over mobile; Q is the target, t - 7 d = 2025-10-02 10:00:00.
MATURED = [
    _txn("P1", "ACC-A", "2025-10-01 10:00:00", 100_000, "ACC-M"),  # t - 8 d exactly: in 7d/30d, not in 1d
    _txn("P2", "ACC-A", "2025-10-02 10:00:00", 100_000, "ACC-M"),  # t - 7 d exactly: the windows' closed end
    _txn("P3", "ACC-A", "2025-10-06 10:00:00", 100_000, "ACC-M"),  # in the last 7 days: never matured
    _txn("Q", "ACC-A", "2025-10-09 10:00:00", 100_000, "ACC-M"),
]


@pytest.mark.parametrize(("p1_reported_at", "known"), [("2025-10-05 00:00:00", True), ("2025-10-09 10:00:00", False)])
def test_matured_risk_excludes_the_last_days_and_counts_fraud_once_usable(
    wh: DuckDBWarehouse, p1_reported_at: str, known: bool
) -> None:
    """Matured windows are (t - d - w, t - d]: the last d days never count; a fraud counts once its label is usable."""
    assert features.LABEL_MATURITY_DAYS == 7
    fx.add_transactions(wh, pd.DataFrame(MATURED))
    # P3's fraud is known before Q but lies in the last 7 days; P1's is known before Q or only at Q's second.
    fx.add_reports(
        wh,
        pd.DataFrame(
            {
                "transaction_id": ["P1", "P3"],
                "reported_at": [pd.Timestamp(p1_reported_at), pd.Timestamp("2025-10-07 00:00:00")],
            }
        ),
    )
    f = _features(wh)
    windows = ("1d", "7d", "30d")
    # 1d holds P2 only (P1 at t - 8 d is outside), 7d/30d hold P1 and P2 (P3 never): shares 0, 1/2, 1/2.
    share = 0.5 if known else 0.0
    assert f.loc["Q", [f"counterparty_matured_risk_{w}" for w in windows]].tolist() == [0.0, share, share]
    # The window ending at t does see P3 (known fraud), the matured ones never do.
    assert f.loc["Q", "counterparty_risk_7d"] > 0
    # The point (LOC-001, mobile) in whole days: [day - 7 - w, day - 8] holds P1's day only (P2's is day - 7).
    assert f.loc["Q", [f"point_matured_risk_{w}" for w in windows]].tolist() == [float(known)] * 3
