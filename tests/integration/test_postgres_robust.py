"""PostgreSQL outages during `ingest batch`: stopped mid-extract, down at connect, back during retries.

A throw-away embedded PostgreSQL (the wheel's server) is crashed and restarted; the shared test
server on 127.0.0.1:5432 is never touched, other tests use it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bankpipe.errors import SourceError
from bankpipe.ingest import postgres
from bankpipe.settings import Settings, get_settings
from bankpipe.source import embedded
from bankpipe.source.db import connect
from bankpipe.source.schema import COLUMNS, create_schema
from bankpipe.warehouse import connect as wh_connect
from bankpipe.warehouse.ddl import MASTER_TABLES
from tests.integration.test_ingest_postgres import bronze_state, fill, source_state

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-pw"  # trust auth ignores it; it is here to show it never reaches a message


@dataclass
class Server:
    pgdata: Path

    def start(self) -> str:
        """Start the server (or find it running); return its admin URI."""
        if not embedded.status(self.pgdata).running:
            # In a child process: the wheel caches a server handle per data dir in-process, and
            # that handle does not notice that its server died.
            code = f"import pathlib, bankpipe.source.embedded as e; e.start(pathlib.Path({str(self.pgdata)!r}))"
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
        status = embedded.status(self.pgdata)
        assert status.running and status.uri, "the throw-away PostgreSQL did not start"
        return status.uri

    def crash(self, how: signal.Signals = signal.SIGQUIT) -> None:
        """Stop the server as `pg_ctl stop` does: SIGQUIT = `-m immediate` (every backend dies at
        once, like a crash), SIGINT = `-m fast` (sessions get "terminating connection due to
        administrator command", as in a restart)."""
        pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, how)
        deadline = time.monotonic() + 30
        while embedded.status(self.pgdata).running:
            assert time.monotonic() < deadline, "the throw-away PostgreSQL did not stop"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    # A short path: the server's unix socket lives in the data dir and sun_path holds 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="bp-", dir="/tmp"))
    srv = Server(root / "pg")
    srv.start()
    try:
        yield srv
    finally:
        embedded.stop(srv.pgdata)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def outage(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings whose source is a fresh database on the throw-away server (URL with a password)."""
    params = conninfo_to_dict(server.start())
    name = f"src_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(make_conninfo(**params), autocommit=True) as admin:
        admin.execute(f"create database {name}")
    url = make_conninfo(**(params | {"dbname": name, "password": PASSWORD}))
    with psycopg.connect(url, autocommit=True) as dba:  # as the DBA: bankpipe runs no DDL on an external source
        create_schema(dba)
    monkeypatch.setenv("BANKPIPE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("BANKPIPE_SOURCE_URL", url)
    monkeypatch.setenv("BANKPIPE_SOURCE_CONNECT_ATTEMPTS", "3")
    monkeypatch.setenv("BANKPIPE_SOURCE_RETRY_BACKOFF_S", "0.2")
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        get_settings.cache_clear()
        with psycopg.connect(server.start(), autocommit=True) as admin:
            admin.execute(f"drop database if exists {name} with (force)")


def ledger(settings: Settings) -> tuple[dict[str, int], int]:
    """Bronze rows per master table and watermark rows: what a failed run must leave unchanged."""
    with wh_connect(settings) as wh:
        counts = {t: wh.fetchone(f"select count(*) from bronze.{MASTER_TABLES[t]}")[0] for t in COLUMNS}
        return counts, wh.fetchone("select count(*) from ops.watermarks")[0]


def last_step(settings: Settings) -> tuple[str, str | None]:
    with wh_connect(settings) as wh:
        return wh.fetchone("select status, error from ops.run_log order by started_at desc limit 1")


def ingest_cli(mode: str = "full") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bankpipe", "ingest", "batch", f"--{mode}"],
        env=dict(os.environ, COLUMNS="200"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


@pytest.mark.embedded
@pytest.mark.parametrize(
    "how",
    [pytest.param(signal.SIGQUIT, id="crash"), pytest.param(signal.SIGINT, id="fast-shutdown", marks=pytest.mark.slow)],
)
def test_server_stopped_mid_extract_fails_cleanly_and_the_next_run_loads_everything_once(server, outage, how):
    with connect(outage) as conn:
        fill(conn, 10)
    postgres.run(outage, "full")
    with connect(outage) as conn:
        # Enough account rows that their COPY is still streaming when the server dies.
        conn.execute(
            "insert into account select 'ACC-9' || lpad(i::text, 7, '0'), 'CUST-0000001', 'Loan', i"
            " from generate_series(1, 150000) i"
        )
        conn.execute("update customer set segmen = 'Gold' where id = 'CUST-0000003'")
        conn.commit()
    before = ledger(outage)

    proc = ingest_cli()
    spool = outage.state
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 0 for p in spool.glob("spool-*/account.csv")):
        assert proc.poll() is None, f"ingest ended before the crash: {proc.stdout.read()}"
        assert time.monotonic() < deadline, "the account extract never started"
        time.sleep(0.002)
    server.crash(how)
    output = proc.communicate(timeout=60)[0]

    assert proc.returncode == 1, output
    assert "Traceback" not in output and PASSWORD not in output
    (line,) = error_lines(output)
    assert "source database" in line and "while extracting table account" in line, line
    assert ledger(outage) == before  # no bronze row, no watermark from the failed run
    status, error = last_step(outage)
    assert status == "failed" and "SourceError" in error and "password=***" in error and PASSWORD not in error
    assert not list(spool.glob("spool-*")), "the failed run left its spool behind"

    server.start()
    postgres.run(outage, "full")
    with connect(outage) as conn:
        for table in COLUMNS:
            assert bronze_state(outage, table) == source_state(conn, table), table
    counts, _ = ledger(outage)
    # Every new row and the one change exactly once on top of the first load.
    assert counts["account"] == before[0]["account"] + 150_000
    assert counts["customer"] == before[0]["customer"] + 1
    assert last_step(outage) == ("success", None)


@pytest.mark.embedded
def test_server_down_at_connect_is_retried_until_it_is_back(server, outage, caplog, monkeypatch):
    with connect(outage) as conn:
        fill(conn, 5)
    server.crash()
    restart = threading.Timer(0.5, server.start)
    restart.start()
    try:
        monkeypatch.setenv("BANKPIPE_SOURCE_CONNECT_ATTEMPTS", "8")  # up to ~25 s of backoff
        get_settings.cache_clear()
        settings = get_settings()
        with caplog.at_level(logging.WARNING, logger="bankpipe.source.db"):
            result = postgres.run(settings, "incremental")
    finally:
        restart.join()
    assert {t.table: t.appended for t in result.tables}["account"] == 10
    assert "retrying" in caplog.text and PASSWORD not in caplog.text
    assert last_step(settings) == ("success", None)


@pytest.mark.embedded
def test_server_down_for_good_ends_in_one_line_after_retries(server, outage):
    with connect(outage) as conn:
        fill(conn, 5)
    postgres.run(outage, "incremental")
    before = ledger(outage)
    server.crash()
    t0 = time.monotonic()
    proc = ingest_cli("incremental")
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 1, output
    assert "Traceback" not in output and PASSWORD not in output
    (line,) = error_lines(output)
    assert "cannot connect to the source database" in line and "after 3 attempts" in line, line
    assert time.monotonic() - t0 >= 0.6  # backoff 0.2 s, then 0.4 s
    assert ledger(outage) == before
    status, error = last_step(outage)
    assert status == "failed" and "after 3 attempts" in error and PASSWORD not in error


@pytest.mark.embedded
def test_a_caught_up_incremental_reads_only_what_open_writers_commit_later(server, outage):
    """On a server of its own (the horizon is cluster-wide): nothing re-read but the late row."""
    with connect(outage) as conn:
        fill(conn, 10)
    postgres.run(outage, "incremental")
    assert sum(t.extracted for t in postgres.run(outage, "incremental").tables) == 0
    with connect(outage) as writer:
        writer.execute("select now()")  # begun, nothing written: no transaction id yet
        assert sum(t.extracted for t in postgres.run(outage, "incremental").tables) == 0
        writer.execute("update account set saldo = 5 where id = 'ACC-00000003'")
        writer.commit()
    late = {t.table: (t.extracted, t.appended) for t in postgres.run(outage, "incremental").tables}
    assert late == {
        "location": (0, 0),
        "bank_info": (0, 0),
        "customer": (0, 0),
        "account": (1, 1),
        "fraud_case": (0, 0),
    }
    assert sum(t.extracted for t in postgres.run(outage, "incremental").tables) == 0


def test_a_refused_login_is_not_retried(settings, monkeypatch, pg_url):
    """A role that does not exist will not appear by waiting: one attempt, one line."""
    params = conninfo_to_dict(pg_url) | {"user": "no_such_role_x", "password": PASSWORD}
    monkeypatch.setenv("BANKPIPE_SOURCE_URL", make_conninfo(**params))
    monkeypatch.setenv("BANKPIPE_SOURCE_RETRY_BACKOFF_S", "5")
    get_settings.cache_clear()
    t0 = time.monotonic()
    with pytest.raises(SourceError) as err:
        postgres.run(get_settings(), "incremental")
    assert time.monotonic() - t0 < 5
    message = str(err.value)
    assert "no_such_role_x" in message and "attempts" not in message and PASSWORD not in message
    assert "\n" not in message


def test_source_connections_carry_keepalives_unless_the_url_sets_its_own(settings, monkeypatch, pg_url):
    """A source host that vanishes mid-COPY is noticed in about a minute, not the kernel's two hours."""
    with connect(settings) as conn:
        params = conn.info.get_parameters()
        assert (params["keepalives_idle"], params["keepalives_count"], params["connect_timeout"]) == ("30", "3", "10")
    monkeypatch.setenv("BANKPIPE_SOURCE_URL", make_conninfo(pg_url, keepalives_idle="5", connect_timeout="3"))
    get_settings.cache_clear()
    with connect(get_settings()) as conn:
        params = conn.info.get_parameters()
        assert (params["keepalives_idle"], params["connect_timeout"]) == ("5", "3")


def test_spools_of_dead_runs_are_removed_and_live_ones_kept(settings):
    state = settings.state
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())
    dirs = {
        "dead": state / f"spool-{host}.{int(dead.stdout)}-abc",
        "legacy": state / "spool-k2j4h5g6",  # a spool named before owners were recorded
        "live": state / f"spool-{host}.{os.getpid()}-def",
        "other_host": state / "spool-elsewhere.1-ghi",
    }
    for path in dirs.values():
        path.mkdir()
        (path / "account.csv").write_text("ACC-1,CUST-1,Savings,1\n")
    with connect(settings) as conn:
        fill(conn, 2)
    postgres.run(settings, "incremental")
    assert {k for k, p in dirs.items() if p.exists()} == {"live", "other_host"}
