"""DuckDB's memory limit and threads come from Settings, on bankpipe's, dbt-duckdb's and the dashboard's connections."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bankpipe import transform
from bankpipe.errors import BankpipeError
from bankpipe.settings import Settings
from bankpipe.warehouse import connect
from bankpipe.warehouse.duckdb import resources

pytestmark = pytest.mark.integration

SHOW = "select current_setting('memory_limit') as memory_limit, current_setting('threads') as threads"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # Through the environment, as a deployment sets them.
    monkeypatch.setenv("BANKPIPE_DUCKDB_MEMORY_LIMIT", "700MB")
    monkeypatch.setenv("BANKPIPE_DUCKDB_THREADS", "1")
    return Settings(state_dir=tmp_path / "state")


def test_bankpipe_connections_read_and_write_get_the_settings(settings: Settings) -> None:
    with connect(settings) as wh:
        assert wh.fetchone(SHOW) == ("667.5 MiB", 1)  # DuckDB's MB is 1000², shown in MiB
    with connect(settings, read_only=True) as wh:
        assert wh.fetchone(SHOW) == ("667.5 MiB", 1)


def test_the_dashboard_connection_gets_the_settings(settings: Settings) -> None:
    from bankpipe.dashboard import queries

    connect(settings).close()
    with queries._open(settings) as wh:
        assert wh is not None and wh.fetchone(SHOW) == ("667.5 MiB", 1)


def test_dbt_duckdb_connection_gets_the_settings(settings: Settings) -> None:
    connect(settings).close()  # schemas in place, as before any build
    res = transform.invoke(settings, ["show", "--inline", SHOW])
    assert res.success, res.exception
    table = res.result.results[0].agate_table
    assert [tuple(row) for row in table.rows] == [("667.5 MiB", 1)]


def test_the_default_is_half_the_ram_at_most_and_2_gib_per_thread(tmp_path: Path) -> None:
    got = resources(Settings(state_dir=tmp_path, duckdb_threads=2))
    ram_mib = (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) >> 20
    limit = int(got["memory_limit"].removesuffix("MiB"))
    assert got["threads"] == "2" and limit <= ram_mib // 2 and limit <= 4096
    assert limit == min(ram_mib // 2, 4096) or Path("/sys/fs/cgroup/memory.max").exists()  # a cgroup may cap it


def test_a_limit_duckdb_cannot_read_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BankpipeError, match="BANKPIPE_DUCKDB_MEMORY_LIMIT='lots'"):
        connect(Settings(state_dir=tmp_path, duckdb_memory_limit="lots"))
