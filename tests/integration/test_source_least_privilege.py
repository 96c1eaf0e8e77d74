"""Least privilege on an external source: bankpipe checks its schema and grants, and never runs DDL there."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from typer.testing import CliRunner

from bankpipe.cli import app
from bankpipe.settings import get_settings
from bankpipe.source.load import load_files
from bankpipe.warehouse import connect as wh_connect
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration

# Records every DDL command anyone runs in the database (temp tables included), whoever runs it:
# the proof that bankpipe ran none, stronger than comparing catalogs afterwards.
EVENT_LOG = """
create table ddl_seen (tag text, by_role text);
create function ddl_seen_log() returns event_trigger language plpgsql security definer as $$
begin
  insert into ddl_seen values (tg_tag, session_user);
end $$;
create event trigger ddl_seen_trigger on ddl_command_start execute function ddl_seen_log();
"""

CATALOG = """
select (select count(*) from pg_class), (select count(*) from pg_proc), (select count(*) from pg_trigger),
       (select count(*) from pg_namespace), (select count(*) from pg_attribute)
"""


@dataclass
class Source:
    dba: str  # the superuser's URL
    reader: str  # the reader role's URL
    role: str


def _ddl(role: str) -> str:
    result = CliRunner().invoke(app, ["source", "ddl", "--role", role])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def source(tmp_path, monkeypatch) -> Iterator[Source]:
    """A fresh database with the printed DDL and GRANTs applied by a superuser, read as the printed role."""
    role = f"bp_reader_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("BANKPIPE_STATE_DIR", str(tmp_path / "state"))
    with fresh_database(schema=False) as url:
        monkeypatch.setenv("BANKPIPE_SOURCE_URL", url)  # so `source ddl` names this database in its GRANT
        get_settings.cache_clear()
        with psycopg.connect(url, autocommit=True) as dba:
            dba.execute(_ddl(role))
            dba.execute(f"alter role {role} password 'reader-pw'")
            dba.execute(EVENT_LOG)
        reader = make_conninfo(url, user=role, password="reader-pw")
        monkeypatch.setenv("BANKPIPE_SOURCE_URL", reader)
        get_settings.cache_clear()
        try:
            yield Source(url, reader, role)
        finally:
            get_settings.cache_clear()
            with psycopg.connect(url, autocommit=True) as dba:
                dba.execute(f"select pg_terminate_backend(pid) from pg_stat_activity where usename = '{role}'")
                dba.execute(f"drop owned by {role}")
                dba.execute(f"drop role {role}")


def _catalog(url: str) -> tuple[int, ...]:
    with psycopg.connect(url) as conn:
        return conn.execute(CATALOG).fetchone()


def _ddl_seen(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("select tag, by_role from ddl_seen").fetchall()


def _bronze(table: str) -> int:
    with wh_connect(get_settings(), read_only=True) as wh:
        return wh.fetchone(f"select count(*) from bronze.{table}")[0]


def test_the_printed_grants_are_enough_to_ingest_and_grant_nothing_more(source: Source, sample_dir) -> None:
    with psycopg.connect(source.dba) as dba:
        load_files(dba, sample_dir / "batch_source")  # as the DBA (its temp tables are DDL too)
        dba.execute("truncate ddl_seen")
    with psycopg.connect(source.dba) as dba:  # what the reader may do: select, and no DDL or writes anywhere
        rights = dba.execute(
            "select has_schema_privilege(%(r)s, 'public', 'CREATE'), has_database_privilege(%(r)s,"
            " current_database(), 'CREATE'), has_table_privilege(%(r)s, 'customer', 'INSERT, UPDATE, DELETE,"
            " TRUNCATE'), has_table_privilege(%(r)s, 'customer', 'SELECT'),"
            " (select rolsuper or rolcreaterole or rolcreatedb from pg_roles where rolname = %(r)s)",
            {"r": source.role},
        ).fetchone()
        assert rights == (False, False, False, True, False)
    before = _catalog(source.dba)
    runner = CliRunner()
    full = runner.invoke(app, ["ingest", "batch", "--full"])
    assert full.exit_code == 0, full.output
    assert _bronze("raw_customers") == 15
    with psycopg.connect(source.dba, autocommit=True) as dba:
        dba.execute("update customer set segmen = 'Gold' where id = 'CUST-0001'")
    incremental = runner.invoke(app, ["ingest", "batch", "--incremental"])
    assert incremental.exit_code == 0, incremental.output
    assert _bronze("raw_customers") == 16  # the one changed row, nothing else
    assert _ddl_seen(source.dba) == []
    assert _catalog(source.dba) == before


def test_a_source_without_the_trigger_fails_in_one_line_naming_all_that_is_missing(source: Source) -> None:
    with psycopg.connect(source.dba, autocommit=True) as dba:
        dba.execute("drop trigger account_touch on account")
        dba.execute("alter table location drop column provinsi")
        dba.execute(f"revoke select on customer from {source.role}")
        dba.execute("truncate ddl_seen")
    before = _catalog(source.dba)
    result = CliRunner().invoke(app, ["ingest", "batch", "--full"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    (line,) = lines
    assert "trigger account_touch missing" in line
    assert "table location lacks column provinsi" in line
    assert f"role {source.role} lacks SELECT on customer" in line
    assert "bankpipe source ddl" in line and "reader-pw" not in line
    assert _ddl_seen(source.dba) == []  # nothing repaired behind the DBA's back
    assert _catalog(source.dba) == before


def test_an_empty_external_source_is_never_given_a_schema(tmp_path, monkeypatch, sample_dir) -> None:
    """The test-data writers too: `generate --to-postgres` and `source load-files` ask for the DDL."""
    monkeypatch.setenv("BANKPIPE_STATE_DIR", str(tmp_path / "state"))
    with fresh_database(schema=False) as url:
        monkeypatch.setenv("BANKPIPE_SOURCE_URL", url)  # the superuser: it could, and must not
        get_settings.cache_clear()
        before = _catalog(url)
        runner = CliRunner()
        loaded = runner.invoke(app, ["source", "load-files", str(sample_dir / "batch_source")])
        small = ["--customers", "20", "--transactions", "50", "--days", "2", "--out", str(tmp_path / "g")]
        generated = runner.invoke(app, ["generate", *small, "--to-postgres"])
        get_settings.cache_clear()
        for result in (loaded, generated):
            assert result.exit_code != 0
            assert "missing table location; missing table bank_info;" in result.output
            assert "bankpipe source ddl" in result.output and "Traceback" not in result.output, result.output
        assert _catalog(url) == before


def test_ddl_refuses_a_role_name_that_is_not_a_plain_sql_name() -> None:
    result = CliRunner().invoke(app, ["source", "ddl", "--role", "x; drop table customer"])
    assert result.exit_code != 0 and "plain lower-case SQL names" in result.output


def test_a_disabled_trigger_and_a_hidden_schema_are_named_as_such(source: Source) -> None:
    """A disabled trigger is as bad as none; tables in a schema the role may not use are not 'missing'."""
    with psycopg.connect(source.dba, autocommit=True) as dba:
        dba.execute("alter table customer disable trigger customer_touch")
    disabled = CliRunner().invoke(app, ["ingest", "batch", "--full"])
    assert disabled.exit_code == 1 and "trigger customer_touch disabled" in disabled.output
    with psycopg.connect(source.dba, autocommit=True) as dba:
        dba.execute("alter table customer enable trigger customer_touch")
        dba.execute(f"revoke usage on schema public from public, {source.role}")  # PUBLIC has it by default
    hidden = CliRunner().invoke(app, ["ingest", "batch", "--full"])
    assert hidden.exit_code == 1
    assert hidden.output.count(f"role {source.role} lacks USAGE on schema public") == 1, hidden.output
    assert "missing table" not in hidden.output
