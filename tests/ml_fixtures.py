"""A tiny silver layer for the ML tests, built straight into DuckDB (no dbt run, no generator).

The tables have the columns of the dbt models the ML code reads (silver.base_transactions,
base_accounts, base_customers, stg_fraud_cases, int_locations_geocoded, int_exchange_rates), so the
feature SQL runs unchanged. `world()` plants night bursts of large transfers to new counterparties
as fraud, reported two days later (some never), which a model can learn from a few thousand rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bankpipe.warehouse import Warehouse
from tests import ml_dbt

LOADED_AT = datetime(2026, 1, 1, tzinfo=UTC)
# Master data as the initial load (backfill) knows it: in force from before the transactions.
MASTER_FROM = datetime(2025, 1, 1, tzinfo=UTC)
START = date(2025, 10, 1)

LOCATIONS = pd.DataFrame(
    {
        "location_id": ["LOC-001", "LOC-002", "LOC-003", "LOC-004", "LOC-005"],
        "latitude": [-6.2088, -6.9175, -7.2575, 3.5952, -5.1477],
        "longitude": [106.8456, 107.6191, 112.7521, 98.6722, 119.4327],
    }
)

DDL = [
    # As in dbt: base_transactions holds every typed row (rejected ones with their rule), and
    # stg_transactions is a view of the valid ones.
    """create or replace table silver.base_transactions (
        transaction_id varchar, account_id varchar, counterparty_account_id varchar, location_id varchar,
        transaction_type varchar, status varchar, currency varchar, channel varchar, amount decimal(18, 2),
        transaction_date date, transaction_at timestamp, rejection_rule varchar,
        batch_id varchar, loaded_at timestamptz, source_name varchar, record_hash varchar)""",
    """create or replace view silver.stg_transactions as
        select * exclude (rejection_rule), false as is_orphan, true as is_counterparty_internal
        from silver.base_transactions where rejection_rule is null""",
    # As in dbt: base_accounts / base_customers hold every extracted version (tombstones too), and
    # stg_* are the current valid ones.
    """create or replace table silver.base_accounts (
        account_id varchar, customer_id varchar, account_type varchar, balance_idr decimal(18, 2),
        is_deleted boolean, created_at timestamptz, updated_at timestamptz, batch_id varchar, loaded_at timestamptz,
        record_hash varchar, rejection_rule varchar, is_unknown_account_type boolean)""",
    """create or replace table silver.base_customers (
        customer_id varchar, location_id varchar, bank_id varchar, first_name varchar, last_name varchar,
        segment varchar, is_deleted boolean, created_at timestamptz, updated_at timestamptz, batch_id varchar,
        loaded_at timestamptz, record_hash varchar, rejection_rule varchar, first_name_masked varchar,
        last_name_masked varchar, full_name_masked varchar, email_masked varchar, name_pseudonym varchar,
        email_pseudonym varchar, is_unknown_segment boolean)""",
    # Every version of every fraud case (dbt's int_fraud_case_versions reads it); stg_fraud_cases the current.
    """create or replace table silver.base_fraud_cases (
        transaction_id varchar, is_confirmed_fraud boolean, is_deleted boolean, reported_at timestamp,
        created_at timestamptz, updated_at timestamptz, batch_id varchar, loaded_at timestamptz,
        record_hash varchar, rejection_rule varchar)""",
    *(
        f"""create or replace view silver.stg_{entity}s as
        select * exclude (version_rank, is_deleted, record_hash, rejection_rule) from (
            select *, row_number() over (partition by {entity}_id
                                         order by updated_at desc, loaded_at desc, batch_id desc, record_hash desc)
                      as version_rank
            from silver.base_{entity}s where rejection_rule is null)
        where version_rank = 1 and not is_deleted"""
        for entity in ("account", "customer")
    ),
    """create or replace table silver.stg_fraud_cases (
        transaction_id varchar, is_confirmed_fraud boolean, reported_at timestamp, updated_at timestamptz,
        batch_id varchar, loaded_at timestamptz)""",
    """create or replace table silver.int_locations_geocoded (
        location_id varchar, city varchar, latitude double, longitude double)""",
    """create or replace table silver.int_exchange_rates (
        currency varchar, rate_date date, rate decimal(24, 10), rate_source varchar)""",
]

TXN_COLUMNS = [
    "transaction_id",
    "account_id",
    "counterparty_account_id",
    "location_id",
    "transaction_type",
    "status",
    "currency",
    "channel",
    "amount",
    "transaction_date",
    "transaction_at",
]


@dataclass
class World:
    """What was built: all transactions (with the planted truth) and the fraud reports."""

    transactions: pd.DataFrame  # TXN_COLUMNS + is_fraud
    reports: pd.DataFrame  # transaction_id, reported_at
    accounts: pd.DataFrame


def create_silver(wh: Warehouse) -> None:
    """Empty silver-like tables with the dbt models' column names (replacing earlier ones)."""
    wh.execute("create schema if not exists silver")
    for statement in DDL:
        wh.execute(statement)
    wh.con.register("_locations", LOCATIONS)  # type: ignore[attr-defined]
    wh.execute(
        "insert into silver.int_locations_geocoded select location_id, location_id, latitude, longitude from _locations"
    )
    wh.con.unregister("_locations")  # type: ignore[attr-defined]
    days = pd.date_range(START - timedelta(days=10), periods=400, freq="D")
    rates = pd.concat(
        [
            pd.DataFrame({"currency": "IDR", "rate_date": days.date, "rate": 16_000 + 10 * np.sin(np.arange(400))}),
            pd.DataFrame({"currency": "USD", "rate_date": [date(1900, 1, 1)], "rate": [1.0]}),
        ]
    )
    wh.con.register("_rates", rates)  # type: ignore[attr-defined]
    wh.execute("insert into silver.int_exchange_rates select currency, rate_date, rate, 'test' from _rates")
    wh.con.unregister("_rates")  # type: ignore[attr-defined]
    ml_dbt.create_views(wh)


def add_accounts(
    wh: Warehouse, rows: list[tuple[str, str, str, float, str, str, str]], updated_at: datetime = MASTER_FROM
) -> None:
    """(account_id, customer_id, account_type, balance, home location, bank, segment) rows, one version each."""
    for acc, cust, acc_type, balance, loc, bank, segment in rows:
        add_account_version(wh, acc, cust, acc_type, balance, updated_at)
        add_customer_version(wh, cust, loc, bank, segment, updated_at)


def add_account_version(
    wh: Warehouse,
    account_id: str,
    customer_id: str,
    account_type: str,
    balance: float,
    updated_at: datetime,
    *,
    deleted: bool = False,
    loaded_at: datetime = LOADED_AT,
) -> None:
    """One extracted version of an account, in force from `updated_at` (the source's clock)."""
    wh.execute(
        "insert into silver.base_accounts values (?, ?, ?, ?, ?, ?, ?, 'b', ?, md5(?), null, false)",
        [
            account_id,
            customer_id,
            account_type,
            balance,
            deleted,
            updated_at,
            updated_at,
            loaded_at,
            f"{account_id}|{updated_at}",
        ],
    )


def add_customer_version(
    wh: Warehouse,
    customer_id: str,
    location_id: str,
    bank_id: str,
    segment: str,
    updated_at: datetime,
    *,
    deleted: bool = False,
    loaded_at: datetime = LOADED_AT,
) -> None:
    """One extracted version of a customer, in force from `updated_at` (the source's clock)."""
    wh.execute(
        "insert into silver.base_customers values (?, ?, ?, 'A', 'B', ?, ?, ?, ?, 'b', ?, md5(?), null,"
        " 'A*****', 'B*****', 'A***** B*****', null, md5(?), null, false)",
        [
            customer_id,
            location_id,
            bank_id,
            segment,
            deleted,
            updated_at,
            updated_at,
            loaded_at,
            f"{customer_id}|{updated_at}",
            customer_id,
        ],
    )


def add_transactions(
    wh: Warehouse, df: pd.DataFrame, batch_id: str = "silver-1", loaded_at: datetime = LOADED_AT
) -> None:
    """Append valid transactions (TXN_COLUMNS) to silver.base_transactions (seen through stg_transactions)."""
    frame = df[TXN_COLUMNS].assign(batch_id=batch_id, loaded_at=loaded_at)
    wh.con.register("_txn", frame)  # type: ignore[attr-defined]
    wh.execute(
        f"""insert into silver.base_transactions
            select {", ".join(TXN_COLUMNS[:-2])}, transaction_date, transaction_at, null, batch_id,
                   loaded_at, 'test', md5(transaction_id) from _txn"""
    )
    wh.con.unregister("_txn")  # type: ignore[attr-defined]


def add_reports(wh: Warehouse, reports: pd.DataFrame, confirmed: bool = True, loaded_at: datetime = LOADED_AT) -> None:
    """Append fraud cases (transaction_id, reported_at) as one load (the first load is the backfill)."""
    for tid, at in reports[["transaction_id", "reported_at"]].itertuples(index=False):
        reported = pd.Timestamp(at).to_pydatetime()
        wh.execute(
            "insert into silver.stg_fraud_cases values (?, ?, ?, ?, 'b', ?)",
            [tid, confirmed, reported, loaded_at, loaded_at],
        )
        wh.execute(
            "insert into silver.base_fraud_cases values (?, ?, false, ?, ?, ?, 'b', ?, md5(?), null)",
            [tid, confirmed, reported, loaded_at, loaded_at, loaded_at, f"{tid}|{confirmed}|{loaded_at}"],
        )


def world(n_accounts: int = 60, days: int = 60, per_day: float = 1.2, seed: int = 7) -> World:
    """Random but reproducible accounts and transactions, with planted fraud and delayed reports."""
    rng = np.random.default_rng(seed)
    accounts = pd.DataFrame(
        {
            "account_id": [f"ACC-{i:05d}" for i in range(1, n_accounts + 1)],
            "customer_id": [f"CUST-{i:04d}" for i in range(1, n_accounts + 1)],
            "account_type": rng.choice(["Savings", "Checking"], n_accounts),
            "balance": np.round(np.exp(rng.normal(17, 0.8, n_accounts)), 2),
            "home": rng.choice(LOCATIONS["location_id"].to_numpy(), n_accounts),
            "bank": rng.choice(["BANK-001", "BANK-002"], n_accounts),
            "segment": rng.choice(["Gold", "Silver", "Standard"], n_accounts),
            "mu": rng.normal(13.5, 0.6, n_accounts),
        }
    )
    n = rng.poisson(per_day * days * n_accounts)
    acc = rng.integers(0, n_accounts, n)
    day = rng.integers(0, days, n)
    secs = rng.integers(7 * 3600, 21 * 3600, n)
    amount = np.round(np.exp(accounts["mu"].to_numpy()[acc] + rng.normal(0, 0.4, n)), -2)
    usual_cp = (acc[:, None] + np.array([1, 2, 3])[None, :]) % n_accounts
    cp = usual_cp[np.arange(n), rng.integers(0, 3, n)]
    ratio = amount / accounts["balance"].to_numpy()[acc]
    p_fail = 1 / (1 + np.exp(-(-3.5 + 25 * ratio)))
    u = rng.random(n)
    status = np.where(u < p_fail, "Failed", np.where(u < p_fail + 0.05, "Pending", "Success"))
    legit = pd.DataFrame(
        {
            "acc": acc,
            "ts": pd.Timestamp(START) + pd.to_timedelta(day * 86_400 + secs, unit="s"),
            "amount": amount,
            "cp": cp,
            "transaction_type": rng.choice(["Transfer", "Payment", "Withdrawal", "Deposit"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "channel": rng.choice(["mobile", "atm", "branch", "internet_banking"], n),
            "location_id": accounts["home"].to_numpy()[acc],
            "status": status,
            "is_fraud": False,
        }
    )
    # Fraud: night bursts of 3 large transfers from a victim to accounts it never paid, elsewhere.
    bursts = []
    for b in range(max(days // 2, 4)):
        victim = int(rng.integers(0, n_accounts))
        offset = pd.Timedelta(days=int(rng.integers(3, days)), seconds=int(rng.integers(3600, 3 * 3600)))
        start = pd.Timestamp(START) + offset
        places = list(LOCATIONS["location_id"])
        far = places[(places.index(accounts["home"][victim]) + 2) % len(places)]
        for j in range(3):
            bursts.append(
                {
                    "acc": victim,
                    "ts": start + pd.Timedelta(minutes=7 * j),
                    "amount": round(float(np.exp(accounts["mu"][victim]) * rng.uniform(8, 20)), -2),
                    "cp": 1000 + b,  # a mule outside the customer base
                    "transaction_type": "Transfer",
                    "channel": "mobile",
                    "location_id": far,
                    "status": "Success" if j < 2 else "Failed",
                    "is_fraud": True,
                }
            )
    txn = pd.concat([legit, pd.DataFrame(bursts)], ignore_index=True).sort_values(["ts", "acc"], kind="stable")
    txn = txn.reset_index(drop=True)
    out = pd.DataFrame(
        {
            "transaction_id": [f"TRX-{i:07d}" for i in range(1, len(txn) + 1)],
            "account_id": accounts["account_id"].to_numpy()[txn["acc"]],
            "counterparty_account_id": [f"ACC-{c + 1:05d}" for c in txn["cp"]],
            "location_id": txn["location_id"],
            "transaction_type": txn["transaction_type"],
            "status": txn["status"],
            "currency": "IDR",
            "channel": txn["channel"],
            "amount": txn["amount"].round(2),
            "transaction_date": txn["ts"].dt.date,
            "transaction_at": txn["ts"].dt.floor("s"),
            "is_fraud": txn["is_fraud"],
        }
    )
    fraud = out[out["is_fraud"]]
    reported = fraud.groupby("account_id")["transaction_at"].transform("max") + pd.Timedelta(days=2)
    keep = rng.random(len(fraud)) < 0.9  # some fraud is never reported
    reports = pd.DataFrame({"transaction_id": fraud["transaction_id"], "reported_at": reported})[keep]
    return World(out, reports.reset_index(drop=True), accounts)


def build(wh: Warehouse, w: World, until: pd.Timestamp | None = None) -> None:
    """Silver with the world's accounts, its transactions (before `until`, if given) and its reports."""
    create_silver(wh)
    add_accounts(
        wh,
        [
            (r.account_id, r.customer_id, r.account_type, float(r.balance), r.home, r.bank, r.segment)
            for r in w.accounts.itertuples()
        ],
    )
    txn = w.transactions if until is None else w.transactions[w.transactions["transaction_at"] < until]
    add_transactions(wh, txn)
    add_reports(wh, w.reports)


def write_stream_files(df: pd.DataFrame, folder: Path, per_file: int) -> list[Path]:
    """The transactions as seed-format JSON array files (`transaction_YYYYMMDD_HHMMSS.json`), in time order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(0, len(df), per_file):
        part = df.iloc[i : i + per_file]
        records = [
            {
                "id": r.transaction_id,
                "date": r.transaction_at.strftime("%Y-%m-%d"),
                "timestamp": r.transaction_at.strftime("%H:%M:%S"),
                "account_id": r.account_id,
                "jumlah_transaksi": f"{r.amount:.2f}",
                "tipe_transaksi": r.transaction_type,
                "akun_tujuan": r.counterparty_account_id,
                "status": r.status,
                "mata_uang": r.currency,
                "channel": r.channel,
                "location_id": r.location_id,
            }
            for r in part.itertuples()
        ]
        last = part["transaction_at"].max()
        path = folder / f"transaction_{last:%Y%m%d_%H%M%S}_{i:05d}.json"
        path.write_text(json.dumps(records, indent=4), encoding="utf-8")
        paths.append(path)
    return paths
