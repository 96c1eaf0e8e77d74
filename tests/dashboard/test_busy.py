"""The dashboard while a pipeline step writes the warehouse: never an error, a busy notice instead.

DuckDB refuses every other process, readers included, while one holds the file for writing. A real
second process holds it here (as `bankpipe run` does) and the pages are rendered through AppTest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st

from bankpipe.dashboard import queries, ui
from bankpipe.settings import Settings
from bankpipe.warehouse import connect
from tests.conftest import WarehouseHolder
from tests.dashboard.apptest import charts, open_page, problems, texts


def warnings(at) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(str(w.value) for w in at.warning)


def test_a_busy_warehouse_with_nothing_cached_shows_a_notice_not_an_error(
    tmp_path: Path, use_state, hold_warehouse: Callable[[Path], WarehouseHolder]
) -> None:
    settings: Settings = use_state(tmp_path / "state")
    connect(settings).close()  # a warehouse with its schemas, no gold yet
    holder = hold_warehouse(settings.warehouse_file)
    started = time.monotonic()
    at = open_page("overview")
    # Waited briefly once per page run, not once per query, and not the pipeline's 120 s.
    assert time.monotonic() - started < 4 * queries.BUSY_WAIT_S + 10
    assert not problems(at), problems(at)
    assert ui.BUSY in texts(at)
    assert "Filters appear when the pipeline has finished" in " ".join(c.value for c in at.sidebar.caption)

    holder.release()  # the step is done: the next run shows the page as it is (empty state)
    st.cache_data.clear()
    at.run()
    assert not problems(at), problems(at)
    assert ui.BUSY not in texts(at) and ui.EMPTY in texts(at)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("page", ["overview", "risk", "fx"])
def test_a_busy_warehouse_serves_the_last_results_with_their_time(
    small_app: Settings, hold_warehouse: Callable[[Path], WarehouseHolder], page: str
) -> None:
    at = open_page(page)
    assert not problems(at), problems(at)
    shown = len(charts(at))
    assert shown

    holder = hold_warehouse(small_app.warehouse_file)
    st.cache_data.clear()  # as when the cache's TTL runs out in the middle of a load
    at.run()
    assert not problems(at), problems(at)
    notice = warnings(at)
    assert ui.BUSY in notice and "Showing the data as of" in notice
    assert len(charts(at)) == shown  # the same page, from the last results

    holder.release()
    st.cache_data.clear()
    at.run()
    assert not problems(at), problems(at)
    assert ui.BUSY not in warnings(at) and len(charts(at)) == shown
