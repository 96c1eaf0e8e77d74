"""Point in time through the real pipeline: bronze → dbt silver → features, with data arriving late.

Transactions land and get their features in real time (the stream hook's `new_only` call); fraud
cases and master-data changes whose source times lie *before* those transactions arrive later. A
rebuild must give the same transactions exactly the features real time computed (nothing the bank
did not have then), later transactions must see the late data, a reversed case counts only while
its confirmed version was in force, and a transaction before an account's first known version
gets missing master data with `is_master_unknown`.

Timeline (UTC; the bank's time, WIB, is UTC+7; transaction times are WIB):
  L0 2025-12-26 01:00  first load: the sample's masters and transactions, one fraud case (the backfill)
  L1 2025-12-27 05:00  file 1: ACC-00004 at 10:00 / 10:30 WIB, ACC-NEW at 10:45 WIB
  L2 2025-12-28 01:00  late: a case on an ACC-00004 transaction reported 12-27 03:00 WIB, ACC-00004's
                       balance changed 12-27 03:00 WIB, ACC-NEW's first version (updated 12-20)
  L3 2025-12-28 05:00  file 2: ACC-00004 and ACC-NEW at 12-28 10:00 WIB
  L4 2025-12-29 01:00  the late case reversed
  L5 2025-12-29 05:00  file 3: ACC-00004 at 12-29 10:00 WIB
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from bankpipe import transform
from bankpipe.ml import features
from bankpipe.settings import Settings
from bankpipe.warehouse import Warehouse, connect
from tests.dbt_fixtures import bronze

pytestmark = [pytest.mark.integration, pytest.mark.slow]

L1 = datetime(2025, 12, 27, 5, 0, tzinfo=UTC)
L2 = datetime(2025, 12, 28, 1, 0, tzinfo=UTC)
L3 = datetime(2025, 12, 28, 5, 0, tzinfo=UTC)
L4 = datetime(2025, 12, 29, 1, 0, tzinfo=UTC)
L5 = datetime(2025, 12, 29, 5, 0, tzinfo=UTC)
ACC = "ACC-00004"
NEW = "ACC-NEW"
OWN = "ACC-OWN"


def _txn(tid: str, account: str, date: str, time: str, amount: str, counterparty: str = "ACC-00001") -> dict:
    return {
        "id": tid,
        "date": date,
        "timestamp": time,
        "account_id": account,
        "jumlah_transaksi": amount,
        "tipe_transaksi": "Transfer",
        "akun_tujuan": counterparty,
        "status": "Success",
        "channel": "mobile",
        "location_id": "LOC-001",
    }


def _case(wh: Warehouse, tid: str, confirmed: bool, reported_at: str, loaded_at: datetime, batch: str) -> None:
    """One fraud-case version as the source extract lands it (reported_at as UTC text, as extracted)."""
    wh.execute(
        """insert into bronze.raw_fraud_cases (_batch_id, _loaded_at, _source, _is_deleted, _created_at, _updated_at,
               transaction_id, confirmed_fraud, reported_at)
           values (?, ?, 'fraud_case', false, ?, ?, ?, ?, ?)""",
        [batch, loaded_at, loaded_at, loaded_at, tid, str(confirmed).lower(), reported_at],
    )


def _account(
    wh: Warehouse,
    account: str,
    customer: str,
    balance: str,
    updated_at: datetime,
    loaded_at: datetime,
    created_at: datetime | None = None,
) -> None:
    wh.execute(
        """insert into bronze.raw_accounts (_batch_id, _loaded_at, _source, _is_deleted, _created_at, _updated_at,
               id, customer_id, tipe_akun, saldo)
           values ('batch-late', ?, 'account', false, ?, ?, ?, ?, 'Savings', ?)""",
        [loaded_at, created_at or updated_at, updated_at, account, customer, balance],
    )


def _land(settings: Settings, batch: str, records: list[dict], loaded_at: datetime) -> pd.DataFrame:
    """Land a file's records in bronze and compute their features as the real-time hook does."""
    with connect(settings) as wh:
        bronze.insert_transactions(wh, records, batch, loaded_at, source=f"{batch}.json")
        return features.compute(wh, "batch_id = ?", [batch], new_only=True).set_index("transaction_id")


def _batch(settings: Settings, ids: list[str]) -> pd.DataFrame:
    """Features of these transactions after a rebuild (silver holds them; no bronze tail)."""
    with connect(settings) as wh:
        placeholders = ", ".join("?" for _ in ids)
        return features.compute(wh, f"transaction_id in ({placeholders})", ids).set_index("transaction_id")


@dataclass
class Run:
    settings: Settings
    late_case: str  # an ACC-00004 sample transaction, reported before file 1 but loaded after it
    rt: dict[str, pd.DataFrame]  # real-time features per file
    rebuilt_1: pd.DataFrame  # file 1 after L2's late data and a rebuild
    rebuilt_2: pd.DataFrame  # file 2 after the reversal and a rebuild


def _build(settings: Settings) -> None:
    result = transform.run(settings)
    assert result.success, [n for n in result.nodes if n.status not in ("success", "pass", "warn")]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Iterator[Run]:
    settings = Settings(state_dir=tmp_path_factory.mktemp("pit") / "state", warehouse_path=None)
    with connect(settings) as wh:
        bronze.load_seed_masters(wh, sample_dir)
        bronze.load_seed_transactions(wh, sorted((sample_dir / "stream_source").glob("*.json")))
        ids = [
            r[0] for r in wh.fetchall("select id from bronze.raw_transactions where account_id = ? order by id", [ACC])
        ]
        assert len(ids) >= 2
        # The backfill: the case system's history, adopted from its reported_at.
        _case(wh, ids[0], True, "2025-12-25 03:00:00+00", bronze.LOADED_AT, "fraud-backfill")
        # Also in the first load: an account opened 12-01 whose only version (its current balance) is
        # stamped after file 1's transactions, as a current-state source table gives it.
        _account(
            wh,
            OWN,
            "CUST-0002",
            "5000000.00",
            datetime(2025, 12, 31, tzinfo=UTC),
            bronze.LOADED_AT,
            created_at=datetime(2025, 12, 1, tzinfo=UTC),
        )
    _build(settings)

    rt = {}
    rt["1"] = _land(
        settings,
        "stream-1",
        [
            _txn("RT-101", ACC, "2025-12-27", "10:00:00", "250000.00"),
            _txn("RT-102", ACC, "2025-12-27", "10:30:00", "900000.00", counterparty=NEW),
            _txn("RT-103", NEW, "2025-12-27", "10:45:00", "50000.00", counterparty=ACC),
            _txn("RT-104", OWN, "2025-12-27", "11:00:00", "75000.00"),
        ],
        L1,
    )
    with connect(settings) as wh:
        # Late data: source times before file 1's transactions, loaded after them.
        _case(wh, ids[1], True, "2025-12-26 20:00:00+00", L2, "fraud-late")
        _account(wh, ACC, "CUST-0004", "1.00", datetime(2025, 12, 26, 20, 0, tzinfo=UTC), L2)
        _account(wh, NEW, "CUST-0001", "7000000.00", datetime(2025, 12, 20, tzinfo=UTC), L2)
    _build(settings)
    rebuilt_1 = _batch(settings, rt["1"].index.tolist())

    rt["2"] = _land(
        settings,
        "stream-2",
        [
            _txn("RT-201", ACC, "2025-12-28", "10:00:00", "300000.00"),
            _txn("RT-202", NEW, "2025-12-28", "10:00:00", "60000.00", counterparty=ACC),
        ],
        L3,
    )
    with connect(settings) as wh:
        _case(wh, ids[1], False, "2025-12-26 20:00:00+00", L4, "fraud-reversal")
    rt["3"] = _land(settings, "stream-3", [_txn("RT-301", ACC, "2025-12-29", "10:00:00", "310000.00")], L5)
    _build(settings)
    rebuilt_2 = _batch(settings, rt["2"].index.tolist() + rt["3"].index.tolist())
    yield Run(settings, ids[1], rt, rebuilt_1, rebuilt_2)


def test_a_rebuild_gives_exactly_what_real_time_computed(run: Run) -> None:
    pd.testing.assert_frame_equal(run.rt["1"], run.rebuilt_1.loc[run.rt["1"].index], check_exact=True)
    both = pd.concat([run.rt["2"], run.rt["3"]])
    pd.testing.assert_frame_equal(both, run.rebuilt_2.loc[both.index], check_exact=True)


def test_late_data_is_not_seen_before_it_was_loaded(run: Run) -> None:
    f = run.rt["1"]
    # The late case was reported (12-27 03:00 WIB) before these transactions, but loaded after them.
    with connect(run.settings, read_only=True) as wh:
        reported = wh.fetchone(
            "select reported_at from silver.base_fraud_cases where transaction_id = ? and is_confirmed_fraud",
            [run.late_case],
        )
    assert reported is not None and reported[0] < pd.Timestamp("2025-12-27 10:00:00")
    assert f.loc["RT-101", "account_fraud_reports_30d"] == 1  # the backfilled case only
    # ACC-00004's balance as the first load knew it (the change stamped 12-27 03:00 WIB arrived on 12-28).
    assert f.loc["RT-101", "log_balance_idr"] > math.log1p(1.0)


def test_late_data_is_seen_once_loaded(run: Run) -> None:
    f = run.rt["2"]
    assert f.loc["RT-201", "account_fraud_reports_30d"] == 2  # backfill + the late case (known since L2)
    assert f.loc["RT-201", "log_balance_idr"] == pytest.approx(math.log1p(1.0))


def test_a_reversed_case_counts_only_while_confirmed(run: Run) -> None:
    assert run.rt["2"].loc["RT-201", "account_fraud_reports_30d"] == 2  # confirmed version in force
    assert run.rt["3"].loc["RT-301", "account_fraud_reports_30d"] == 1  # reversed at L4
    # The rebuild after the reversal keeps RT-201's count: history is as-of, not as now.
    assert run.rebuilt_2.loc["RT-201", "account_fraud_reports_30d"] == 2
    with connect(run.settings, read_only=True) as wh:
        labels = features.fetch_df(wh, features.fraud_labels_sql())
    assert run.late_case in features.fraud_known_at(labels, datetime(2025, 12, 28, 12, 0))
    assert run.late_case not in features.fraud_known_at(labels, datetime(2025, 12, 29, 12, 0))
    assert run.late_case not in features.fraud_known_at(labels)


def test_before_the_first_master_version_is_missing_and_flagged(run: Run) -> None:
    before, after = run.rt["1"].loc["RT-103"], run.rt["2"].loc["RT-202"]
    assert before["is_master_unknown"] == 1 and after["is_master_unknown"] == 0
    assert before[["segment", "account_type"]].tolist() == ["Unknown", "Unknown"]
    assert pd.isna(before["log_balance_idr"]) and pd.isna(before["distance_from_home_km"])
    assert after["account_type"] == "Savings" and after["log_balance_idr"] == pytest.approx(math.log1p(7_000_000))
    # ACC-NEW as a counterparty: not a known internal account before its first version.
    assert run.rt["1"].loc["RT-102", "is_counterparty_internal"] == 0


def test_an_accounts_holder_is_known_from_its_opening_but_not_its_attributes(run: Run) -> None:
    """Before the account's first version: its holder (immutable) links the customer, type and balance stay unknown."""
    f = run.rt["1"].loc["RT-104"]
    with connect(run.settings, read_only=True) as wh:
        (segment,) = wh.fetchone("select segment from silver.stg_customers where customer_id = 'CUST-0002'")
    assert f["segment"] == segment and f["is_master_unknown"] == 0
    assert f["account_type"] == "Unknown" and pd.isna(f["log_balance_idr"])
    # ACC-NEW, opened 12-20 but first loaded at L2 (not the backfill): its holder was not knowable at RT-103.
    assert run.rebuilt_1.loc["RT-103", "segment"] == "Unknown"


def test_a_real_time_read_sees_cases_without_a_transform(run: Run) -> None:
    """The fraud-case versions are a view over bronze: no `bankpipe transform` between load and use."""
    with connect(run.settings, read_only=True) as wh:
        kinds = dict(
            wh.fetchall(
                "select table_name, table_type from information_schema.tables where table_schema = 'silver'"
                " and table_name in ('int_fraud_case_versions', 'int_account_versions', 'int_customer_versions')"
            )
        )
    assert kinds == dict.fromkeys(("int_fraud_case_versions", "int_account_versions", "int_customer_versions"), "VIEW")
