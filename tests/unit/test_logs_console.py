"""The operator's console pieces in bankpipe.logs: what reaches the console, what only the log file."""

from __future__ import annotations

import logging
import sys

import pytest

from bankpipe import logs


def _record(name: str, level: int) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, "success model stg_x (0.1s)", None, None)


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(logs._state, "verbose", False)


def test_dbt_node_lines_reach_the_console_only_when_verbose_or_not_ok(
    quiet: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide = logs._HideNodeLines()
    assert not hide.filter(_record(logs.NODE_LOGGER, logging.INFO))
    assert hide.filter(_record(logs.NODE_LOGGER, logging.WARNING))  # a failing or warning test stays visible
    assert hide.filter(_record("bankpipe.transform", logging.INFO))  # the build's own lines are not node lines
    monkeypatch.setitem(logs._state, "verbose", True)
    assert hide.filter(_record(logs.NODE_LOGGER, logging.INFO))


def test_what_libraries_print_on_stderr_goes_to_the_log(
    quiet: None, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # As `bankpipe run` uses it: with the console showing warnings only (an earlier in-process CLI test may
    # have set up a console handler at INFO).
    with (
        caplog.at_level(logging.INFO, logger="bankpipe.stderr"),
        logs.console_level(logging.WARNING),
        logs.stderr_to_log(),
    ):
        print("Successfully registered model 'bankpipe-fraud'.", file=sys.stderr)
        sys.stderr.write("Created version '1'")  # no newline yet: flushed when the block ends
        logs.console.print("a console line")  # the console still writes to the real stderr
    err = capsys.readouterr().err
    assert "registered model" not in err and "Created version" not in err and "a console line" in err
    got = [r.getMessage() for r in caplog.records if r.name == "bankpipe.stderr"]
    assert got == ["Successfully registered model 'bankpipe-fraud'.", "Created version '1'"]
    print("after", file=sys.stderr)  # restored
    assert "after" in capsys.readouterr().err


def test_steps_print_one_line_each_when_not_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with logs.StepDisplay() as display, logs.listening(display.update):
        assert not display.live  # pytest captures stderr: not a terminal
        display.start("ingest stream")
        logs.progress(3, 10, "files")
        display.finish("3 files, 12 records", 12)
        display.start("transform")
        display.fail()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("✓ ingest stream (") and lines[0].endswith(", 12 rows): 3 files, 12 records")
    assert lines[1].startswith("✗ transform failed after ")


def test_progress_outside_a_run_is_a_no_op() -> None:
    logs.progress(1, 2, "nothing listens")


def test_console_level_raises_and_restores(monkeypatch: pytest.MonkeyPatch, quiet: None) -> None:
    handler = logging.NullHandler()
    handler.setLevel(logging.INFO)
    monkeypatch.setitem(logs._state, "console_handler", handler)
    with logs.console_level(logging.WARNING):
        assert handler.level == logging.WARNING
    assert handler.level == logging.INFO
