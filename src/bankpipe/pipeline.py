"""`bankpipe run`: every stage once, in order, in-process — the same functions the Airflow DAGs call."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from bankpipe import ops
from bankpipe.errors import BankpipeError
from bankpipe.logs import progress
from bankpipe.settings import Settings

log = logging.getLogger(__name__)

# A demo dataset a laptop builds in seconds but large enough for the model and the dashboard.
DEMO = {"customers": 2_000, "transactions": 200_000, "days": 90, "seed": 42}


@dataclass(frozen=True)
class Outcome:
    """What one step did: a line for people, and the rows it wrote where that is one number."""

    summary: str
    rows: int | None = None


@dataclass(frozen=True)
class StepReport:
    name: str
    summary: str
    rows: int | None
    seconds: float


@dataclass
class RunReport:
    steps: list[StepReport] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


class Watcher(Protocol):
    """Who follows a run step by step (the CLI's console); `bankpipe.logs.StepDisplay` is one."""

    def start(self, name: str) -> None: ...

    def finish(self, summary: str, rows: int | None) -> float: ...

    def fail(self) -> float: ...


def _source_is_empty(settings: Settings) -> bool:
    from bankpipe.source.db import connect

    with connect(settings) as conn:
        return conn.execute("select not exists (select 1 from customer)").fetchone()[0]


def _generate_progress(stage: str, done: int, total: int) -> None:
    # generate() reports its stages; records written to stream files is the long one, with a real total.
    if stage == "stream files":
        progress(done, total, "stream files")
    else:
        progress(0, None, stage)


def seed_demo(settings: Settings) -> Outcome:
    """Generate the demo dataset into the source database and the landing folder, if both are empty."""
    from bankpipe.generate import GenerateConfig, generate
    from bankpipe.source.db import connect
    from bankpipe.source.load import load_files

    landing = settings.transactions_landing
    landing_empty = not landing.exists() or not any(landing.iterdir())
    if not (_source_is_empty(settings) and landing_empty):
        return Outcome("source or landing folder already has data: demo generation skipped")
    out = settings.state / "demo"
    summary = generate(GenerateConfig(**DEMO, out=out, stream_out=landing), _generate_progress)
    progress(0, None, "loading the source database")
    with connect(settings, use="write") as conn:
        load_files(conn, out / "batch_source")
    return Outcome(f"generated {summary}", summary.transactions)


def steps(settings: Settings, demo: bool) -> list[tuple[str, Callable[[], Outcome]]]:
    """The ordered stages; each is a plain call of a stage function."""
    from bankpipe import transform
    from bankpipe.ingest import fx, postgres, stream
    from bankpipe.ml import monitor, score

    plan: list[tuple[str, Callable[[], Outcome]]] = []
    if demo:
        plan.append(("generate demo data", lambda: seed_demo(settings)))
    plan += [
        ("ingest batch", lambda: _batch(postgres.run(settings, "incremental"))),
        ("ingest stream", lambda: _stream(stream.run(settings))),
        ("ingest fx", lambda: _fx(fx.run(settings))),
        ("transform", lambda: _transform(transform.run(settings))),
        ("ml train", lambda: _train(settings)),
        ("ml score", lambda: _score(score.run(settings))),
        ("ml monitor", lambda: _monitor(monitor.run(settings))),
    ]
    return plan


def _holder(owner: Path) -> str:
    try:
        info = json.loads(owner.read_text(encoding="utf-8"))
        return f"PID {info['pid']} on {info['host']}, started {info['started_at']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"  # it took the lock a moment ago and has not said who it is yet


@contextmanager
def single_run(settings: Settings) -> Iterator[None]:
    """Hold the run lock of this state dir; a second `bankpipe run` fails at once, naming the holder.

    Failing, not waiting: a scheduler that starts a run while the last one is still going gets a
    clear answer now (and retries later) instead of a task that hangs. The lock is an flock, so a
    killed run never leaves it behind.
    """
    lock_dir = settings.state / "locks"
    lock_dir.mkdir(mode=0o700, exist_ok=True)
    lock = FileLock(lock_dir / "run.lock")
    owner = lock_dir / "run.owner"  # the lock file itself is truncated by every opener
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise BankpipeError(
            f"another `bankpipe run` is running on {settings.state} ({_holder(owner)}); "
            "only one may run at a time: wait for it to finish, or stop it"
        ) from None
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": ops.now().isoformat(timespec="seconds")}
        fd = os.open(owner, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(info))
        yield
    finally:
        lock.release()


class StepFailed(BankpipeError):
    """A step of the run failed: `step` names it, the message is the step's own one line."""

    def __init__(self, step: str, cause: BankpipeError) -> None:
        super().__init__(str(cause))
        self.step = step


def run(settings: Settings, *, demo: bool = False, watcher: Watcher | None = None) -> RunReport:
    """Run every stage once, under the run lock; a failing stage stops the run (its error names the input).

    A stage's BankpipeError comes out as StepFailed naming the stage; anything else (a bug) as it is.
    """
    from bankpipe.ingest.fx import offline_once

    report = RunReport()
    # One FX "offline" decision for the whole run: a step that finds the API down decides for the rest.
    with single_run(settings), offline_once():
        for name, fn in steps(settings, demo):
            if watcher:
                watcher.start(name)
            log.info("step: %s", name)
            started = time.monotonic()
            try:
                outcome = fn()
            except BaseException as exc:
                if watcher:
                    watcher.fail()
                log.info("step %s failed after %.1fs", name, time.monotonic() - started)
                if isinstance(exc, BankpipeError):
                    raise StepFailed(name, exc) from exc
                raise
            seconds = watcher.finish(outcome.summary, outcome.rows) if watcher else time.monotonic() - started
            log.info("step %s done in %.1fs: %s", name, seconds, outcome.summary)
            report.steps.append(StepReport(name, outcome.summary, outcome.rows, seconds))
    return report


def _batch(r: Any) -> Outcome:
    tables = ", ".join(f"{t.table} {t.appended}" for t in r.tables)
    return Outcome(f"{r.appended} rows appended to bronze ({tables})", r.appended)


def _stream(r: Any) -> Outcome:
    return Outcome(_stream_line(r), r.rows)


def _stream_line(r: Any) -> str:
    line = (
        f"{len(r.loaded)} files, {r.rows} records; {len(r.duplicates)} duplicate files skipped, "
        f"{len(r.rejected)} rejected"
    )
    # what was not loaded whole is said here too, not only in `bankpipe status`
    bad_lines = sum(n for _, n in r.rejected_lines)
    extra = [
        f"{len(r.partial)} partial (waiting for the complete file)" if r.partial else "",
        f"{bad_lines} bad lines kept in ops.rejected_lines" if bad_lines else "",
        f"{len(r.waiting)} still being written" if r.waiting else "",
    ]
    return "; ".join([line, *(e for e in extra if e)])


def _fx(r: Any) -> Outcome:
    return Outcome(f"{r.inserted} new rates from {r.source}", r.inserted)


def _transform(r: Any) -> Outcome:
    if not r.nodes:
        return Outcome(f"{r.scope}: nothing to build")
    warned = f", {len(r.warned)} warning(s)" if r.warned else ""
    return Outcome(f"{r.count('model', 'success')} models, {r.count('test', 'pass')} tests passed{warned} ({r.scope})")


def _train(settings: Settings) -> Outcome:
    from bankpipe.ml import train

    return Outcome("; ".join(train.ensure_champions(settings)))


def _score(r: Any) -> Outcome:
    return Outcome(r.line(), r.rows)


def _monitor(r: Any) -> Outcome:
    return Outcome("gold.ml_model_metrics refreshed")
