"""Shared fixtures: a real PostgreSQL database per test, settings pointing at a temp state dir."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bankpipe.settings import Settings, get_settings

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed-dataset"
if not SEED.exists():  # CI lays shared/ beside the clone; a developer may point elsewhere
    SEED = Path(os.environ.get("BANKPIPE_SEED_DATASET", "/work/shared/seed-dataset"))

ADMIN_URL = os.environ.get("BANKPIPE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def seed_dir() -> Path:
    assert SEED.is_dir(), f"seed dataset not found at {SEED}"
    return SEED


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if "BANKPIPE_TEST_PG_URL" in os.environ:  # CI promised a server: its absence is a failure
            raise
        pytest.skip(f"no PostgreSQL at {ADMIN_URL}: {exc}")


@contextmanager
def fresh_database(*, schema: bool = True) -> Iterator[str]:
    """A fresh database on the test PostgreSQL server (its URL), dropped afterwards.

    With `schema`, the source tables are created in it as a DBA would from `bankpipe source ddl`:
    bankpipe itself never runs DDL on an external source. Without, it is empty.
    """
    name = f"bankpipe_test_{uuid.uuid4().hex[:10]}"
    with _admin() as admin:
        admin.execute(f'create database "{name}"')
    params = conninfo_to_dict(ADMIN_URL)
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
