"""The generator against a real PostgreSQL: `--to-postgres` loads, `--mutate` changes exactly what it reports."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bankpipe.cli import app
from bankpipe.errors import SourceError
from bankpipe.generate import GenerateConfig, follow, generate, mutate
from bankpipe.source.db import connect
from bankpipe.source.load import load_files
from bankpipe.source.schema import COLUMNS, KEYS

pytestmark = pytest.mark.integration

TABLES = ("customer", "account")


def _rows(conn: psycopg.Connection, table: str) -> dict[str, tuple]:
    cols = ", ".join(COLUMNS[table])
    return {r[0]: r for r in conn.execute(f"select {cols} from {table}").fetchall()}


def _watermark(conn: psycopg.Connection) -> dict[str, object]:
    return {t: conn.execute(f"select max(updated_at) from {t}").fetchone()[0] for t in TABLES}


def _generated(tmp_path: Path, **changes: object) -> GenerateConfig:
    config = GenerateConfig(customers=400, transactions=3_000, days=10, seed=21, out=tmp_path / "data").with_(**changes)
    generate(config)
    return config


def test_to_postgres_loads_every_batch_file(settings, tmp_path):
    out = tmp_path / "data"
    result = CliRunner().invoke(
        app,
        ["generate", "--customers", "300", "--transactions", "4000", "--days", "20", "--seed", "4",
         "--out", str(out), "--to-postgres"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    batch = out / "batch_source"
    with connect(settings) as conn:
        counts = {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in KEYS}
        accounts = json.loads((batch / "account.json").read_bytes())
        assert counts["account"] == len(accounts)
        assert counts["customer"] == 300
        assert counts["bank_info"] == 15
        assert counts["location"] == sum(1 for _ in (batch / "location.txt").open()) - 1
        with (batch / "fraud_case.csv").open(newline="") as fh:
            cases = list(csv.DictReader(fh))
        assert counts["fraud_case"] == len(cases) > 0
        # Balances arrive exactly (DECIMAL), ids in the run's width.
        first = accounts[0]
        saldo = conn.execute("select saldo from account where id = %s", (first["id"],)).fetchone()[0]
        assert str(saldo) == f"{first['saldo']:.2f}"
        orphans = conn.execute("select count(*) from account a left join customer c on c.id = a.customer_id "
                               "where c.id is null").fetchone()[0]  # fmt: skip
        assert orphans == 0
        reported = conn.execute("select min(reported_at), max(reported_at) from fraud_case").fetchone()
        assert reported[0] <= reported[1]


def test_mutate_changes_exactly_what_it_reports(settings, tmp_path):
    config = _generated(tmp_path)
    with connect(settings) as conn:
        load_files(conn, config.batch_dir)
        before = {t: _rows(conn, t) for t in TABLES}
        mark = _watermark(conn)
    summary = mutate(settings, seed=3, out=config.out)
    with connect(settings) as conn:
        after = {t: _rows(conn, t) for t in TABLES}
        touched = {
            t: {r[0] for r in conn.execute(f"select {KEYS[t]} from {t} where updated_at > %s", (mark[t],)).fetchall()}
            for t in TABLES
        }
    for t in TABLES:
        inserted = set(after[t]) - set(before[t])
        deleted = set(before[t]) - set(after[t])
        updated = {k for k in set(before[t]) & set(after[t]) if before[t][k] != after[t][k]}
        assert inserted == set(summary.inserted[t]) and inserted, t
        assert deleted == set(summary.deleted[t]) and deleted, t
        assert updated == set(summary.updated[t]) and updated, t
        # What an incremental extraction sees: exactly the inserted and updated rows.
        assert touched[t] == inserted | updated, t
    # Segment changes and balance updates, as recorded in the ground truth.
    record = json.loads(summary.path.read_text())
    assert summary.path.parent == config.truth_dir / "mutations"
    for key, change in record["changes"]["customer"].items():
        old, new = change["segmen"]
        assert old != new and after["customer"][key][4] == new
    for key, change in record["changes"]["account"].items():
        assert str(after["account"][key][3]) == change["saldo"][1]
    assert record["tables"]["account"]["inserted"] == summary.inserted["account"]
    # New ids continue the existing ones in the same width.
    widths = {len(k) for k in after["customer"]}
    assert len(widths) == 1
    assert min(summary.inserted["customer"]) > max(before["customer"])
    new_accounts = [after["account"][k] for k in summary.inserted["account"]]
    assert {a[1] for a in new_accounts} <= set(summary.inserted["customer"])


def test_mutate_is_deterministic_for_a_seed_and_a_new_day_differs(settings, tmp_path):
    config = _generated(tmp_path)
    reports = []
    for out in (tmp_path / "first", tmp_path / "second"):
        with connect(settings) as conn:
            conn.execute("delete from account")
            conn.execute("delete from customer")
            conn.commit()
            load_files(conn, config.batch_dir)
        reports.append(mutate(settings, seed=3, out=out))
    a, b = reports
    assert (a.inserted, a.updated, a.deleted) == (b.inserted, b.updated, b.deleted)
    assert a.path.read_bytes() == b.path.read_bytes()
    next_day = mutate(settings, seed=3, out=tmp_path / "second")
    assert next_day.day == 2 and next_day.updated != b.updated


def test_mutate_without_master_data_is_one_clear_error(settings, tmp_path):
    with pytest.raises(SourceError, match="no master data"):
        mutate(settings, seed=1, out=tmp_path)
    result = CliRunner().invoke(app, ["generate", "--mutate", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_cli_mutate_reports_its_changes(settings, tmp_path):
    config = _generated(tmp_path)
    with connect(settings) as conn:
        load_files(conn, config.batch_dir)
    result = CliRunner().invoke(app, ["generate", "--mutate", "--seed", "5", "--out", str(config.out)])
    assert result.exit_code == 0, result.output
    assert "mutation day 1" in result.output
    assert (config.truth_dir / "mutations" / "mutation_0001.json").is_file()


def test_balances_follow_the_followed_transactions_into_the_source(settings, tmp_path):
    """Two extractions of `account` differ by the money the followed transactions moved in between."""
    config = _generated(tmp_path, records_per_file=500)
    with connect(settings) as conn:
        load_files(conn, config.batch_dir)
        first = {k: r[3] for k, r in _rows(conn, "account").items()}
    follow(config, interval_s=0, max_files=3)
    summary = mutate(settings, seed=3, out=config.out)
    with connect(settings) as conn:
        second = {k: r[3] for k, r in _rows(conn, "account").items()}
    record = json.loads(summary.path.read_text())
    assert len(record["follow_files"]) == 3

    # The net flow per account of the followed transactions that moved money.
    tx = pd.concat(pq.read_table(config.truth_dir / "follow" / f).to_pandas() for f in record["follow_files"])
    for column in ("account_id", "akun_tujuan", "tipe_transaksi", "status"):
        tx[column] = tx[column].astype(str)
    tx = tx[(tx.status != "Failed") & ~tx.is_orphan]
    cents = (tx.amount_idr * 100).round().astype("int64")
    net = cents.where(tx.tipe_transaksi == "Deposit", -cents).groupby(tx.account_id).sum()
    into = tx.tipe_transaksi.isin(["Transfer", "Payment"]) & (tx.akun_tujuan != tx.account_id)
    net = net.add(cents[into].groupby(tx.akun_tujuan[into]).sum(), fill_value=0)
    net = net[(net != 0) & net.index.isin(list(first)) & ~net.index.isin(summary.deleted["account"])]
    assert len(net) > 20
    exact = sum(
        second[a] == max(Decimal(first[a]) + Decimal(int(flow)) / 100, Decimal("0.00")) for a, flow in net.items()
    )
    # Exactly the flow, except where a fee or interest was also posted that day (a few percent).
    assert exact >= 0.8 * len(net)
    assert set(net.index) <= set(summary.updated["account"])
