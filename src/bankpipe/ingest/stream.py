"""Landing folder of transaction files → `bronze.raw_transactions`, exactly once.

Files are JSON arrays (the seed's format) or JSON Lines, UTF-8 with or without BOM. Each file's
bytes are identified by SHA-256 in the ledger `ops.ingested_files`; the rows and the ledger entry
commit in one warehouse transaction, so a crash or a re-run can neither lose nor double a file.
Files that cannot be parsed are moved to the quarantine folder and recorded in
`ops.rejected_files`; the other files of the pass still load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from filelock import FileLock, Timeout

from bankpipe import ops
from bankpipe.errors import BankpipeError
from bankpipe.settings import Settings
from bankpipe.warehouse import Warehouse
from bankpipe.warehouse import connect as warehouse_connect
from bankpipe.warehouse.base import JsonFile

log = logging.getLogger(__name__)

SUFFIXES = (".json", ".jsonl", ".ndjson")
BOM = b"\xef\xbb\xbf"
# Files (and bytes) per warehouse transaction: bounds memory and lets progress show on big backlogs.
CHUNK_FILES = 500
CHUNK_BYTES = 256 << 20


@dataclass(frozen=True)
class LandedFile:
    path: Path
    size: int
    mtime_ns: int
    sha256: str = ""
    fmt: str = ""  # "array" | "newline_delimited"


@dataclass
class StreamResult:
    batch_id: str
    loaded: list[tuple[str, int]] = field(default_factory=list)  # (file name, rows)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file name, first loaded as)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    unchanged: int = 0

    @property
    def rows(self) -> int:
        return sum(n for _, n in self.loaded)


def discover(folder: Path) -> list[LandedFile]:
    """Candidate files in the landing folder in arrival order; temp and hidden files are ignored."""
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        # A producer writing `x.json.tmp` (or `.x.json`) and renaming when done is never read half-written.
        if not entry.is_file() or entry.name.startswith(".") or not entry.name.endswith(SUFFIXES):
            continue
        st = entry.stat()
        found.append(LandedFile(Path(entry.path), st.st_size, st.st_mtime_ns))
    return sorted(found, key=lambda f: (f.mtime_ns, f.path.name))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def sniff_format(path: Path) -> str | None:
    """`array` for a JSON array, `newline_delimited` for JSON Lines, None for anything else."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(BOM):
        head = head[len(BOM) :]
    head = head.lstrip()
    if head.startswith(b"["):
        return "array"
    if head.startswith(b"{"):
        return "newline_delimited"
    return None


def _load_chunk(wh: Warehouse, files: list[LandedFile], batch_id: str, loaded_at: datetime) -> dict[str, int]:
    """Insert the records of `files` (all parseable) and return rows per path; caller holds the transaction."""
    return wh.load_json_files([JsonFile(f.path, f.path.name, f.sha256, f.fmt) for f in files], batch_id, loaded_at)


def _parse_error(wh: Warehouse, f: LandedFile) -> str | None:
    """Why the warehouse cannot read this file, or None if it can."""
    if f.fmt == "":
        return "not a JSON array or JSON Lines (first character is neither '[' nor '{')"
    return wh.json_file_error(f.path, f.fmt)


class _Ledger:
    """What the warehouse already knows about landed files (read once per pass)."""

    def __init__(self, wh: Warehouse) -> None:
        self.by_stat = {
            (name, size, mtime): sha
            for name, size, mtime, sha in wh.fetchall(
                "select file_name, size_bytes, mtime_ns, sha256 from ops.ingested_files"
            )
        }
        self.first_name_by_sha = dict(
            wh.fetchall(
                "select sha256, min_by(file_name, ingested_at) from ops.ingested_files"
                " where status = 'loaded' group by sha256"
            )
        )
        self.versions = dict(
            wh.fetchall("select file_name, count(*) from ops.ingested_files where status = 'loaded' group by 1")
        )


def _quarantine(settings: Settings, f: LandedFile, batch_id: str) -> Path:
    target_dir = settings.quarantine / batch_id
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f.path.name
    shutil.move(str(f.path), target)
    return target


def ingest_files(settings: Settings, wh: Warehouse, files: list[LandedFile], result: StreamResult) -> None:
    """One pass over `files`: skip known bytes, load new ones, quarantine unreadable ones."""
    ledger = _Ledger(wh)
    pending: list[LandedFile] = []
    seen_in_pass: dict[str, str] = {}
    for f in files:
        if (f.path.name, f.size, f.mtime_ns) in ledger.by_stat:
            result.unchanged += 1  # recorded before, by name, size and mtime: no need to hash again
            continue
        sha = sha256_file(f.path)
        first = ledger.first_name_by_sha.get(sha) or seen_in_pass.get(sha)
        f = LandedFile(f.path, f.size, f.mtime_ns, sha, sniff_format(f.path) or "")
        if first is not None:
            _record_duplicate(wh, f, first, result)
            continue
        seen_in_pass[sha] = f.path.name
        pending.append(f)

    for chunk in _chunks(pending):
        bad = {}
        if any(f.fmt == "" for f in chunk):
            bad = {f.path: _parse_error(wh, f) for f in chunk if f.fmt == ""}
        good = [f for f in chunk if f.path not in bad]
        try:
            _commit_chunk(wh, good, ledger, result)
        except wh.errors:
            # Some file in the chunk is unreadable; find which, one by one, and load the rest.
            for f in good:
                reason = _parse_error(wh, f)
                if reason:
                    bad[f.path] = reason
            _commit_chunk(wh, [f for f in good if f.path not in bad], ledger, result)
        for f in chunk:
            if f.path in bad:
                _reject(settings, wh, f, bad[f.path], result)


def _chunks(files: list[LandedFile]) -> Iterator[list[LandedFile]]:
    chunk: list[LandedFile] = []
    size = 0
    for f in files:
        if chunk and (len(chunk) >= CHUNK_FILES or size + f.size > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(f)
        size += f.size
    if chunk:
        yield chunk


def _commit_chunk(wh: Warehouse, files: list[LandedFile], ledger: _Ledger, result: StreamResult) -> None:
    if not files:
        return
    loaded_at = ops.now()
    with wh.transaction():
        rows = _load_chunk(wh, files, result.batch_id, loaded_at)
        for f in files:
            version = ledger.versions.get(f.path.name, 0) + 1
            wh.execute(
                "insert into ops.ingested_files values (?, ?, ?, ?, ?, ?, 'loaded', null, ?, ?)",
                [
                    f.path.name,
                    f.sha256,
                    f.size,
                    f.mtime_ns,
                    rows[str(f.path)],
                    version,
                    result.batch_id,
                    loaded_at,
                ],
            )
    for f in files:
        ledger.versions[f.path.name] = ledger.versions.get(f.path.name, 0) + 1
        ledger.first_name_by_sha[f.sha256] = f.path.name
        n = rows[str(f.path)]
        result.loaded.append((f.path.name, n))
        version = ledger.versions[f.path.name]
        log.info("loaded %s: %d records%s", f.path.name, n, f" (version {version})" if version > 1 else "")


def _record_duplicate(wh: Warehouse, f: LandedFile, first: str, result: StreamResult) -> None:
    wh.execute(
        "insert into ops.ingested_files values (?, ?, ?, ?, 0, 0, 'duplicate', ?, ?, ?)",
        [f.path.name, f.sha256, f.size, f.mtime_ns, first, result.batch_id, ops.now()],
    )
    result.duplicates.append((f.path.name, first))
    log.info("skipped %s: same bytes as %s, already loaded", f.path.name, first)


def _reject(settings: Settings, wh: Warehouse, f: LandedFile, reason: str, result: StreamResult) -> None:
    target = settings.quarantine / result.batch_id / f.path.name
    # Record first, then move: after a crash in between, the file is still in the landing folder
    # and is rejected again on the next pass (one more ledger line, nothing lost).
    wh.execute(
        "insert into ops.rejected_files values (?, ?, ?, ?, ?, ?, ?)",
        [f.path.name, f.sha256, f.size, reason, str(target), result.batch_id, ops.now()],
    )
    _quarantine(settings, f, result.batch_id)
    result.rejected.append((f.path.name, reason))
    log.warning("rejected %s: %s (moved to %s)", f.path.name, reason, target)


@contextmanager
def single_instance(settings: Settings) -> Iterator[None]:
    """Hold the stream-ingest lock; a second instance gets a clear error instead of waiting."""
    lock_dir = settings.state / "locks"
    lock_dir.mkdir(exist_ok=True)
    lock = FileLock(lock_dir / "ingest-stream.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise BankpipeError(
            f"another `bankpipe ingest stream` is running on {settings.state} (lock {lock.lock_file}); "
            "only one may run at a time"
        ) from None
    try:
        yield
    finally:
        lock.release()


def run_once(settings: Settings, files: list[LandedFile] | None = None) -> StreamResult:
    """Load every new file in the landing folder once (the caller holds the lock)."""
    folder = settings.transactions_landing
    files = discover(folder) if files is None else files
    result = StreamResult(ops.new_batch_id("stream"))
    with warehouse_connect(settings) as wh, ops.step(wh, "ingest.stream", result.batch_id) as step:
        ingest_files(settings, wh, files, result)
        step.rows_in = len(files)
        step.rows_out = result.rows
        step.details = {
            "loaded": len(result.loaded),
            "duplicates": len(result.duplicates),
            "rejected": len(result.rejected),
            "unchanged": result.unchanged,
        }
    return result


def run(settings: Settings) -> StreamResult:
    """Load the landing folder once, under the single-instance lock."""
    settings.transactions_landing.mkdir(parents=True, exist_ok=True)
    with single_instance(settings):
        return run_once(settings)


def follow(
    settings: Settings,
    *,
    poll_s: float = 0.25,
    settle_s: float = 0.5,
    stop: threading.Event | None = None,
    on_loaded: Callable[[StreamResult], None] | None = None,
) -> None:
    """Watch the landing folder and load each new file as soon as it is complete.

    A file counts as complete when its size and mtime have not changed for `settle_s` (producers
    that write in place) — or at once, for producers that write a temp name and rename.
    """
    stop = stop or threading.Event()
    folder = settings.transactions_landing
    folder.mkdir(parents=True, exist_ok=True)
    known: dict[tuple[str, int, int], None] = {}
    with single_instance(settings):
        log.info("watching %s for transaction files (Ctrl-C to stop)", folder)
        while not stop.is_set():
            now_ns = time.time_ns()
            ready = [
                f
                for f in discover(folder)
                if (f.path.name, f.size, f.mtime_ns) not in known and now_ns - f.mtime_ns >= settle_s * 1e9
            ]
            if ready:
                result = run_once(settings, ready)
                for f in ready:
                    known[(f.path.name, f.size, f.mtime_ns)] = None
                if on_loaded is not None and (result.loaded or result.rejected):
                    on_loaded(result)
            stop.wait(poll_s)
