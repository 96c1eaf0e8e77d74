"""The Snowflake warehouse on fakesnow: auth and secrets, DDL, stream and batch ingest equal to DuckDB's."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from bankpipe.errors import BankpipeError
from bankpipe.ingest import postgres, stream
from bankpipe.source.db import connect as source_connect
from bankpipe.source.load import load_files
from bankpipe.source.schema import COLUMNS, KEYS
from bankpipe.warehouse import connect as wh_connect
from bankpipe.warehouse.ddl import MASTER_TABLES
from bankpipe.warehouse.snowflake import SnowflakeConfig, SnowflakeWarehouse

from .conftest import PASSWORD

pytestmark = [pytest.mark.snowflake_emulated, pytest.mark.integration]

PASSPHRASE = "key-passphrase-Never-Logged"


def _write_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
    )


# --- connection and secrets -----------------------------------------------------------------------


def test_password_and_key_pair_connect_without_a_secret_in_logs(tmp_path, emulator, caplog):
    caplog.set_level(logging.DEBUG)
    key = tmp_path / "rsa_key.p8"
    _write_key(key)
    configs = [
        SnowflakeConfig(account="fakesnow", user="loader", password=SecretStr(PASSWORD)),
        SnowflakeConfig(
            account="fakesnow", user="loader", private_key_path=key, private_key_passphrase=SecretStr(PASSPHRASE)
        ),
    ]
    for config in configs:
        with SnowflakeWarehouse(config) as wh:
            wh.ensure_schemas()
            assert wh.fetchone("select 1") == (1,)
        assert PASSWORD not in repr(config) and PASSPHRASE not in repr(config)
    kwargs = configs[1].connect_kwargs()
    assert isinstance(kwargs["private_key"], bytes) and "password" not in kwargs
    assert "key-pair auth" in caplog.text and "password auth" in caplog.text
    assert PASSWORD not in caplog.text and PASSPHRASE not in caplog.text


def test_bad_credentials_fail_with_one_line_naming_no_secret(tmp_path, emulator):
    key = tmp_path / "rsa_key.p8"
    _write_key(key)
    wrong = SnowflakeConfig(
        account="a", user="u", private_key_path=key, private_key_passphrase=SecretStr("nope-" + PASSWORD)
    )
    with pytest.raises(BankpipeError, match="cannot load Snowflake private key") as exc:
        wrong.connect_kwargs()
    assert PASSWORD not in str(exc.value)
    with pytest.raises(BankpipeError, match="no Snowflake credentials"):
        SnowflakeConfig(account="a", user="u").connect_kwargs()
    with pytest.raises(BankpipeError, match="cannot read Snowflake private key"):
        SnowflakeConfig(account="a", user="u", private_key_path=tmp_path / "missing.p8").connect_kwargs()


def test_missing_account_is_refused(sf_settings):
    with pytest.raises(BankpipeError, match="SNOWFLAKE_ACCOUNT"):
        SnowflakeConfig.from_settings(sf_settings.model_copy(update={"snowflake_account": None}))


def test_connect_creates_the_layers_bronze_and_ops(sf_settings):
    with wh_connect(sf_settings) as wh:
        assert wh.dialect == "snowflake"
        schemas = {r[0] for r in wh.fetchall("select schema_name from information_schema.schemata")}
        assert {"BRONZE", "SILVER", "GOLD", "OPS"} <= schemas
        for table in [*MASTER_TABLES.values(), "raw_transaction_records", "raw_exchange_rates"]:
            assert wh.table_exists("bronze", table), table
        for table in ("ingested_files", "rejected_files", "watermarks", "run_log"):
            assert wh.table_exists("ops", table), table
    with wh_connect(sf_settings) as wh:  # idempotent; the view serves the seed's fields upper-case
        assert wh.fetchone('select count(*), count("ID"), count("DATE") from bronze.raw_transactions') == (0, 0, 0)


# --- stream ingest --------------------------------------------------------------------------------


def _records(n: int, start: int = 1, **extra) -> list[dict]:
    return [
        {
            "id": f"TRX-{i:06d}",
            "date": "2025-12-24",
            "timestamp": "10:00:00",
            "account_id": "ACC-00001",
            "jumlah_transaksi": 1000.5 + i,
            "tipe_transaksi": "Transfer",
            "akun_tujuan": "ACC-00002",
            "status": "Success",
            **extra,
        }
        for i in range(start, start + n)
    ]


def _fill_landing(folder: Path, sample_dir: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in sorted((sample_dir / "stream_source").iterdir()):
        shutil.copy(f, folder)
    lines = "\n".join(json.dumps(r) for r in _records(3, 100, channel="mobile", device_id="D-9", mata_uang="USD"))
    (folder / "transaction_20260101_000000.jsonl").write_bytes(b"\xef\xbb\xbf" + lines.encode())
    good = json.dumps(_records(3, 200))
    (folder / "truncated.json").write_text(good[: len(good) // 2])


def _stream_bronze(settings) -> list[tuple]:
    """Bronze stream records as (source file, sha, record as parsed JSON), in a stable order."""
    with wh_connect(settings) as wh:
        rows = wh.fetchall(
            "select _source, _file_sha256, _record, id from bronze.raw_transactions order by _source, id"
        )
    return [(src, sha, json.loads(rec if isinstance(rec, str) else json.dumps(rec)), i) for src, sha, rec, i in rows]


def test_stream_ingest_gives_the_same_bronze_as_duckdb(settings, sf_settings, sample_dir):
    for s in (settings, sf_settings):
        _fill_landing(s.transactions_landing, sample_dir)
        result = stream.run(s)
        assert result.rows == 63 and len(result.loaded) == 4
        # A truncated array is recorded partial and left in place, on both warehouses alike.
        assert [name for name, _ in result.partial] == ["truncated.json"] and not result.rejected
    duck, snow = _stream_bronze(settings), _stream_bronze(sf_settings)
    assert len(snow) == 63
    assert snow == duck  # whole records (unknown fields included), file names and hashes
    seed_fields = (
        "id, date, timestamp, account_id, tipe_transaksi, akun_tujuan, status, mata_uang, channel, location_id"
    )
    amounts = "select id, jumlah_transaksi from bronze.raw_transactions order by id"
    with wh_connect(settings) as d, wh_connect(sf_settings) as s:
        view = f"select {seed_fields} from bronze.raw_transactions order by id"
        assert s.fetchall(view) == d.fetchall(view)
        # Amount text may differ in form (Snowflake's VARIANT normalises 329575.0 to 329575), never in value.
        assert [(i, Decimal(a)) for i, a in s.fetchall(amounts)] == [(i, Decimal(a)) for i, a in d.fetchall(amounts)]
        ledger = "select file_name, sha256, rows, version, status from ops.ingested_files order by file_name"
        assert s.fetchall(ledger) == d.fetchall(ledger)
        partial = "select file_name, detail from ops.ingested_files where status = 'partial'"
        assert s.fetchall(partial) == d.fetchall(partial) and len(s.fetchall(partial)) == 1
    assert (sf_settings.transactions_landing / "truncated.json").exists()
    # Exactly once: a second pass loads nothing, a copy under another name is a duplicate.
    assert stream.run(sf_settings).rows == 0
    shutil.copy(
        sf_settings.transactions_landing / "transaction_20251224_180744.json",
        sf_settings.transactions_landing / "again.json",
    )
    again = stream.run(sf_settings)
    assert again.rows == 0 and again.duplicates == [("again.json", "transaction_20251224_180744.json")]
    with wh_connect(sf_settings) as wh:
        assert wh.fetchone("select count(*) from bronze.raw_transaction_records") == (63,)
        assert wh.fetchone("select count(*) from ops.run_log where status = 'success' and step = 'ingest.stream'") == (
            3,
        )


def test_stream_salvage_partial_and_literal_names_on_snowflake(sf_settings):
    """The same file-level truth as on DuckDB: bad lines kept, truncated files partial, glob names literal."""
    import os

    folder = sf_settings.transactions_landing
    folder.mkdir(parents=True, exist_ok=True)
    good = [json.dumps(r) for r in _records(3, 300)]
    (folder / "lines.jsonl").write_text("\n".join([good[0], '{"id": "TRX-BAD",', good[1], "\u2028", good[2]]) + "\n")
    (folder / "x1.json").write_text(json.dumps(_records(1, 400)))
    (folder / "x*.json").write_text(json.dumps(_records(1, 401)))
    (folder / "it's [red].json").write_text(json.dumps(_records(1, 402)))
    whole = json.dumps(_records(2, 500))
    (folder / "cut.json").write_text(whole[:-1])  # no closing bracket
    for f in folder.iterdir():
        os.utime(f, (1, 1))
    result = stream.run(sf_settings)
    assert sorted(result.loaded) == [("it's [red].json", 1), ("lines.jsonl", 3), ("x*.json", 1), ("x1.json", 1)]
    assert result.rejected_lines == [("lines.jsonl", 2)] and [n for n, _ in result.partial] == ["cut.json"]
    with wh_connect(sf_settings) as wh:
        got = wh.fetchall('select "_SOURCE", "ID" from bronze.raw_transactions order by 2')
        lines = wh.fetchall("select line_number, reason from ops.rejected_lines order by 1")
    assert got == [
        ("lines.jsonl", "TRX-000300"),
        ("lines.jsonl", "TRX-000301"),
        ("lines.jsonl", "TRX-000302"),
        ("x1.json", "TRX-000400"),
        ("x*.json", "TRX-000401"),
        ("it's [red].json", "TRX-000402"),
    ]
    assert [n for n, _ in lines] == [2, 4] and lines[0][1].startswith("unexpected end of data")


# --- batch ingest (PostgreSQL → bronze) -----------------------------------------------------------


def _bronze_state(settings, table: str) -> set[tuple]:
    """Latest live version per key in bronze — what silver will see."""
    key, cols = KEYS[table], ", ".join(COLUMNS[table])
    with wh_connect(settings) as wh:
        rows = wh.fetchall(
            f"select {cols}, _is_deleted from bronze.{MASTER_TABLES[table]}"
            f" qualify row_number() over (partition by {key} order by _loaded_at desc) = 1"
        )
    return {r[:-1] for r in rows if not r[-1]}


def _versions(settings) -> dict[str, int]:
    with wh_connect(settings) as wh:
        return {t: wh.fetchone(f"select count(*) from bronze.{MASTER_TABLES[t]}")[0] for t in COLUMNS}


def test_batch_full_and_incremental_give_the_same_bronze_as_duckdb(settings, sf_settings, sample_dir):
    with source_connect(settings) as conn:
        load_files(conn, sample_dir / "batch_source")
        conn.execute("insert into fraud_case values ('TRX-000001', true, now())")
        conn.commit()
        full = {s.warehouse: postgres.run(s, "full") for s in (settings, sf_settings)}
        assert {t.table: (t.extracted, t.appended) for t in full["snowflake"].tables} == {
            t.table: (t.extracted, t.appended) for t in full["duckdb"].tables
        }
        for table in COLUMNS:
            assert _bronze_state(sf_settings, table) == _bronze_state(settings, table), table
        assert postgres.run(sf_settings, "full").appended == 0  # re-run adds nothing
        assert postgres.run(sf_settings, "incremental").appended == 0

        conn.execute("update account set saldo = saldo + 1 where id in ('ACC-00001', 'ACC-00002')")
        conn.execute("update customer set segmen = segmen where id = 'CUST-0005'")  # no real change
        conn.execute(
            "insert into customer values ('CUST-0016', 'Dewi', 'Lestari', 'd@x.id', 'Gold', 'LOC-001', 'BANK-001')"
        )
        conn.execute("delete from customer where id = 'CUST-0003'")
        conn.commit()
        inc = {
            s.warehouse: {t.table: (t.extracted, t.appended, t.deleted) for t in postgres.run(s, "incremental").tables}
            for s in (settings, sf_settings)
        }
        assert inc["snowflake"] == inc["duckdb"]
        # customer: the no-op update writes a row version, read (by transaction id) but not appended
        assert inc["snowflake"]["account"] == (2, 2, 0) and inc["snowflake"]["customer"] == (2, 1, 0)
        deletes = {
            s.warehouse: {t.table: t.deleted for t in postgres.run(s, "full").tables} for s in (settings, sf_settings)
        }
        assert deletes["snowflake"] == deletes["duckdb"] and deletes["snowflake"]["customer"] == 1
        for table in COLUMNS:
            assert _bronze_state(sf_settings, table) == _bronze_state(settings, table), table
        assert _versions(sf_settings) == _versions(settings)
    with wh_connect(sf_settings) as wh:
        wm = wh.fetchall("select source_table, count(*) from ops.watermarks group by 1 order by 1")
    with wh_connect(settings) as wh:
        assert wm == wh.fetchall("select source_table, count(*) from ops.watermarks group by 1 order by 1")


def test_fetch_arrow_is_columnar_and_lower_case_on_both(settings, sf_settings):
    for s in (settings, sf_settings):
        with wh_connect(s) as wh:
            wh.execute(
                "insert into ops.watermarks values (?, ?, ?, ?, ?)",
                ["customer", datetime(2026, 1, 1, tzinfo=UTC), "CUST-0001", "b1", datetime(2026, 1, 2, tzinfo=UTC)],
            )
            table = wh.fetch_arrow("select source_table, key_value from ops.watermarks")
            assert table.column_names == ["source_table", "key_value"]
            assert table.to_pylist() == [{"source_table": "customer", "key_value": "CUST-0001"}]
            assert wh.fetch_arrow("select source_table from ops.watermarks where false").num_rows == 0


# Snowflake's reserved keywords (docs: "Reserved & limited keywords"); the emulator accepts them
# as column names, a real account does not.
_SNOWFLAKE_RESERVED = {
    "account", "all", "alter", "and", "any", "as", "between", "by", "case", "cast", "check", "column",
    "connect", "connection", "constraint", "create", "cross", "current", "current_date", "current_time",
    "current_timestamp", "current_user", "database", "delete", "distinct", "drop", "else", "exists", "false",
    "following", "for", "from", "full", "grant", "group", "gscluster", "having", "ilike", "in", "increment",
    "inner", "insert", "intersect", "into", "is", "issue", "join", "lateral", "left", "like", "localtime",
    "localtimestamp", "minus", "natural", "not", "null", "of", "on", "or", "order", "organization", "qualify",
    "regexp", "revoke", "right", "rlike", "row", "rows", "sample", "schema", "select", "set", "some", "start",
    "table", "tablesample", "then", "to", "trigger", "true", "try_cast", "union", "unique", "update", "using",
    "values", "view", "when", "whenever", "where", "with",
}  # fmt: skip


def test_snowflake_ddl_quotes_reserved_column_names() -> None:
    import re

    from bankpipe.warehouse.snowflake import snowflake_ddl

    unquoted = [
        (statement.split("(")[0].split()[-1], m.group(1))
        for statement in snowflake_ddl()
        if statement.lstrip().startswith("create table")
        for m in re.finditer(r"^\s+([a-z_][a-z0-9_]*)\s+\w", statement.split("(", 1)[1], re.MULTILINE)
    ]
    assert ("ops.ingested_files", "file_name") in unquoted, "the check must see the column definitions"
    assert not [(t, c) for t, c in unquoted if c in _SNOWFLAKE_RESERVED]
