"""`bankpipe run`: every stage once, in order, in-process — the same functions the Airflow DAGs call."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from bankpipe import ops
from bankpipe.errors import BankpipeError
from bankpipe.settings import Settings

log = logging.getLogger(__name__)

# A demo dataset a laptop builds in seconds but large enough for the model and the dashboard.
DEMO = {"customers": 2_000, "transactions": 200_000, "days": 90, "seed": 42}


@dataclass
class RunReport:
    steps: list[tuple[str, str]] = field(default_factory=list)  # (step, one-line summary)


def _source_is_empty(settings: Settings) -> bool:
    from bankpipe.source.db import connect

    with connect(settings) as conn:
        return conn.execute("select not exists (select 1 from customer)").fetchone()[0]


def seed_demo(settings: Settings) -> str:
    """Generate the demo dataset into the source database and the landing folder, if both are empty."""
    from bankpipe.generate import GenerateConfig, generate
    from bankpipe.source.db import connect
    from bankpipe.source.load import load_files

    landing = settings.transactions_landing
    landing_empty = not landing.exists() or not any(landing.iterdir())
    if not (_source_is_empty(settings) and landing_empty):
        return "source or landing folder already has data: demo generation skipped"
    out = settings.state / "demo"
    summary = generate(GenerateConfig(**DEMO, out=out, stream_out=landing))
    with connect(settings, use="write") as conn:
        load_files(conn, out / "batch_source")
    return f"generated {summary}"


def steps(settings: Settings, demo: bool) -> list[tuple[str, Callable[[], Any]]]:
    """The ordered stages; each is a plain call of a stage function."""
    from bankpipe import transform
    from bankpipe.ingest import fx, postgres, stream
    from bankpipe.ml import monitor, score

    plan: list[tuple[str, Callable[[], Any]]] = []
    if demo:
        plan.append(("generate demo data", lambda: seed_demo(settings)))
    plan += [
        ("ingest batch", lambda: _batch(postgres.run(settings, "incremental"))),
        ("ingest stream", lambda: _stream(stream.run(settings))),
        ("ingest fx", lambda: _fx(fx.run(settings))),
        ("transform", lambda: _transform(transform.run(settings))),
        ("ml train", lambda: _train(settings)),
        ("ml score", lambda: score.run(settings).line()),
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


def run(settings: Settings, *, demo: bool = False, on_step: Callable[[str], None] | None = None) -> RunReport:
    """Run every stage once, under the run lock; a failing stage stops the run (its error names the input)."""
    report = RunReport()
    with single_run(settings):
        for name, fn in steps(settings, demo):
            if on_step:
                on_step(name)
            log.info("step: %s", name)
            result = fn()
            report.steps.append((name, _summarise(result)))
    return report


def _summarise(result: Any) -> str:
    return result if isinstance(result, str) else "done"


def _batch(r: Any) -> str:
    return f"{r.appended} rows appended to bronze ({', '.join(f'{t.table} {t.appended}' for t in r.tables)})"


def _stream(r: Any) -> str:
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


def _fx(r: Any) -> str:
    return f"{r.inserted} new rates from {r.source}"


def _transform(r: Any) -> str:
    if not r.nodes:
        return f"{r.scope}: nothing to build"
    return (
        f"{r.count('model', 'success')} models, {r.count('test', 'pass')} tests passed in {r.seconds:.0f}s ({r.scope})"
    )


def _train(settings: Settings) -> str:
    from bankpipe.ml import train

    return "; ".join(train.ensure_champions(settings))


def _monitor(r: Any) -> str:
    return "gold.ml_model_metrics refreshed"
