"""The dashboard while a pipeline step writes the warehouse: never an error, a busy notice instead.

DuckDB refuses every other process, readers included, while one holds the file for writing. A real
second process holds it here (as `bankpipe run` does) and the pages are rendered through AppTest.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

from bankpipe.dashboard import queries, ui
from bankpipe.settings import Settings
from bankpipe.warehouse import connect
from tests.dashboard.apptest import charts, open_page, problems, texts


class Writer:
    """Another process with the DuckDB file open for writing, until released."""

    def __init__(self, path: Path) -> None:
        code = f"import duckdb, sys\ncon = duckdb.connect({str(path)!r})\nprint('held', flush=True)\nsys.stdin.read()\n"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "held"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture
def writer() -> Iterator[list[Writer]]:
    held: list[Writer] = []
    yield held
    for w in held:
        w.release()


def warnings(at) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(str(w.value) for w in at.warning)


def test_a_busy_warehouse_with_nothing_cached_shows_a_notice_not_an_error(
    tmp_path: Path, use_state, writer: list[Writer]
) -> None:
    settings: Settings = use_state(tmp_path / "state")
    connect(settings).close()  # a warehouse with its schemas, no gold yet
    writer.append(Writer(settings.warehouse_file))
    started = time.monotonic()
    at = open_page("overview")
    # Waited briefly once per page run, not once per query, and not the pipeline's 120 s.
    assert time.monotonic() - started < 4 * queries.BUSY_WAIT_S + 10
    assert not problems(at), problems(at)
    assert ui.BUSY in texts(at)
    assert "Filters appear when the pipeline has finished" in " ".join(c.value for c in at.sidebar.caption)

    writer[0].release()  # the step is done: the next run shows the page as it is (empty state)
    st.cache_data.clear()
    at.run()
    assert not problems(at), problems(at)
    assert ui.BUSY not in texts(at) and ui.EMPTY in texts(at)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("page", ["overview", "risk", "fx"])
def test_a_busy_warehouse_serves_the_last_results_with_their_time(
    small_app: Settings, writer: list[Writer], page: str
) -> None:
    at = open_page(page)
    assert not problems(at), problems(at)
    shown = len(charts(at))
    assert shown

    writer.append(Writer(small_app.warehouse_file))
    st.cache_data.clear()  # as when the cache's TTL runs out in the middle of a load
    at.run()
    assert not problems(at), problems(at)
    notice = warnings(at)
    assert ui.BUSY in notice and "Showing the data as of" in notice
    assert len(charts(at)) == shown  # the same page, from the last results

    writer[0].release()
    st.cache_data.clear()
    at.run()
    assert not problems(at), problems(at)
    assert ui.BUSY not in warnings(at) and len(charts(at)) == shown
