"""No single record stops the transform: each hostile value lands in bronze next to valid records.

One module-scoped warehouse, two dbt runs: a full build with every kind of hostile value at once
(transactions, master data, FX rates), then a build of new stream files only (the incremental path)
with more of them. Each run must pass; each hostile record must be rejected with its rule or kept
and flagged; the valid neighbours must reach gold with the right USD value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from bankpipe import transform
from bankpipe.settings import Settings
from bankpipe.warehouse import connect
from tests.dbt_fixtures import bronze

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOSTILE_AT = bronze.LOADED_AT + timedelta(hours=1)
LATER_AT = bronze.LOADED_AT + timedelta(days=1)

# Valid USD-based rates (units per USD) the neighbours are priced with.
IDR_24, IDR_26, EUR_24 = Decimal("16800.25"), Decimal("16820.00"), Decimal("0.95")
RATES = [
    ("2025-12-23", "IDR", "16750.50"),
    ("2025-12-24", "IDR", str(IDR_24)),
    ("2025-12-26", "IDR", str(IDR_26)),
    ("2025-12-24", "EUR", str(EUR_24)),
]
# Hostile rates: (date, currency, rate) -> rule. A bronze rate is typed DECIMAL(24,10), so text such
# as "abc" cannot reach it (the FX ingest refuses it); the values below are what can.
HOSTILE_RATES = {
    ("2025-12-25", "IDR", "0"): "non_positive_rate",  # would divide by zero
    ("2025-12-25", "EUR", "-1"): "non_positive_rate",
    ("2025-12-27", "IDR", "9999999999999"): "implausible_rate",  # 1e13 IDR per USD: overflows amount_idr
    ("2025-12-27", "SGD", "0.0000000001"): "implausible_rate",  # a USD value 10^10 times too large
    ("9999-12-31", "IDR", "16000"): "rate_date_out_of_range",  # would stretch dim_date to year 9999
    ("0001-01-01", "IDR", "16000"): "rate_date_out_of_range",
}


def txn(tid: str, **overrides: Any) -> dict[str, Any]:
    """A valid IDR payment of 150 000 on 2025-12-24, with the given fields replaced."""
    rec: dict[str, Any] = {
        "id": tid,
        "date": "2025-12-24",
        "timestamp": "12:00:00",
        "account_id": "ACC-00003",
        "jumlah_transaksi": "150000.00",
        "tipe_transaksi": "Payment",
        "akun_tujuan": "ACC-00004",
        "status": "Success",
    }
    rec.update(overrides)
    return rec


# Hostile transactions (JSON values as a producer could send them) and the rule each must get.
HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    "TRX-H01": (txn("TRX-H01", jumlah_transaksi=999999999999999999.99), "implausible_amount"),  # JSON number
    "TRX-H02": (txn("TRX-H02", jumlah_transaksi="1e15"), "implausible_amount"),  # the fat finger
    "TRX-H03": (txn("TRX-H03", jumlah_transaksi=1e15), "implausible_amount"),
    "TRX-H04": (txn("TRX-H04", jumlah_transaksi="1.500"), "ambiguous_amount"),  # 1.5 or 1 500?
    "TRX-H05": (txn("TRX-H05", jumlah_transaksi="1,802"), "ambiguous_amount"),
    "TRX-H06": (txn("TRX-H06", jumlah_transaksi="150000.005"), "too_many_decimals"),
    "TRX-H07": (txn("TRX-H07", jumlah_transaksi="0"), "non_positive_amount"),
    "TRX-H08": (txn("TRX-H08", jumlah_transaksi="-5000"), "non_positive_amount"),
    "TRX-H09": (txn("TRX-H09", jumlah_transaksi="NaN"), "invalid_amount"),
    "TRX-H10": (txn("TRX-H10", jumlah_transaksi="Infinity"), "invalid_amount"),
    "TRX-H11": (txn("TRX-H11", jumlah_transaksi="abc"), "invalid_amount"),
    "TRX-H12": (txn("TRX-H12", jumlah_transaksi="1_000"), "invalid_amount"),
    "TRX-H13": (txn("TRX-H13", jumlah_transaksi={"value": 1}), "invalid_amount"),
    "TRX-H14": (txn("TRX-H14", jumlah_transaksi=True), "invalid_amount"),
    "TRX-H15": (txn("TRX-H15", jumlah_transaksi="1.802.381,845"), "too_many_decimals"),
    "TRX-H16": (txn("TRX-H16", jumlah_transaksi="0.50"), "implausible_amount"),  # below IDR 1
    "TRX-H17": (txn("TRX-H17", jumlah_transaksi="100.5", mata_uang="JPY"), "too_many_decimals"),
    "TRX-H18": (txn("TRX-H18", jumlah_transaksi="7000000", mata_uang="USD"), "implausible_amount"),
    "TRX-H19": (txn("TRX-H19", date="2026-02-30"), "invalid_date"),
    "TRX-H20": (txn("TRX-H20", timestamp="25:61:00"), "invalid_time"),
    "TRX-H21": (txn("TRX-H21", date="9999-12-31"), "future_date"),
    "TRX-H22": (txn("TRX-H22", date="0001-01-01"), "date_before_min"),
    "TRX-H23": (txn("TRX-H23", date=""), "missing_date"),
    "TRX-H24": (txn("TRX-H24", timestamp=None), "missing_time"),
    "TRX-H25": (txn("TRX-H25", jumlah_transaksi=None), "missing_amount"),
    "TRX-H26": (txn("TRX-H26", status="Berhasil"), "unknown_status"),
    "TRX-H27": (txn("TRX-H27", jumlah_transaksi="1e400"), "invalid_amount"),
}

# Valid neighbours: (record, amount, amount_usd expected in gold; None = no rate for the currency).
NEIGHBOURS: dict[str, tuple[dict[str, Any], str, Decimal | None]] = {
    "TRX-V01": (txn("TRX-V01"), "150000.00", Decimal(150000) / IDR_24),
    # Christmas: the IDR rate of 0 is rejected, so Wednesday's rate is in force
    "TRX-V02": (txn("TRX-V02", date="2025-12-25"), "150000.00", Decimal(150000) / IDR_24),
    # Indonesian and English grouping, Indonesian decimal comma, a JSON number, casing
    "TRX-V03": (txn("TRX-V03", jumlah_transaksi="1.802.381,84"), "1802381.84", Decimal("1802381.84") / IDR_24),
    "TRX-V04": (txn("TRX-V04", jumlah_transaksi="1,802,381.84"), "1802381.84", Decimal("1802381.84") / IDR_24),
    "TRX-V05": (txn("TRX-V05", jumlah_transaksi="12,5"), "12.50", Decimal("12.5") / IDR_24),
    "TRX-V06": (
        txn("TRX-V06", jumlah_transaksi=1802381.84, status="SUCCESS"),
        "1802381.84",
        Decimal("1802381.84") / IDR_24,
    ),
    "TRX-V07": (txn("TRX-V07", jumlah_transaksi="1.802.381"), "1802381.00", Decimal(1802381) / IDR_24),
    # a USD payment on the day of the absurd IDR rate: valued at 1:1, in IDR at Friday's rate
    "TRX-V08": (
        txn("TRX-V08", date="2025-12-27", mata_uang="USD", jumlah_transaksi="5000.00"),
        "5000.00",
        Decimal("5000.00"),
    ),
    # EUR on Christmas: the rate of -1 is rejected, Wednesday's 0.95 is in force
    "TRX-V09": (
        txn("TRX-V09", date="2025-12-25", mata_uang="EUR", jumlah_transaksi="100.00"),
        "100.00",
        Decimal(100) / EUR_24,
    ),
    # SGD has only an absurd rate (rejected): kept in gold, unpriced
    "TRX-V10": (txn("TRX-V10", date="2025-12-27", mata_uang="SGD", jumlah_transaksi="1000.00"), "1000.00", None),
    "TRX-V11": (txn("TRX-V11", jumlah_transaksi="1.5e3"), "1500.00", Decimal(1500) / IDR_24),
    # on the account of a customer with a segment the bank just introduced
    "TRX-V12": (txn("TRX-V12", account_id="ACC-90001"), "150000.00", Decimal(150000) / IDR_24),
}

# Master data: kept and flagged (entity, key, flag, value) or rejected (entity, key, rule).
CUSTOMERS = [
    {
        "id": "CUST-9001",
        "nama_depan": "Dewi",
        "nama_belakang": "Lestari",
        "email": "dewi@example.com",
        "segmen": "Diamond",
        "location_id": "LOC-001",
        "bank_id": "BANK-900",
    },
    {"id": "CUST-9002"},  # every other field missing
]
ACCOUNTS = [
    {"id": "ACC-90001", "customer_id": "CUST-9001", "tipe_akun": "Giro", "saldo": "1000000"},
    {"id": "ACC-90002", "customer_id": "CUST-NOPE", "tipe_akun": "Savings", "saldo": "10"},  # orphan account
    {"id": "ACC-90003", "customer_id": None, "tipe_akun": "Savings", "saldo": "10"},
    {"id": "ACC-90004", "customer_id": "CUST-0002", "tipe_akun": "Savings", "saldo": "abc"},
    {"id": "ACC-90005", "customer_id": "CUST-0002", "tipe_akun": "Savings", "saldo": "1e20"},
    {"id": "ACC-90006", "customer_id": "CUST-0002", "tipe_akun": None, "saldo": "-2500000.00"},  # a loan
]
BANKS = [{"bank_id": "BANK-900", "nama_bank": "Bank Pembangunan Daerah", "singkatan": "BPD", "jenis_bank": "BPD"}]
FLAGGED = {
    ("customer", "CUST-9001", "unknown_segment", "Diamond"),
    ("customer", "CUST-9002", "unknown_segment", None),
    ("account", "ACC-90001", "unknown_account_type", "Giro"),
    ("account", "ACC-90002", "unknown_customer", "CUST-NOPE"),
    ("account", "ACC-90003", "unknown_customer", None),
    ("account", "ACC-90006", "unknown_account_type", None),
    ("bank", "BANK-900", "unknown_bank_type", "BPD"),
}
MASTER_REJECTS = {("account", "ACC-90004", "invalid_balance"), ("account", "ACC-90005", "invalid_balance")}

# The second, stream-only build: the known failure again, and a neighbour.
LATER_HOSTILE = {"TRX-H51": (txn("TRX-H51", date="2025-12-26", jumlah_transaksi="1e15"), "implausible_amount")}
LATER_NEIGHBOUR = txn("TRX-V51", date="2025-12-26", jumlah_transaksi="168200.00")


@dataclass
class Built:
    settings: Settings
    result: transform.TransformResult
    later: transform.TransformResult


def query(settings: Settings, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connect(settings, read_only=True) as wh:
        return wh.fetchall(sql, params)


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _fill_bronze(settings: Settings, sample_dir: Path) -> None:
    with connect(settings) as wh:
        bronze.load_seed_masters(wh, sample_dir)
        bronze.load_seed_transactions(wh, sorted((sample_dir / "stream_source").glob("*.json")))
        records = [r for r, _ in HOSTILE.values()] + [r for r, _, _ in NEIGHBOURS.values()]
        bronze.insert_transactions(wh, records, "stream-hostile", HOSTILE_AT)
        bronze.insert_rates(wh, RATES)
        bronze.insert_rates(wh, list(HOSTILE_RATES), source="hostile_api")
        for table, rows in (("raw_customers", CUSTOMERS), ("raw_accounts", ACCOUNTS), ("raw_banks", BANKS)):
            for values in rows:
                bronze.insert_master_version(wh, table, values, HOSTILE_AT)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Iterator[Built]:
    settings = Settings(state_dir=tmp_path_factory.mktemp("robust") / "state", warehouse_path=None)
    _fill_bronze(settings, sample_dir)
    result = transform.run(settings)
    with connect(settings) as wh:
        records = [r for r, _ in LATER_HOSTILE.values()] + [LATER_NEIGHBOUR]
        bronze.insert_transactions(wh, records, "stream-hostile-2", LATER_AT)
    later = transform.run(settings)
    yield Built(settings, result, later)


def _assert_every_node_ran(result: transform.TransformResult) -> None:
    assert result.success and not result.failed, [(n.name, n.message) for n in result.failed]
    skipped = [n.name for n in result.nodes if n.status == "skipped"]
    assert not skipped, f"skipped: {skipped}"


def test_the_full_build_passes_every_model(built: Built) -> None:
    _assert_every_node_ran(built.result)
    models = {n.name for n in built.result.nodes if n.resource_type == "model" and n.status == "success"}
    assert {"fact_transaction_enriched", "mart_fx_exposure", "mart_risk_indicators", "dim_date"} <= models


def test_a_stream_only_build_with_a_fat_finger_passes(built: Built) -> None:
    _assert_every_node_ran(built.later)
    assert built.later.count("seed") == 0, "a build of new stream files only"
    assert {"base_transactions", "fact_transaction_enriched"} <= {n.name for n in built.later.nodes}
    rule = query(built.settings, "select rule from silver.rejected_records where record_key = 'TRX-H51'")
    assert rule == [("implausible_amount",)]
    usd = query(
        built.settings, "select amount_usd from gold.fact_transaction_enriched where transaction_id = 'TRX-V51'"
    )
    assert usd == [(cents(Decimal("168200.00") / IDR_26),)]


@pytest.mark.parametrize("tid", sorted(HOSTILE))
def test_each_hostile_transaction_is_rejected_with_its_rule(built: Built, tid: str) -> None:
    rows = query(
        built.settings,
        "select rule, rule_description, raw_record from silver.rejected_records"
        " where entity = 'transaction' and record_key = ?",
        [tid],
    )
    assert len(rows) == 1, rows
    rule, description, raw = rows[0]
    assert rule == HOSTILE[tid][1]
    assert description, f"rule {rule} is not in ref_rejection_rules"
    assert tid in raw
    assert query(built.settings, "select count(*) from gold.fact_transaction where transaction_id = ?", [tid]) == [(0,)]


@pytest.mark.parametrize("tid", sorted(NEIGHBOURS))
def test_valid_neighbours_reach_gold_with_their_usd_value(built: Built, tid: str) -> None:
    _, amount, usd = NEIGHBOURS[tid]
    rows = query(
        built.settings,
        "select cast(amount as varchar), amount_usd from gold.fact_transaction_enriched where transaction_id = ?",
        [tid],
    )
    assert rows == [(amount, cents(usd) if usd is not None else None)]


def test_a_usd_amount_is_priced_in_idr_at_the_last_plausible_rate(built: Built) -> None:
    rows = query(
        built.settings,
        "select amount_idr, fx_rate_idr from gold.fact_transaction_enriched where transaction_id = 'TRX-V08'",
    )
    assert rows == [(cents(Decimal("5000") * IDR_26), IDR_26)]


@pytest.mark.parametrize(("rate_date", "currency", "rate"), sorted(HOSTILE_RATES))
def test_each_hostile_rate_is_rejected_with_its_rule(built: Built, rate_date: str, currency: str, rate: str) -> None:
    rows = query(
        built.settings,
        "select rule, rule_description from silver.rejected_records where entity = 'exchange_rate' and record_key = ?",
        [f"{currency}@{rate_date}"],
    )
    assert [r[0] for r in rows] == [HOSTILE_RATES[(rate_date, currency, rate)]]
    assert rows[0][1]
    used = query(
        built.settings,
        "select count(*) from silver.stg_exchange_rates where rate_date = ? and currency = ?",
        [rate_date, currency],
    )
    assert used == [(0,)]


def test_dim_date_stays_within_plausible_years(built: Built) -> None:
    years = query(built.settings, "select min(year), max(year) from gold.dim_date")
    assert years[0][0] >= 1999 and years[0][1] <= 2031


def test_master_data_with_new_enumeration_values_is_kept_and_flagged(built: Built) -> None:
    s = built.settings
    assert query(s, "select segment, is_unknown_segment from silver.stg_customers where customer_id = 'CUST-9001'") == [
        ("Diamond", True)
    ]
    assert query(s, "select segment, is_unknown_segment from gold.dim_customers where customer_id = 'CUST-9001'") == [
        ("Diamond", True)
    ]
    assert query(s, "select count(*) from gold.dim_customers where is_unknown_segment and segment = 'Gold'") == [(0,)]
    assert query(
        s,
        "select account_type, is_unknown_account_type, customer_key from gold.dim_accounts"
        " where account_id = 'ACC-90001'",
    ) == [("Giro", True, "CUST-9001")]
    assert query(s, "select bank_type, is_unknown_bank_type from gold.dim_banks where bank_id = 'BANK-900'") == [
        ("BPD", True)
    ]
    assert query(s, "select customer_key from gold.fact_transaction where transaction_id = 'TRX-V12'") == [
        ("CUST-9001",)
    ]


def test_orphan_and_incomplete_master_rows_are_kept(built: Built) -> None:
    rows = query(
        built.settings,
        "select account_id, customer_key, has_known_customer, account_type from gold.dim_accounts"
        " where account_id in ('ACC-90002', 'ACC-90003', 'ACC-90006') order by account_id",
    )
    assert rows == [
        ("ACC-90002", "-1", False, "Savings"),
        ("ACC-90003", "-1", False, "Savings"),
        ("ACC-90006", "CUST-0002", True, "Unknown"),
    ]
    assert query(built.settings, "select segment from silver.stg_customers where customer_id = 'CUST-9002'") == [
        ("Unknown",)
    ]


def test_flags_are_reported_in_flagged_records_and_as_warnings(built: Built) -> None:
    rows = query(
        built.settings,
        "select entity, record_key, flag, value, flag_description from silver.flagged_records"
        " where record_key in ('CUST-9001', 'CUST-9002', 'ACC-90001', 'ACC-90002', 'ACC-90003', 'ACC-90006',"
        " 'BANK-900')",
    )
    assert {r[:4] for r in rows} == FLAGGED
    assert all(r[4] for r in rows), "every flag is described in ref_quality_flags"
    warned = {n.name for n in built.result.warned}
    assert any("segment" in name for name in warned), warned
    assert any("account_type" in name for name in warned), warned


def test_master_rows_that_cannot_be_typed_are_rejected(built: Built) -> None:
    rows = query(
        built.settings,
        "select entity, record_key, rule from silver.rejected_records where entity in ('account', 'customer', 'bank')",
    )
    assert set(rows) == MASTER_REJECTS


def test_control_totals_still_balance(built: Built) -> None:
    rows = query(built.settings, "select currency, is_balanced from audit.reconciliation_transactions")
    assert rows and all(balanced for _, balanced in rows), rows
