"""Landing folder of transaction files → `bronze.raw_transactions`, exactly once, salvaging records.

Files are JSON arrays (the seed's format) or JSON Lines, UTF-8 with or without BOM. Each file's
bytes are identified by SHA-256 in the ledger `ops.ingested_files`; the rows and the ledger entry
commit in one warehouse transaction, so a crash or a re-run can neither lose nor double a file.

What happens to a file, decided once per file and recorded (`bankpipe status` shows each):

- **complete** — a file is read only once it is complete: its mtime is at least
  `BANKPIPE_STREAM_SETTLE_S` old, or its size, mtime and inode stayed the same for that long while
  watched. The same rule (`Settler`) serves `run()` (Airflow, `bankpipe run`), which waits up to
  `BANKPIPE_STREAM_SETTLE_WAIT_S` for young files and leaves the rest `waiting` for the next pass,
  and `follow()`. A file that changes while it is being loaded is rolled back and waits too. The
  contract for producers: write a temp or hidden name (`x.json.tmp`, `.x.json`) and rename when done;
  a producer writing in place must never pause longer than the settle time mid-file.
- **loaded** — parsed by DuckDB's bulk reader (the fast path, used for every file that parses).
- **loaded with rejected lines** — a JSON Lines file with bad lines: every line that parses loads,
  every other line goes to `ops.rejected_lines` with its line number, byte offset, the parser's
  message and the line as received (status `loaded`, `rejected_lines` = how many). Non-UTF-8 bytes,
  nesting deeper than 1,024 levels and lines over 16 MiB are rejected lines there. (A file DuckDB
  reads whole keeps a deeply nested but valid record in bronze; silver rejects it, having no id.)
  A JSON array that DuckDB refuses is salvaged the same way, element by element
  (`iter_array_elements`): a bad element is a rejected "line" at the line where it starts.
- **partial** — a file that ends in the middle of its data (a JSON array without its closing `]`, or
  a JSON Lines file whose last line stops mid-record without a newline): a producer that crashed or
  is still writing. Nothing of it is loaded; it is recorded `partial` with the byte where it broke
  and left in place, so the complete file (same name, new content) loads — whole and once — when it
  arrives. A partial file that never gets completed stays reported as partial.
- **duplicate** — the same bytes as a file already loaded (under any name): skipped.
- **rejected** — empty, not JSON, or no line or element readable: moved to the quarantine folder and recorded
  in `ops.rejected_files` with the reason.
- **refused** — not a regular file (symlink, FIFO, device, directory), unreadable, or vanished:
  recorded in `ops.rejected_files` (no quarantine path) and left alone, never followed or opened
  blocking; the rest of the pass loads, and no later pass dies on it.

File names are data, never patterns: the warehouse reads each file through a generated name.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
from filelock import FileLock, Timeout

from bankpipe import ops
from bankpipe.errors import BankpipeError
from bankpipe.redact import redact
from bankpipe.settings import Settings
from bankpipe.warehouse import Warehouse
from bankpipe.warehouse import connect as warehouse_connect
from bankpipe.warehouse.base import JsonFile, JsonLine

log = logging.getLogger(__name__)

SUFFIXES = (".json", ".jsonl", ".ndjson")
BOM = b"\xef\xbb\xbf"
WHITESPACE = b" \t\r\n"
# Files (and bytes) per warehouse transaction: bounds memory and lets progress show on big backlogs.
CHUNK_FILES = 500
CHUNK_BYTES = 256 << 20
# A JSON Lines line longer than this is rejected unread (Snowflake's VARIANT limit is 16 MB too).
MAX_LINE_BYTES = 16 << 20
# How much of a rejected line ops.rejected_lines keeps (the whole file stays in the landing folder).
KEPT_LINE_BYTES = 4096
# Rejected lines are written in batches of this many (bounded memory on a file of garbage).
REJECT_BATCH = 10_000
# follow(): a failing pass or hook is retried with a backoff up to this (seconds).
MAX_BACKOFF_S = 30.0
# follow(): batches whose hook failed, kept for retry; older ones are dropped (`ml score` catches up).
MAX_PENDING_HOOKS = 1000


@dataclass(frozen=True)
class LandedFile:
    path: Path
    size: int
    mtime_ns: int
    sha256: str = ""
    fmt: str = ""  # "array" | "newline_delimited"
    ino: int = 0

    @property
    def stat_key(self) -> tuple[int, int, int]:
        return (self.size, self.mtime_ns, self.ino)


@dataclass
class StreamResult:
    batch_id: str
    loaded: list[tuple[str, int]] = field(default_factory=list)  # (file name, rows)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file name, first loaded as)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason): quarantined or refused
    partial: list[tuple[str, str]] = field(default_factory=list)  # (file name, where it broke)
    rejected_lines: list[tuple[str, int]] = field(default_factory=list)  # (file name, lines rejected)
    waiting: list[str] = field(default_factory=list)  # still being written: left for the next pass
    unchanged: int = 0

    @property
    def rows(self) -> int:
        return sum(n for _, n in self.loaded)


@dataclass(frozen=True)
class Survey:
    """What the landing folder holds: candidate regular files, and entries refused with a reason."""

    files: list[LandedFile]
    refused: list[tuple[Path, int, str]]  # (path, size, reason)


def _kind(mode: int) -> str | None:
    """Why an entry that is not a regular file is refused (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "symbolic link: not followed (landing files must be regular files)"
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO): not read (landing files must be regular files)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file: not read (landing files must be regular files)"
    if stat.S_ISDIR(mode):
        return "directory: not a file"
    if stat.S_ISSOCK(mode):
        return "socket: not read (landing files must be regular files)"
    return "not a regular file"


def survey(folder: Path) -> Survey:
    """Candidate files in arrival order, plus non-regular entries; temp and hidden names are ignored."""
    if not folder.is_dir():
        return Survey([], [])
    found, refused = [], []
    for entry in os.scandir(folder):
        # A producer writing `x.json.tmp` (or `.x.json`) and renaming when done is never read half-written.
        # `.JSON` from a producer on a case-insensitive file system is the same kind of file
        if entry.name.startswith(".") or not entry.name.lower().endswith(SUFFIXES):
            continue
        try:
            st = entry.stat(follow_symlinks=False)  # lstat: a symlink is judged as itself, never followed
        except FileNotFoundError:
            continue  # gone between listing and stat: nothing to record
        reason = _kind(st.st_mode)
        if reason is not None:
            refused.append((Path(entry.path), st.st_size, reason))
            continue
        found.append(LandedFile(Path(entry.path), st.st_size, st.st_mtime_ns, ino=st.st_ino))
    return Survey(sorted(found, key=lambda f: (f.mtime_ns, f.path.name)), sorted(refused))


def discover(folder: Path) -> list[LandedFile]:
    """Candidate (regular) files in the landing folder in arrival order."""
    return survey(folder).files


class Settler:
    """The one rule for "complete": mtime at least `settle_s` old, or size/mtime/inode unchanged for `settle_s`.

    The second half covers a producer's clock ahead of ours (an mtime in the future).
    """

    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self._seen: dict[str, tuple[tuple[int, int, int], float]] = {}

    def split(self, files: list[LandedFile]) -> tuple[list[LandedFile], list[LandedFile]]:
        """(complete, still settling)."""
        now_ns, mono = time.time_ns(), time.monotonic()
        ready, waiting = [], []
        for f in files:
            name = f.path.name
            seen = self._seen.get(name)
            if seen is None or seen[0] != f.stat_key:
                self._seen[name] = seen = (f.stat_key, mono)
            aged = (now_ns - f.mtime_ns) / 1e9 >= self.settle_s
            steady = mono - seen[1] >= self.settle_s
            (ready if aged or steady else waiting).append(f)
        return ready, waiting


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _format_of(head: bytes) -> str | None:
    if head.startswith(BOM):
        head = head[len(BOM) :]
    head = head.lstrip(WHITESPACE)
    if head.startswith(b"["):
        return "array"
    if head.startswith(b"{"):
        return "newline_delimited"
    return None


def sniff_format(path: Path) -> str | None:
    """`array` for a JSON array, `newline_delimited` for JSON Lines, None for anything else."""
    with path.open("rb") as fh:
        return _format_of(fh.read(4096))


@dataclass(frozen=True)
class _Inspected:
    sha256: str
    fmt: str
    empty: bool  # nothing but whitespace (and a BOM)
    last_byte: bytes  # the last non-whitespace byte
    ends_with_newline: bool


class _Changed(Exception):
    """Files whose size, mtime or inode changed since they were listed (still being written)."""

    def __init__(self, files: list[LandedFile]) -> None:
        super().__init__(", ".join(f.path.name for f in files))
        self.files = files


def _open_regular(f: LandedFile) -> int:
    """An fd on `f`, opened without following a symlink and without blocking on a FIFO."""
    fd = os.open(f.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    st = os.fstat(fd)
    reason = _kind(st.st_mode)
    if reason is not None:
        os.close(fd)
        raise _Refused(reason)
    if (st.st_size, st.st_mtime_ns, st.st_ino) != f.stat_key:
        os.close(fd)
        raise _Changed([f])
    return fd


class _Refused(Exception):
    """A landed entry that is not read: the message is the reason recorded."""


def _inspect(f: LandedFile) -> _Inspected:
    """Hash the file and note its format and how it ends, in one read."""
    digest = hashlib.sha256()
    head = b""
    last = b""
    ends_nl = False
    fd = _open_regular(f)
    with os.fdopen(fd, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            if len(head) < 4096:
                head += chunk[: 4096 - len(head)]
            # Only the chunk's tail is stripped (a whole-chunk rstrip would copy a megabyte each time).
            tail = chunk[-256:].rstrip(WHITESPACE) or chunk.rstrip(WHITESPACE)
            if tail:
                last = tail[-1:]
            ends_nl = chunk.endswith(b"\n")
    body = head[len(BOM) :] if head.startswith(BOM) else head
    # Nothing but whitespace (after an optional BOM): all of it fits in `head` then, or it is not JSON.
    empty = f.size <= len(head) and not body.strip(WHITESPACE)
    return _Inspected(digest.hexdigest(), _format_of(head) or "", empty, last, ends_nl)


def scan_array(path: Path) -> tuple[str, str]:
    """Where a JSON array that does not end in `]` breaks: ("partial", detail) or ("malformed", reason).

    Streams the file tracking strings and brackets (bounded memory); used only for files that fail
    the cheap "ends with ]" check, never on the fast path.
    """
    import re

    events = re.compile(rb'["\\\[\]{},]')
    depth = 0
    in_string = False
    skip_at = -1
    elements = 0
    last_complete = 0
    pos = 0
    closed_at = -1
    with path.open("rb") as fh:
        first = fh.read(1 << 20)
        start = len(BOM) if first.startswith(BOM) else 0
        chunk, base = first[start:], start
        while chunk:
            if closed_at >= 0:
                rest = chunk.strip(WHITESPACE)
                if rest:
                    offset = base + (len(chunk) - len(chunk.lstrip(WHITESPACE)))
                    return "malformed", f"unexpected data after the JSON array at byte {offset}"
            else:
                for m in events.finditer(chunk):
                    pos = base + m.start()
                    ch = m.group()
                    if pos == skip_at:
                        continue
                    if in_string:
                        if ch == b"\\":
                            skip_at = pos + 1
                        elif ch == b'"':
                            in_string = False
                            if depth == 1:
                                last_complete = pos + 1
                        continue
                    if ch == b'"':
                        in_string = True
                    elif ch in (b"[", b"{"):
                        depth += 1
                    elif ch in (b"]", b"}"):
                        depth -= 1
                        if depth == 1:
                            elements += 1
                            last_complete = pos + 1
                        elif depth == 0:
                            closed_at = pos
                            rest = chunk[m.end() :].strip(WHITESPACE)
                            if rest:
                                offset = pos + 1 + (len(chunk[m.end() :]) - len(chunk[m.end() :].lstrip(WHITESPACE)))
                                return "malformed", f"unexpected data after the JSON array at byte {offset}"
                            break
                        elif depth < 0:
                            return "malformed", f"unbalanced '{ch.decode()}' at byte {pos}"
            base += len(chunk)
            chunk = fh.read(1 << 20)
    if closed_at >= 0:
        return "malformed", "the JSON array is complete but does not parse"
    return (
        "partial",
        f"truncated JSON array: the file ends at byte {base} inside the array, without its closing ']'"
        f" ({elements} complete object(s) end by byte {last_complete}); not loaded — waiting for the complete file",
    )


# --- JSON Lines, line by line (the salvage path) ---------------------------------------------------


def iter_lines(path: Path) -> Iterator[tuple[int, int, bytes, bool]]:
    """(line number, byte offset, line without its newline, ended with a newline) — bounded memory.

    Lines are split on b"\\n" only: a raw U+2028 inside a string is not a line break.
    """
    with path.open("rb") as fh:
        number, offset = 0, 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            size = len(raw)
            if size > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                # Too long to keep: read on to its end without holding it, hand back a marker.
                while (more := fh.readline(1 << 20)) and not more.endswith(b"\n"):
                    size += len(more)
                size += len(more)
                yield number, offset, raw[: KEPT_LINE_BYTES + 1] + b"\x00TOO_LONG", True
                offset += size
                continue
            nl = raw.endswith(b"\n")
            yield number, offset, raw[:-1] if nl else raw, nl
            offset += size


def iter_array_elements(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, element) of each top-level element of a JSON array — bounded memory.

    The salvage path for an array that DuckDB refuses: elements are split at the array's own commas
    (strings and brackets tracked, as in `scan_array`) and each is judged on its own, so one bad
    element costs only itself. Data after the closing `]`, an array that never closes (an
    unterminated string swallows the rest) and an over-long element come back as markers that
    `element_error` explains.
    """
    import re

    events = re.compile(rb'["\\\[\]{},\n]')
    depth, in_string, skip_at, line = 0, False, -1, 1
    state = "before"  # before the opening '[' | inside the array | after its closing ']'
    buf = bytearray()  # bytes since the last separator ('[' or ',')
    buf_start, buf_line, last_was_comma, too_long = 0, 1, False, False
    after, after_start, after_line = bytearray(), 0, 1

    def take() -> tuple[int, int, bytes]:
        lead = len(buf) - len(buf.lstrip(WHITESPACE))
        body = b"\x00TOO_LONG" if too_long or len(buf) > MAX_LINE_BYTES else bytes(buf).strip(WHITESPACE)
        if not body:  # a stray comma: point at it, not at what follows
            return buf_line, buf_start - 1, body
        return buf_line + buf[:lead].count(b"\n"), buf_start + lead, body

    with path.open("rb") as fh:
        base = 0
        while chunk := fh.read(1 << 20):
            if state == "after":
                after += chunk[: KEPT_LINE_BYTES - len(after)] if len(after) < KEPT_LINE_BYTES else b""
                base += len(chunk)
                continue
            seg = 0  # chunk[seg:] is not yet in buf
            for m in events.finditer(chunk):
                k = m.start()
                pos = base + k
                ch = m.group()
                if ch == b"\n":
                    line += 1
                    continue
                if pos == skip_at:
                    continue
                if in_string:
                    if ch == b"\\":
                        skip_at = pos + 1
                    elif ch == b'"':
                        in_string = False
                    continue
                if ch == b'"':
                    in_string = True
                    continue
                if state == "before":
                    if ch == b"[":
                        state, depth, seg = "inside", 1, k + 1
                        buf_start, buf_line = pos + 1, line
                    continue
                if ch in (b"[", b"{"):
                    depth += 1
                    continue
                if depth == 1 and ch in (b",", b"]"):
                    if not too_long:
                        buf += chunk[seg:k]
                    number, offset, body = take()
                    if body or last_was_comma or ch == b",":  # `[]` holds nothing; `[,` and `,]` an empty element
                        yield number, offset, body
                    buf.clear()
                    seg, buf_start, buf_line, last_was_comma, too_long = k + 1, pos + 1, line, ch == b",", False
                    if ch == b"]":
                        state, after_start, after_line = "after", pos + 1, line
                        after += chunk[k + 1 : k + 1 + KEPT_LINE_BYTES]
                        break
                    continue
                if ch in (b"]", b"}"):
                    depth -= 1
            if state == "inside" and not too_long:
                buf += chunk[seg:]
                if len(buf) > MAX_LINE_BYTES:
                    too_long = True
                    buf.clear()
            base += len(chunk)
    if state == "after" and after.strip(WHITESPACE):
        lead = len(after) - len(after.lstrip(WHITESPACE))
        yield after_line + after[:lead].count(b"\n"), after_start + lead, b"\x00AFTER" + bytes(after.strip(WHITESPACE))
    elif state == "inside":
        number, offset, body = take()
        yield number, offset, b"\x00UNCLOSED" + body[:KEPT_LINE_BYTES]


def element_error(raw: bytes) -> tuple[str | None, str | None]:
    """`line_error` for one array element (or one of `iter_array_elements`' markers)."""
    if raw.startswith(b"\x00AFTER"):
        return None, "unexpected data after the JSON array's closing ']'"
    if raw.startswith(b"\x00UNCLOSED"):
        return None, "the array does not close after this point (an unterminated string or bracket)"
    if raw == b"\x00TOO_LONG":
        return None, f"element longer than {MAX_LINE_BYTES >> 20} MiB"
    if not raw:
        return None, "empty element (a stray comma)"
    # A JSON value has raw line breaks only as whitespace: one line of JSON Lines for the loader.
    text, reason = line_error(raw.replace(b"\n", b" ").replace(b"\r", b" "), False)
    return text, reason


def line_error(raw: bytes, first: bool) -> tuple[str | None, str | None]:
    """(text, None) for a line that parses, (None, reason) for one that does not; blank lines give (None, None)."""
    if raw.endswith(b"\x00TOO_LONG"):
        return None, f"line longer than {MAX_LINE_BYTES >> 20} MiB"
    if first and raw.startswith(BOM):
        raw = raw[len(BOM) :]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if not raw.strip(WHITESPACE):
        return None, None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = "nested deeper than 1024 levels" if "depth limit" in exc.msg else exc.msg
        return None, f"{msg} at column {exc.colno}"
    return text, None


class _Salvage:
    """One JSON Lines file read line by line: good lines go on, bad ones are written to ops.rejected_lines."""

    def __init__(self, wh: Warehouse, f: LandedFile, batch_id: str, rejected_at: datetime) -> None:
        self.wh, self.f, self.batch_id, self.rejected_at = wh, f, batch_id, rejected_at
        self.buffer: list[tuple[int, int, str, bytes, int]] = []
        self.rejected = 0
        self.first_reason: str | None = None
        self.truncated: str | None = None  # detail, when the last line stops mid-record at end of file

    def lines(self) -> Iterator[JsonLine]:
        if self.f.fmt == "array":
            yield from self._elements()
            return
        last: tuple[int, int, bytes, bool, str] | None = None
        for number, offset, raw, nl in iter_lines(self.f.path):
            text, reason = line_error(raw, number == 1)
            if text is not None:
                last = None
                yield JsonLine(number, offset, text)
            elif reason is not None:
                last = (number, offset, raw, nl, reason)
                self.reject(number, offset, reason, raw)
        if last is not None and not last[3] and last[4].startswith(("unexpected end of data", "EOF")):
            number, offset, raw, _, reason = last
            self.truncated = (
                f"truncated JSON Lines: line {number} (from byte {offset}) stops mid-record at the end of the file"
                f" (byte {offset + len(raw)}, {reason}); not loaded — waiting for the complete file"
            )

    def _elements(self) -> Iterator[JsonLine]:
        for number, offset, raw in iter_array_elements(self.f.path):
            if raw.startswith(b"\x00UNCLOSED"):
                # The last byte is a ']' but the array never closes: cut after a nested array
                # (`[{…}, {"tags": ["x"]`), or an unterminated string. Loading the elements before
                # would load them again when the complete file arrives: the file is `partial`.
                self.truncated = (
                    f"truncated JSON array: the array opened at the start does not close; from line {number}"
                    f" (byte {offset}) on, a record is cut or a string never ends; not loaded — waiting for the"
                    " complete file"
                )
                return
            text, reason = element_error(raw)
            if text is not None:
                yield JsonLine(number, offset, text)
            else:
                self.reject(number, offset, reason or "", raw.removeprefix(b"\x00AFTER"))

    def reject(self, number: int, offset: int, reason: str, raw: bytes) -> None:
        self.rejected += 1
        self.first_reason = self.first_reason or f"line {number}: {reason}"
        size = len(raw) - len(b"\x00TOO_LONG") if raw.endswith(b"\x00TOO_LONG") else len(raw)
        self.buffer.append((number, offset, reason, raw[:KEPT_LINE_BYTES], size))
        if len(self.buffer) >= REJECT_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        import pyarrow as pa

        b = self.buffer
        n = len(b)
        table = pa.table(
            {
                "file_name": pa.array([self.f.path.name] * n, pa.string()),
                "sha256": pa.array([self.f.sha256] * n, pa.string()),
                "line_number": pa.array([r[0] for r in b], pa.int64()),
                "byte_offset": pa.array([r[1] for r in b], pa.int64()),
                "reason": pa.array([r[2] for r in b], pa.string()),
                "raw_line": pa.array([r[3].decode("utf-8", "replace") for r in b], pa.string()),
                "line_bytes": pa.array([r[4] for r in b], pa.int64()),
                "batch_id": pa.array([self.batch_id] * n, pa.string()),
                "rejected_at": pa.array([self.rejected_at] * n, pa.timestamp("us", tz="UTC")),
            }
        )
        self.wh.append_arrow("ops.rejected_lines", table)
        self.buffer = []


class _Rollback(Exception):
    """Undo the salvage transaction: the file is `partial` or wholly unreadable after all."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason


# --- one pass ------------------------------------------------------------------------------------


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
        # Entries refused in place (not quarantined) are recorded once, not on every pass.
        self.refused = {
            (name, int(size), reason)
            for name, size, reason in wh.fetchall(
                "select file_name, size_bytes, reason from ops.rejected_files where quarantine_path is null"
            )
        }


def _record_file(
    wh: Warehouse,
    f: LandedFile,
    status: str,
    batch_id: str,
    at: datetime,
    *,
    rows: int = 0,
    version: int = 0,
    duplicate_of: str | None = None,
    rejected_lines: int = 0,
    detail: str | None = None,
) -> None:
    wh.execute(
        f"insert into ops.ingested_files (file_name, sha256, size_bytes, mtime_ns, {wh.ident('rows')}, version,"
        " status, duplicate_of, batch_id, ingested_at, rejected_lines, detail)"
        " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            f.path.name,
            f.sha256,
            f.size,
            f.mtime_ns,
            rows,
            version,
            status,
            duplicate_of,
            batch_id,
            at,
            rejected_lines,
            detail,
        ],
    )


def _unchanged_on_disk(files: list[LandedFile]) -> None:
    """Raise _Changed for files that were written to (or replaced) while being read."""
    changed = []
    for f in files:
        try:
            st = os.stat(f.path, follow_symlinks=False)
        except FileNotFoundError:
            changed.append(f)
            continue
        if (st.st_size, st.st_mtime_ns, st.st_ino) != f.stat_key:
            changed.append(f)
    if changed:
        raise _Changed(changed)


def ingest_files(
    settings: Settings,
    wh: Warehouse,
    files: list[LandedFile],
    result: StreamResult,
    refused: list[tuple[Path, int, str]] | None = None,
) -> None:
    """One pass over `files`: skip known bytes, load new ones, salvage or set bad ones aside (none raises)."""
    ledger = _Ledger(wh)
    for path, size, reason in refused or []:
        _refuse(wh, ledger, path, size, reason, result)
    pending: list[LandedFile] = []
    seen_in_pass: dict[str, str] = {}
    for f in files:
        if (f.path.name, f.size, f.mtime_ns) in ledger.by_stat:
            result.unchanged += 1  # recorded before, by name, size and mtime: no need to hash again
            continue
        try:
            info = _inspect(f)
        except _Changed:
            result.waiting.append(f.path.name)
            continue
        except _Refused as exc:
            _refuse(wh, ledger, f.path, f.size, str(exc), result)
            continue
        except OSError as exc:
            _refuse(wh, ledger, f.path, f.size, _os_reason(exc), result)
            continue
        f = LandedFile(f.path, f.size, f.mtime_ns, info.sha256, info.fmt, f.ino)
        first = ledger.first_name_by_sha.get(f.sha256) or seen_in_pass.get(f.sha256)
        if first is not None:
            _record_duplicate(wh, f, first, result)
            continue
        if info.empty:
            _reject(settings, wh, f, "empty file", result)
            continue
        if f.fmt == "":
            _reject(settings, wh, f, "not a JSON array or JSON Lines (first character is neither '[' nor '{')", result)
            continue
        if f.fmt == "array" and info.last_byte != b"]":
            # DuckDB reads `[{…},{…},` as a complete array: the cut is caught here, not by the parser.
            _bad_array(settings, wh, f, result)
            continue
        seen_in_pass[f.sha256] = f.path.name
        pending.append(f)

    for chunk in _chunks(pending):
        _load_chunk_or_split(settings, wh, chunk, ledger, result)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "vanished before it could be read"
    if exc.errno == errno.ELOOP:
        return "symbolic link: not followed (landing files must be regular files)"
    return f"cannot read: {exc.strerror or exc} (errno {exc.errno})"


def _load_chunk_or_split(
    settings: Settings, wh: Warehouse, chunk: list[LandedFile], ledger: _Ledger, result: StreamResult
) -> None:
    """Load a chunk on the fast path; on failure, find the bad files, load the rest, then handle each."""
    todo = list(chunk)
    bad: list[tuple[LandedFile, str]] = []
    searched = False
    while todo:
        try:
            _commit_chunk(wh, todo, ledger, result)
            break
        except _Changed as exc:
            for f in exc.files:
                result.waiting.append(f.path.name)
                log.info("%s changed while being read: left for the next pass", f.path.name)
            todo = [f for f in todo if f not in exc.files]
        except wh.errors:
            if searched:
                raise
            searched = True
            # Some file in the chunk does not parse; find which, one by one, and load the rest.
            for f in todo:
                reason = wh.json_file_error(f.path, f.fmt)
                if reason:
                    bad.append((f, reason))
            if not bad:
                raise
            todo = [f for f in todo if all(f is not b for b, _ in bad)]
    for f, _ in bad:
        try:
            _salvage(settings, wh, f, ledger, result)
        except OSError as exc:
            _refuse(wh, ledger, f.path, f.size, _os_reason(exc), result)


def _bad_array(settings: Settings, wh: Warehouse, f: LandedFile, result: StreamResult) -> None:
    try:
        kind, detail = scan_array(f.path)
    except OSError as exc:
        kind, detail = "malformed", _os_reason(exc)
    if kind == "partial":
        _record_partial(wh, f, detail, result)
    else:
        _reject(settings, wh, f, detail, result)


def _record_partial(wh: Warehouse, f: LandedFile, detail: str, result: StreamResult) -> None:
    _record_file(wh, f, "partial", result.batch_id, ops.now(), detail=detail)
    result.partial.append((f.path.name, detail))
    log.warning("partial %s: %s", f.path.name, detail)


def _salvage(settings: Settings, wh: Warehouse, f: LandedFile, ledger: _Ledger, result: StreamResult) -> None:
    """Load a JSON Lines file line by line: every line that parses, every other one to ops.rejected_lines."""
    loaded_at = ops.now()
    job = _Salvage(wh, f, result.batch_id, loaded_at)
    try:
        with wh.transaction():
            rows, refused = wh.load_json_lines(
                JsonFile(f.path, f.path.name, f.sha256, f.fmt), job.lines(), result.batch_id, loaded_at
            )
            for line in refused:
                job.reject(line.number, line.offset, "refused by the warehouse's JSON parser", line.text.encode())
            job.flush()
            if job.truncated:
                raise _Rollback("partial", job.truncated)
            if rows == 0:
                raise _Rollback("rejected", f"no line or array element is a readable JSON record ({job.first_reason})")
            _unchanged_on_disk([f])
            version = ledger.versions.get(f.path.name, 0) + 1
            _record_file(
                wh, f, "loaded", result.batch_id, loaded_at, rows=rows, version=version, rejected_lines=job.rejected
            )
    except _Rollback as rb:
        if rb.kind == "partial":
            _record_partial(wh, f, rb.reason, result)
        else:
            _reject(settings, wh, f, rb.reason, result)
        return
    except _Changed:
        result.waiting.append(f.path.name)
        return
    except wh.errors as exc:
        if isinstance(exc, wh.transient_errors):
            raise  # an outage, not a bad file: the pass fails and the next one retries the file
        _reject(settings, wh, f, str(exc).splitlines()[0], result)
        return
    ledger.versions[f.path.name] = ledger.versions.get(f.path.name, 0) + 1
    ledger.first_name_by_sha[f.sha256] = f.path.name
    result.loaded.append((f.path.name, rows))
    result.rejected_lines.append((f.path.name, job.rejected))
    log.warning(
        "loaded %s: %d records, %d lines rejected (first: %s; all in ops.rejected_lines)",
        f.path.name,
        rows,
        job.rejected,
        job.first_reason,
    )


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
        rows = wh.load_json_files(
            [JsonFile(f.path, f.path.name, f.sha256, f.fmt) for f in files], result.batch_id, loaded_at
        )
        # What was hashed is what was loaded only if nobody wrote to the file in between.
        _unchanged_on_disk(files)
        for f in files:
            version = ledger.versions.get(f.path.name, 0) + 1
            _record_file(wh, f, "loaded", result.batch_id, loaded_at, rows=rows[str(f.path)], version=version)
    for f in files:
        ledger.versions[f.path.name] = ledger.versions.get(f.path.name, 0) + 1
        ledger.first_name_by_sha[f.sha256] = f.path.name
        n = rows[str(f.path)]
        result.loaded.append((f.path.name, n))
        version = ledger.versions[f.path.name]
        log.info("loaded %s: %d records%s", f.path.name, n, f" (version {version})" if version > 1 else "")


def _record_duplicate(wh: Warehouse, f: LandedFile, first: str, result: StreamResult) -> None:
    _record_file(wh, f, "duplicate", result.batch_id, ops.now(), duplicate_of=first)
    result.duplicates.append((f.path.name, first))
    log.info("skipped %s: same bytes as %s, already loaded", f.path.name, first)


def _refuse(wh: Warehouse, ledger: _Ledger, path: Path, size: int, reason: str, result: StreamResult) -> None:
    """Record an entry that is left where it is (not read, not moved), once per name, size and reason."""
    result.rejected.append((path.name, reason))
    key = (path.name, size, reason)
    if key in ledger.refused:
        return
    ledger.refused.add(key)
    wh.execute(
        "insert into ops.rejected_files values (?, ?, ?, ?, ?, ?, ?)",
        [path.name, "", size, reason, None, result.batch_id, ops.now()],
    )
    log.warning("refused %s: %s (left in place)", path.name, reason)


def _reject(settings: Settings, wh: Warehouse, f: LandedFile, reason: str, result: StreamResult) -> None:
    target = settings.quarantine / result.batch_id / f.path.name
    # Record first, then move: after a crash in between, the file is still in the landing folder
    # and is rejected again on the next pass (one more ledger line, nothing lost).
    wh.execute(
        "insert into ops.rejected_files values (?, ?, ?, ?, ?, ?, ?)",
        [f.path.name, f.sha256, f.size, reason, str(target), result.batch_id, ops.now()],
    )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # rename (same file system) moves the entry itself; a copy across file systems reads only
        # regular files, which is all that reaches here.
        shutil.move(str(f.path), target)
    except OSError as exc:
        log.warning("could not move %s to quarantine: %s", f.path.name, exc)
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


def _settled(settings: Settings) -> tuple[list[LandedFile], list[LandedFile], list[tuple[Path, int, str]]]:
    """Wait (up to the settle wait) for young files to be complete: (ready, still waiting, refused)."""
    settler = Settler(settings.stream_settle_s)
    deadline = time.monotonic() + settings.stream_settle_wait_s
    while True:
        found = survey(settings.transactions_landing)
        ready, waiting = settler.split(found.files)
        if not waiting or time.monotonic() >= deadline:
            return ready, waiting, found.refused
        time.sleep(min(max(settings.stream_settle_s / 4, 0.05), 0.5))


def run_once(
    settings: Settings,
    files: list[LandedFile] | None = None,
    refused: list[tuple[Path, int, str]] | None = None,
) -> StreamResult:
    """Load every new, complete file in the landing folder once (the caller holds the lock)."""
    result = StreamResult(ops.new_batch_id("stream"))
    if files is None:
        files, waiting, refused = _settled(settings)
        result.waiting.extend(f.path.name for f in waiting)
    with warehouse_connect(settings) as wh, ops.step(wh, "ingest.stream", result.batch_id) as step:
        ingest_files(settings, wh, files, result, refused)
        step.rows_in = len(files)
        step.rows_out = result.rows
        step.details = {
            "loaded": len(result.loaded),
            "duplicates": len(result.duplicates),
            "rejected": len(result.rejected),
            "partial": len(result.partial),
            "rejected_lines": sum(n for _, n in result.rejected_lines),
            "waiting": len(result.waiting),
            "unchanged": result.unchanged,
        }
    for name in result.waiting:
        log.info("%s is still being written: left for the next pass", name)
    return result


def run(settings: Settings) -> StreamResult:
    """Load the landing folder once, under the single-instance lock."""
    settings.transactions_landing.mkdir(parents=True, exist_ok=True)
    with single_instance(settings):
        return run_once(settings)


@dataclass
class _PendingHook:
    result: StreamResult
    attempts: int = 0
    next_at: float = 0.0


def _log_hook(settings: Settings, pending: _PendingHook, error: BaseException | None) -> None:
    """One `ops.run_log` row per hook attempt that failed, and one for a success after failures."""
    try:
        with warehouse_connect(settings) as wh:
            at = ops.now()
            wh.execute(
                "insert into ops.run_log (run_id, step, started_at, ended_at, rows_in, rows_out, status, error,"
                " details) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    f"{pending.result.batch_id}#{pending.attempts}",
                    "ingest.stream.on_loaded",
                    at,
                    at,
                    pending.result.rows,
                    0,
                    "failed" if error else "success",
                    redact(f"{type(error).__name__}: {error}")[:2000] if error else None,
                    orjson.dumps({"batch_id": pending.result.batch_id, "attempt": pending.attempts}).decode(),
                ],
            )
    except Exception:  # the run log is a report: failing to write it must not stop the follower
        log.warning("could not record the hook's outcome in ops.run_log", exc_info=True)


def _run_hooks(settings: Settings, hook: Callable[[StreamResult], None], queue: list[_PendingHook]) -> None:
    """Call the hook for each pending batch due now; failures stay queued with a backoff."""
    now = time.monotonic()
    for pending in list(queue):
        if pending.next_at > now:
            continue
        pending.attempts += 1
        try:
            hook(pending.result)
        except Exception as exc:
            delay = min(0.5 * 2 ** (pending.attempts - 1), MAX_BACKOFF_S)
            pending.next_at = time.monotonic() + delay
            log.error(
                "on_loaded hook failed for %s (attempt %d): %s: %s — retrying in %.1f s",
                pending.result.batch_id,
                pending.attempts,
                type(exc).__name__,
                exc,
                delay,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            _log_hook(settings, pending, exc)
            continue
        queue.remove(pending)
        if pending.attempts > 1:
            log.info("on_loaded hook for %s succeeded on attempt %d", pending.result.batch_id, pending.attempts)
            _log_hook(settings, pending, None)
    while len(queue) > MAX_PENDING_HOOKS:
        dropped = queue.pop(0)
        log.error("gave up the on_loaded hook for %s (bankpipe ml score catches up)", dropped.result.batch_id)


def follow(
    settings: Settings,
    *,
    poll_s: float = 0.25,
    settle_s: float | None = None,
    stop: threading.Event | None = None,
    on_loaded: Callable[[StreamResult], None] | None = None,
) -> None:
    """Watch the landing folder and load each new file as soon as it is complete (the `Settler` rule).

    Neither a failing pass (a locked warehouse, a full disk) nor a failing `on_loaded` hook stops
    the watch: each is logged, counted in `ops.run_log`, and retried with a backoff.
    """
    stop = stop or threading.Event()
    folder = settings.transactions_landing
    folder.mkdir(parents=True, exist_ok=True)
    settler = Settler(settings.stream_settle_s if settle_s is None else settle_s)
    known: dict[tuple[str, int, int], None] = {}
    hooks: list[_PendingHook] = []
    failures = 0
    with single_instance(settings):
        log.info("watching %s for transaction files (Ctrl-C to stop)", folder)
        while not stop.is_set():
            try:
                found = survey(folder)
                fresh = [f for f in found.files if (f.path.name, f.size, f.mtime_ns) not in known]
                ready, _ = settler.split(fresh)
                refused = [r for r in found.refused if (r[0].name, r[1], -1) not in known]
                if ready or refused:
                    result = run_once(settings, ready, refused)
                    for f in ready:
                        if f.path.name not in result.waiting:
                            known[(f.path.name, f.size, f.mtime_ns)] = None
                    for path, size, _ in refused:
                        known[(path.name, size, -1)] = None
                    if on_loaded is not None and (result.loaded or result.rejected):
                        hooks.append(_PendingHook(result))
                failures = 0
            except Exception as exc:
                failures += 1
                delay = min(poll_s * 2**failures, MAX_BACKOFF_S)
                log.error("stream ingest pass failed: %s: %s — retrying in %.1f s", type(exc).__name__, exc, delay)
                log.debug("stream ingest pass failed", exc_info=True)
                stop.wait(delay)
                continue
            if on_loaded is not None and hooks:
                _run_hooks(settings, on_loaded, hooks)
            stop.wait(poll_s)
