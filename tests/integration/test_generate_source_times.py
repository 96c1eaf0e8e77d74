"""Generated master data carries the simulated timeline into PostgreSQL, and point in time sees it.

`generate --to-postgres` inserts customers created (and last changed) when they joined, before the
period; accounts opened before the period but in their current state (the closing balance) only from
the period's end; locations and banks long before. Seed files without the generator's record, and
every later change, are stamped now() as before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bankpipe import transform
from bankpipe.cli import app
from bankpipe.ingest import postgres, stream
from bankpipe.ml import features
from bankpipe.source.db import connect as source
from bankpipe.source.load import load_files
from bankpipe.warehouse import connect

pytestmark = pytest.mark.integration

START = datetime(2025, 12, 1, tzinfo=UTC) - timedelta(hours=7)  # 2025-12-01 00:00 WIB
DAYS = 10
END = START + timedelta(days=DAYS)


def _generate(out: Path, *extra: str) -> None:
    result = CliRunner().invoke(
        app,
        ["generate", "--customers", "200", "--transactions", "3000", "--days", str(DAYS), "--seed", "8",
         "--start-date", "2025-12-01", "--out", str(out), *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def _times(conn, table: str, key: str = "id") -> pd.DataFrame:
    rows = conn.execute(f"select {key}, created_at, updated_at from {table}").fetchall()
    return pd.DataFrame(rows, columns=["key", "created_at", "updated_at"]).set_index("key")


def test_to_postgres_inserts_the_simulated_times_and_changes_are_stamped_now(settings, tmp_path):
    _generate(tmp_path / "data", "--to-postgres")
    with source(settings, use="write") as conn:
        customers, accounts = _times(conn, "customer"), _times(conn, "account")
        owner = dict(conn.execute("select id, customer_id from account").fetchall())
        places = pd.concat([_times(conn, "location"), _times(conn, "bank_info", "bank_id")])
        assert len(customers) == 200
        # Customers joined before the period, spread over years, unchanged since.
        assert (customers.created_at < START).all() and (customers.updated_at == customers.created_at).all()
        assert customers.created_at.max() - customers.created_at.min() > timedelta(days=365)
        # Accounts opened before the period, after their holder joined; the row's state is the period end's.
        assert (accounts.created_at < START).all() and (accounts.updated_at == END).all()
        holders = customers.created_at.reindex([owner[k] for k in accounts.index]).to_numpy()
        assert (accounts.created_at.to_numpy() >= holders).all()
        assert (places.created_at < customers.created_at.min()).all()

        # A change made now is stamped now by the trigger, whatever the writer sets.
        key = customers.index[0]
        before = conn.execute("select now()").fetchone()[0]
        conn.execute("update customer set segmen = 'Gold', updated_at = %s where id = %s", (START, key))
        conn.commit()
        row = conn.execute("select created_at, updated_at from customer where id = %s", (key,)).fetchone()
        assert row[0] == customers.created_at[key] and row[1] >= before


def test_batch_files_without_their_source_times_load_with_now(settings, tmp_path, sample_dir):
    out = tmp_path / "data"
    _generate(out)
    # An edited file is no longer the one the times were written for: its rows get now().
    customer_csv = out / "batch_source" / "customer.csv"
    customer_csv.write_bytes(customer_csv.read_bytes().replace(b"Standard", b"Gold", 1))
    with source(settings, use="write") as conn:
        before = conn.execute("select now()").fetchone()[0]
        load_files(conn, out / "batch_source")
        customers, accounts = _times(conn, "customer"), _times(conn, "account")
        assert (customers.created_at >= before).all() and (customers.updated_at >= before).all()
        assert (accounts.updated_at == END).all()

        # The seed's own files have no source times at all.
        for table in ("location", "bank_info", "customer", "account", "fraud_case"):
            conn.execute(f"delete from {table}")
        conn.commit()
        load_files(conn, sample_dir / "batch_source")
        for table, key in (("customer", "id"), ("account", "id"), ("location", "id"), ("bank_info", "bank_id")):
            times = _times(conn, table, key)
            assert len(times) and (times.updated_at >= before).all(), table


@pytest.mark.slow
def test_features_know_the_customer_before_the_period_and_the_account_only_after_it(settings, landing, tmp_path):
    _generate(tmp_path / "data", "--to-postgres", "--stream-out", str(landing))
    assert postgres.run(settings, "incremental")
    stream.run(settings)
    assert transform.run(settings).success
    with connect(settings) as wh:
        f = features.compute(wh, "true")
        customers = features.fetch_df(
            wh, "select customer_id, known_from, known_until from silver.int_customer_versions"
        )
        owners = features.fetch_df(wh, "select distinct account_id, customer_id from silver.int_account_versions")
        accounts = features.fetch_df(wh, "select account_id, known_from from silver.int_account_versions")
    assert len(f) > 2_500
    # Bank time (WIB, naive) as silver keeps it.
    end_wib = (END + timedelta(hours=7)).replace(tzinfo=None)
    assert (accounts.known_from == end_wib).all()
    assert (f.transaction_at < end_wib).all()
    # Every transaction precedes its account's only known version: type and balance are missing, flagged.
    assert (f.account_type == "Unknown").all() and f.log_balance_idr.isna().all()
    assert ((f.segment == "Unknown") == (f.is_master_unknown == 1)).all()
    # The customer's version is in force at the transaction (the first load adopts the source's times):
    # what a customer lookup not gated by the account's version would find.
    m = (
        f[["transaction_id", "account_id", "transaction_at"]]
        .merge(owners, on="account_id")
        .merge(customers, on="customer_id")
    )
    known = (m.known_from <= m.transaction_at) & (m.known_until.isna() | (m.transaction_at < m.known_until))
    assert m[known].transaction_id.nunique() >= 0.95 * len(f)

    # The dataset goes on after the period (`--follow`, in real time): there the accounts' closing
    # state is in force, so the same features find the account, its customer's segment and the balance.
    _generate(tmp_path / "data", "--stream-out", str(landing), "--follow", "--max-files", "2", "--interval", "0")
    assert stream.run(settings).loaded
    with connect(settings) as wh:
        later = features.compute(wh, "true", new_only=True)
    assert len(later) > 20 and (later.transaction_at >= end_wib).all()
    # Orphan accounts (a planted defect) have no master data at all.
    known = later[later.account_id.isin(set(owners.account_id))]
    assert len(known) >= 0.9 * len(later)
    assert (known.segment != "Unknown").all() and (known.is_master_unknown == 0).all()
    assert (known.account_type != "Unknown").all() and known.log_balance_idr.notna().all()
