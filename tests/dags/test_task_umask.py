"""Every task enters through `_common.settings()`, which makes what the task writes private (umask 077)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import _common
import pytest

from bankpipe.settings import get_settings


@pytest.fixture
def shell_umask() -> Iterator[None]:
    """Start from a default shell's umask (022) and put the test process's own back afterwards."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_task_settings_make_files_private(shell_umask: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANKPIPE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(_common, "source_conninfo", lambda: None)  # no Airflow Connection in this test
    get_settings.cache_clear()
    try:
        state = _common.settings().state
        written = state / "spool.csv"
        written.write_text("customer data")
        (state / "dbt").mkdir()
    finally:
        get_settings.cache_clear()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "dbt").stat().st_mode) == 0o700
    assert stat.S_IMODE(state.stat().st_mode) & 0o066 == 0
