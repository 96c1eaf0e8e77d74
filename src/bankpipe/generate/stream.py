"""Stream files: record order, file cut, planted defects (exactly recorded), rendering and atomic writes."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from bankpipe.generate import reference as ref
from bankpipe.generate.config import EXTENSIONS, DefectConfig
from bankpipe.generate.ids import capacity, format_id
from bankpipe.generate.master import Master, orphan_numbers
from bankpipe.generate.render import Arena, Lookup, Rendered, Rows, json_lookup, py_amount_text
from bankpipe.generate.transactions import DAY, Tx

# Which field goes missing, and how often relative to the others.
_MISSING_WEIGHTS = {
    "id": 0.05,
    "date": 0.15,
    "timestamp": 0.15,
    "account_id": 0.15,
    "jumlah_transaksi": 0.2,
    "tipe_transaksi": 0.1,
    "akun_tujuan": 0.1,
    "status": 0.1,
}
MALFORMED_KINDS: tuple[str, ...] = (
    "amount_text",
    "amount_negative",
    "bad_date",
    "bad_time",
    "unknown_status",
    "unknown_type",
)
INDENT = " " * 8  # a key inside an object inside the top-level array, as json.dump(indent=4) writes it
# Rendering works on this many records at a time (bounded memory at any scale).
CHUNK_RECORDS = 400_000


def file_name(name_ts: int, start: date) -> str:
    """`transaction_YYYYMMDD_HHMMSS.json` for a time in seconds since start 00:00."""
    d = start + timedelta(days=int(name_ts // DAY))
    s = int(name_ts % DAY)
    return f"transaction_{d:%Y%m%d}_{s // 3600:02d}{s % 3600 // 60:02d}{s % 60:02d}.json"


@dataclass
class FilePlan:
    """One stream file: which emitted positions it holds and how it is delivered."""

    name: str
    start: int
    stop: int
    name_ts: int
    kind: str = "regular"  # regular | late | truncated
    truncate_fraction: float | None = None
    copies: list[str] = field(default_factory=list)  # byte-identical duplicates under other names


@dataclass
class StreamPlan:
    """Record order, files and the planted defects of one batch of stream files."""

    order: np.ndarray  # emitted position -> tx row
    is_copy: np.ndarray  # bool per position: a duplicate record
    files: list[FilePlan]
    overrides: dict[int, dict[str, str | None]]  # position -> field -> JSON value text (None = key absent)
    defects: list[dict[str, object]]

    def file_index(self, position: np.ndarray) -> np.ndarray:
        starts = np.array([f.start for f in self.files], dtype=np.int64)
        return np.searchsorted(starts, position, side="right") - 1


def _unique_ts(t: int, used: set[int]) -> int:
    while t in used:
        t += 1
    used.add(t)
    return t


def _malformed(kind: str, tx: Tx, row: int, start: date, rng: np.random.Generator) -> tuple[str, str]:
    """(field, JSON value text) for one malformed value."""
    cents = int(tx.amount[row])
    d = start + timedelta(days=int(tx.ts[row] // DAY))
    sec = int(tx.ts[row] % DAY)
    h, m, s = sec // 3600, sec % 3600 // 60, sec % 60
    pick = int(rng.integers(0, 3))
    if kind == "amount_text":
        idr = f"{cents // 100:,}".replace(",", ".") + f",{cents % 100:02d}"
        return "jumlah_transaksi", [f'"{idr}"', '"N/A"', '""'][pick]
    if kind == "amount_negative":
        return "jumlah_transaksi", "-" + py_amount_text(cents)
    if kind == "bad_date":
        return "date", '"' + [f"{d:%d/%m/%Y}", f"{d.year}-13-{d.day:02d}", f"{d.year}-02-30"][pick] + '"'
    if kind == "bad_time":
        value = [f"{h + 24:02d}:{m:02d}:{s:02d}", f"{h}.{m:02d}.{s:02d}", f"{h:02d}:{m + 60:02d}:{s:02d}"][pick]
        return "timestamp", f'"{value}"'
    if kind == "unknown_status":
        return "status", '"' + ["Processing", "Unknown", "Reversed"][pick] + '"'
    return "tipe_transaksi", '"' + ["Refund", "TopUp", "Reversal"][pick] + '"'


def plan_stream(
    tx: Tx,
    master: Master,
    defects: DefectConfig,
    records_per_file: int,
    start: date,
    rng: np.random.Generator,
    *,
    id_offset: int = 0,
    file_defects: bool = True,
    min_name_ts: int | None = None,
) -> StreamPlan:
    """Choose defect rows and files; sets `tx.orphan` for orphan rows. tx must be in id order.

    File names are unique and increasing; `min_name_ts` makes them start after earlier files.
    """
    n = len(tx)
    width = master.widths.transaction
    rec_id = lambda row: format_id("transaction", id_offset + int(row) + 1, width)  # noqa: E731
    rates = defects.record_rates()
    counts = {name: round(rate * n) for name, rate in rates.items()}
    # Defects go on legitimate rows only, one defect per record, so the labels stay usable.
    pool = np.flatnonzero(tx.fraud == 0)
    total = min(sum(counts.values()), len(pool))
    chosen = rng.choice(pool, total, replace=False) if total else pool[:0]
    sets: dict[str, np.ndarray] = {}
    at = 0
    for name in ("orphan_account", "missing_field", "malformed_value", "duplicate_record"):
        take = min(counts[name], total - at)
        sets[name] = np.sort(chosen[at : at + take])
        at += take

    # Orphans: a handful of unknown accounts, each showing up in several transactions.
    orphan_rows = sets["orphan_account"]
    if len(orphan_rows):
        pool_numbers = orphan_numbers(master, max(1, math.ceil(len(orphan_rows) / 8)))
        tx.orphan[orphan_rows] = pool_numbers[rng.integers(0, len(pool_numbers), len(orphan_rows))]

    # Duplicate records are re-sent a little later (within the next couple of files).
    dup_rows = sets["duplicate_record"]
    later = np.minimum(dup_rows + rng.integers(1, 2 * records_per_file + 1, len(dup_rows)), max(n - 1, 0))
    by_place = np.lexsort((dup_rows, later))
    after = later[by_place] + 1
    order = np.insert(np.arange(n, dtype=np.int64), after, dup_rows[by_place].astype(np.int64))
    is_copy = np.insert(np.zeros(n, bool), after, True)
    positions_of_row = np.flatnonzero(~is_copy)  # originals keep their relative (id) order

    # Files: consecutive positions; named after their newest record (unique to the second).
    m = len(order)
    n_files = math.ceil(m / records_per_file) if m else 0
    starts = np.arange(n_files, dtype=np.int64) * records_per_file
    newest = np.maximum.reduceat(tx.ts[order], starts) if n_files else np.zeros(0, np.int64)
    steps = np.arange(n_files, dtype=np.int64)
    name_ts = steps + np.maximum.accumulate(newest - steps) if n_files else newest
    if n_files and min_name_ts is not None and name_ts[0] < min_name_ts:
        name_ts = np.maximum.accumulate(np.maximum(name_ts - steps, min_name_ts)) + steps
    used = {int(t) for t in name_ts}
    files = [
        FilePlan(file_name(int(t), start), int(s), int(min(s + records_per_file, m)), int(t))
        for s, t in zip(starts, name_ts, strict=True)
    ]
    plan = StreamPlan(order, is_copy, files, {}, [])
    # File-level defects first: they rename files, and record defects name their final file.
    if file_defects and n_files:
        _plan_file_defects(plan, defects, rng, used, start, tx, rec_id)
    file_of_pos = lambda p: files[int(p // records_per_file)]  # noqa: E731

    for row in orphan_rows:
        p = int(positions_of_row[row])
        f = file_of_pos(p)
        orphan_id = format_id("account", int(tx.orphan[row]), master.widths.account)
        plan.defects.append(_defect(f.name, p - f.start, rec_id(row), "orphan_account", "account_id", orphan_id))
    names = list(_MISSING_WEIGHTS)
    weights = np.array(list(_MISSING_WEIGHTS.values()))
    missing = sets["missing_field"]
    fields_missing = rng.choice(len(names), len(missing), p=weights / weights.sum())
    absent_missing = rng.random(len(missing)) < 0.7
    for row, fld_idx, absent in zip(missing, fields_missing, absent_missing, strict=True):
        p = int(positions_of_row[row])
        f = file_of_pos(p)
        fld = names[int(fld_idx)]
        plan.overrides.setdefault(p, {})[fld] = None if absent else "null"
        plan.defects.append(
            _defect(f.name, p - f.start, rec_id(row), "missing_field", fld, "absent" if absent else "null")
        )
    for row in sets["malformed_value"]:
        p = int(positions_of_row[row])
        f = file_of_pos(p)
        kind = MALFORMED_KINDS[int(rng.integers(0, len(MALFORMED_KINDS)))]
        fld, value = _malformed(kind, tx, int(row), start, rng)
        plan.overrides.setdefault(p, {})[fld] = value
        plan.defects.append(_defect(f.name, p - f.start, rec_id(row), "malformed_value", fld, f"{kind}: {value}"))
    for p in np.flatnonzero(is_copy):
        row = int(order[p])
        f = file_of_pos(p)
        src = int(positions_of_row[row])
        g = file_of_pos(src)
        detail = f"copy of {g.name}[{src - g.start}]"
        plan.defects.append(_defect(f.name, int(p) - f.start, rec_id(row), "duplicate_record", None, detail))
    # A duplicate file carries its original's defective records too: list them there as well.
    copies = {f.name: f.copies for f in files if f.copies}
    for d in [d for d in plan.defects if d["file"] in copies and d["position"] is not None]:
        for copy in copies[str(d["file"])]:
            plan.defects.append({**d, "file": copy, "copy_of": d["file"]})
    plan.defects.sort(
        key=lambda d: (str(d["file"]), -1 if d["position"] is None else int(d["position"]), str(d["defect"]))
    )  # type: ignore[call-overload]
    return plan


def ts_text(ts: int, start: date) -> str:
    """`YYYY-MM-DD HH:MM:SS` for seconds since start 00:00."""
    d = start + timedelta(days=int(ts // DAY))
    s = int(ts % DAY)
    return f"{d.isoformat()} {s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _defect(
    file: str, position: int | None, record_id: str | None, defect: str, fld: str | None, detail: str
) -> dict[str, object]:
    return {
        "file": file,
        "position": position,
        "record_id": record_id,
        "defect": defect,
        "field": fld,
        "detail": detail,
        "copy_of": None,
    }


def _plan_file_defects(
    plan: StreamPlan,
    defects: DefectConfig,
    rng: np.random.Generator,
    used: set[int],
    start: date,
    tx: Tx,
    rec_id: Callable[[int], str],
) -> None:
    n_files = len(plan.files)
    n_trunc = min(defects.truncated_files, n_files)
    n_late = min(round(defects.late_files * n_files), n_files - n_trunc)
    n_dup = min(round(defects.duplicate_files * n_files), n_files - n_trunc - n_late)
    picked = rng.permutation(n_files)
    trunc = picked[:n_trunc]
    late = picked[n_trunc : n_trunc + n_late]
    dup = picked[n_trunc + n_late : n_trunc + n_late + n_dup]
    for i in sorted(int(i) for i in trunc):
        f = plan.files[i]
        f.kind, f.truncate_fraction = "truncated", float(rng.uniform(0.3, 0.9))
        # Every record of a truncated file is lost to a JSON reader unless re-sent elsewhere.
        detail = f"cut at {f.truncate_fraction:.3f} of its bytes"
        for p in range(f.start, f.stop):
            plan.defects.append(
                _defect(f.name, p - f.start, rec_id(int(plan.order[p])), "truncated_file", None, detail)
            )
    for i in sorted(int(i) for i in late):
        f = plan.files[i]
        delay = int(rng.integers(2 * 3600, 48 * 3600))
        used.discard(f.name_ts)
        f.name_ts = _unique_ts(f.name_ts + delay, used)
        f.name, f.kind = file_name(f.name_ts, start), "late"
        newest = int(tx.ts[plan.order[f.start : f.stop]].max())
        detail = f"newest record {ts_text(newest, start)}, named {delay} s later than its content"
        plan.defects.append(_defect(f.name, None, None, "late_file", None, detail))
    for i in sorted(int(i) for i in dup):
        f = plan.files[i]
        copy = file_name(_unique_ts(f.name_ts + int(rng.integers(1, 600)), used), start)
        f.copies.append(copy)
        plan.defects.append(_defect(copy, None, None, "duplicate_file", None, f"same bytes as {f.name}"))


class Lookups:
    """Pre-built lookups for enumerations and dates, shared by all chunks of a run."""

    def __init__(self, start: date) -> None:
        self.start = start
        self.types = json_lookup(ref.TX_TYPES)
        self.statuses = json_lookup(ref.STATUSES)
        self.currencies = json_lookup(ref.CURRENCIES)
        self.channels = json_lookup(ref.CHANNELS)
        self.separators = Lookup([",\n", "\n"])
        self._dates = Lookup([])
        self._n_days = 0
        self._times: Lookup | None = None
        self._ids: dict[tuple[str, int, int], Lookup] = {}

    def times(self) -> Lookup:
        """`HH:MM:SS` per second of the day: one 8-byte gather per record."""
        if self._times is None:
            self._times = Lookup([f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" for s in range(DAY)])
        return self._times

    def id_digits(self, entity: str, count: int, width: int) -> Lookup:
        """The digits of ids 0..count-1 (accounts, locations): gathered rather than computed per record."""
        key = (entity, count, width)
        if key not in self._ids:
            self._ids[key] = Lookup.of_digits(count, width)
        return self._ids[key]

    def dates(self, n_days: int) -> Lookup:
        if n_days > self._n_days:
            self._n_days = max(n_days, 2 * self._n_days)
            self._dates = Lookup([(self.start + timedelta(days=i)).isoformat() for i in range(self._n_days)])
        return self._dates


def render_records(
    tx: Tx,
    rows: np.ndarray,
    master: Master,
    extensions: tuple[str, ...],
    id_offset: int,
    lk: Lookups,
    last: np.ndarray,
    arena: Arena | None = None,
) -> Rendered:
    """The records of `rows` as `json.dump(..., indent=4)` writes array elements, separators included."""
    w = master.widths
    n = len(rows)
    ts = tx.ts[rows]
    sec = ts % DAY
    acc_num = np.where(tx.orphan[rows] > 0, tx.orphan[rows], tx.account[rows] + 1)
    accounts = lk.id_digits("account", capacity(master.n_accounts) + 1, w.account)
    r = Rows(n)
    r.text('    {\n        "id": "TRX-').digits(id_offset + rows + 1, w.transaction)
    r.text('",\n        "date": "').lookup(lk.dates(int(ts.max() // DAY) + 1 if n else 1), ts // DAY)
    r.text('",\n        "timestamp": "').lookup(lk.times(), sec)
    r.text('",\n        "account_id": "ACC-').lookup(accounts, acc_num)
    r.text('",\n        "jumlah_transaksi": ').amount(tx.amount[rows])
    r.text(',\n        "tipe_transaksi": ').lookup(lk.types, tx.ttype[rows])
    r.text(',\n        "akun_tujuan": "ACC-').lookup(accounts, tx.dest[rows] + 1)
    r.text('",\n        "status": ').lookup(lk.statuses, tx.status[rows])
    if "mata_uang" in extensions:
        r.text(',\n        "mata_uang": ').lookup(lk.currencies, tx.currency[rows])
    if "channel" in extensions:
        r.text(',\n        "channel": ').lookup(lk.channels, tx.channel[rows])
    if "location_id" in extensions:
        locations = lk.id_digits("location", len(master.cities) + 1, w.location)
        r.text(',\n        "location_id": "LOC-').lookup(locations, tx.location[rows] + 1).text('"')
    r.text("\n    }").lookup(lk.separators, last.astype(np.int64))
    return r.build(arena)


def record_values(
    tx: Tx, row: int, master: Master, start: date, extensions: tuple[str, ...], id_offset: int
) -> dict[str, str]:
    """One record's JSON value texts by key (the per-row twin of render_records, for defect rows)."""
    w = master.widths
    ts = int(tx.ts[row])
    acc = int(tx.orphan[row]) or int(tx.account[row]) + 1
    values = {
        "id": f'"{format_id("transaction", id_offset + row + 1, w.transaction)}"',
        "date": f'"{(start + timedelta(days=ts // DAY)).isoformat()}"',
        "timestamp": f'"{ts % DAY // 3600:02d}:{ts % 3600 // 60:02d}:{ts % 60:02d}"',
        "account_id": f'"{format_id("account", acc, w.account)}"',
        "jumlah_transaksi": py_amount_text(int(tx.amount[row])),
        "tipe_transaksi": f'"{ref.TX_TYPES[tx.ttype[row]]}"',
        "akun_tujuan": f'"{format_id("account", int(tx.dest[row]) + 1, w.account)}"',
        "status": f'"{ref.STATUSES[tx.status[row]]}"',
    }
    if "mata_uang" in extensions:
        values["mata_uang"] = f'"{ref.CURRENCIES[tx.currency[row]]}"'
    if "channel" in extensions:
        values["channel"] = f'"{ref.CHANNELS[tx.channel[row]]}"'
    if "location_id" in extensions:
        values["location_id"] = f'"{format_id("location", int(tx.location[row]) + 1, w.location)}"'
    return values


def record_text(values: dict[str, str | None], last: bool) -> bytes:
    """One array element from value texts; None drops the key (a missing field)."""
    body = ",\n".join(f'{INDENT}"{k}": {v}' for k, v in values.items() if v is not None)
    return f"    {{\n{body}\n    }}{chr(10) if last else ',' + chr(10)}".encode()


def _chunks(plan: StreamPlan) -> Iterator[tuple[int, int]]:
    """Runs of whole files of about CHUNK_RECORDS positions."""
    i = 0
    while i < len(plan.files):
        j = i + 1
        while j < len(plan.files) and plan.files[j].stop - plan.files[i].start <= CHUNK_RECORDS:
            j += 1
        yield i, j
        i = j


def write_atomic(path: Path, data: bytes | memoryview | list[bytes | memoryview]) -> None:
    """Write to a hidden temp name, then rename: readers never see a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        if isinstance(data, list):
            fh.writelines(data)
        else:
            fh.write(data)
    os.replace(tmp, path)


def write_stream(
    tx: Tx,
    plan: StreamPlan,
    master: Master,
    start: date,
    directory: Path,
    extensions: tuple[str, ...],
    *,
    id_offset: int = 0,
    lookups: Lookups | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[str, int]]:
    """Render and write every planned file (and its copies); returns (name, bytes) per written file."""
    directory.mkdir(parents=True, exist_ok=True)
    lk = lookups or Lookups(start)
    # Build the shared tables before the threads start.
    lk.dates(int(tx.ts.max() // DAY) + 1 if len(tx) else 1)
    lk.times()
    lk.id_digits("account", capacity(master.n_accounts) + 1, master.widths.account)
    lk.id_digits("location", len(master.cities) + 1, master.widths.location)
    ext = tuple(e for e in EXTENSIONS if e in extensions)
    chunks = list(_chunks(plan))
    by_chunk: dict[int, list[int]] = {}
    bounds = np.array([plan.files[i].start for i, _ in chunks], np.int64)
    for p in sorted(plan.overrides):
        by_chunk.setdefault(int(np.searchsorted(bounds, p, side="right") - 1), []).append(p)

    local = threading.local()

    def work(c: int) -> tuple[int, list[tuple[str, int]]]:
        i, j = chunks[c]
        p0, p1 = plan.files[i].start, plan.files[j - 1].stop
        last = np.zeros(p1 - p0, bool)
        last[np.array([f.stop - 1 - p0 for f in plan.files[i:j]])] = True
        if not hasattr(local, "arena"):
            local.arena = Arena()
        rendered = render_records(tx, plan.order[p0:p1], master, ext, id_offset, lk, last, local.arena)
        for p in by_chunk.get(c, []):
            values: dict[str, str | None] = dict(record_values(tx, int(plan.order[p]), master, start, ext, id_offset))
            values.update(plan.overrides[p])
            rendered.replacements[p - p0] = record_text(values, bool(last[p - p0]))
        out: list[tuple[str, int]] = []
        for f in plan.files[i:j]:
            pieces: list[memoryview | bytes] = [b"[\n", *rendered.pieces(f.start - p0, f.stop - p0), b"]"]
            if f.truncate_fraction is not None:
                whole = b"".join(pieces)
                pieces = [whole[: int(len(whole) * f.truncate_fraction)]]
            size = sum(len(x) for x in pieces)
            for name in (f.name, *f.copies):
                write_atomic(directory / name, pieces)
                out.append((name, size))
        return p1 - p0, out

    # numpy and file writes release the GIL: chunks render and write in parallel threads; the
    # bytes of every file do not depend on which thread wrote it.
    written: list[tuple[str, int]] = []
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        for records, out in pool.map(work, range(len(chunks))):
            written.extend(out)
            if progress is not None:
                progress(records)
    return written


def workers() -> int:
    """Threads for the parallel parts (the machine's cores, at most 4)."""
    return max(1, min(4, os.cpu_count() or 1))
