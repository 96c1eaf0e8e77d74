"""Load the seed's batch files (shared/seed-dataset/batch_source format) into the source database."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg
from psycopg import sql

from bankpipe.errors import InputFileError
from bankpipe.source.schema import AUDIT_COLUMNS, COLUMNS, KEYS

log = logging.getLogger(__name__)

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class FileSpec:
    table: str
    name: str
    kind: str  # "delimited" or "json"
    delimiter: str = ","


# The seed's file names and formats; fraud_case.csv is bankpipe's own (the case-management export).
FILES: tuple[FileSpec, ...] = (
    FileSpec("location", "location.txt", "delimited", "|"),
    FileSpec("bank_info", "bank_info.txt", "delimited", "|"),
    FileSpec("customer", "customer.csv", "delimited", ","),
    FileSpec("account", "account.json", "json"),
    FileSpec("fraud_case", "fraud_case.csv", "delimited", ","),
)


# The generator's record of when each master row was created and last changed in the simulated
# timeline (ground_truth/ next to batch_source/). Seed files carry no such times: without this file a
# load stamps now(), as any writer does.
SOURCE_TIMES = Path("..") / "ground_truth" / "source_times.parquet"


@dataclass(frozen=True)
class SourceTimes:
    """created_at/updated_at per key of one table, for the batch file whose sha256 is `sha256`."""

    sha256: str
    keys: list[str]
    created_at: list[object]
    updated_at: list[object]


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes (ties a source-times record to the batch file it was written for)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_source_times(directory: Path) -> dict[str, SourceTimes]:
    """The simulated created_at/updated_at per table for the batch files in `directory`, if the generator wrote them."""
    path = Path(directory) / SOURCE_TIMES
    if not path.is_file():
        return {}
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = orjson.loads((table.schema.metadata or {}).get(b"bankpipe.sha256", b"{}"))
    out: dict[str, SourceTimes] = {}
    for spec in FILES:
        if spec.name not in meta:
            continue
        rows = table.filter(pc.equal(table["table"], spec.table))
        out[spec.table] = SourceTimes(
            meta[spec.name],
            rows["key"].to_pylist(),
            rows["created_at"].to_pylist(),
            rows["updated_at"].to_pylist(),
        )
    return out


@dataclass(frozen=True)
class LoadResult:
    table: str
    file: Path
    rows: int
    inserted: int
    updated: int


def _check_header(path: Path, spec: FileSpec) -> None:
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        header = fh.readline().rstrip("\r\n").split(spec.delimiter)
    expected = COLUMNS[spec.table]
    if header != expected:
        raise InputFileError(
            f"{path}: header is {spec.delimiter.join(header)!r}, expected {spec.delimiter.join(expected)!r}"
        )


def _copy_delimited(cur: psycopg.Cursor, path: Path, spec: FileSpec, temp: str) -> None:
    _check_header(path, spec)
    copy_sql = sql.SQL("copy {} ({}) from stdin (format csv, header true, delimiter {})").format(
        sql.Identifier(temp), sql.SQL(", ").join(map(sql.Identifier, COLUMNS[spec.table])), sql.Literal(spec.delimiter)
    )
    with path.open("rb") as fh, cur.copy(copy_sql) as copy:
        first = True
        while chunk := fh.read(1 << 20):
            if first and chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]
            first = False
            copy.write(chunk)


def _copy_json(cur: psycopg.Cursor, path: Path, spec: FileSpec, temp: str) -> None:
    raw = path.read_bytes()
    if raw.startswith(BOM):
        raw = raw[len(BOM) :]
    try:
        records = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputFileError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(records, list):
        raise InputFileError(f"{path}: expected a JSON array of objects, got {type(records).__name__}")
    cols = COLUMNS[spec.table]
    copy_sql = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier(temp), sql.SQL(", ").join(map(sql.Identifier, cols))
    )
    with cur.copy(copy_sql) as copy:
        for i, rec in enumerate(records):
            if not isinstance(rec, dict) or cols[0] not in rec:
                raise InputFileError(f"{path}: record {i} is not an object with {cols[0]!r}")
            copy.write_row([rec.get(c) for c in cols])


def _apply_times(cur: psycopg.Cursor, temp: str, key: str, times: SourceTimes) -> None:
    """Give the staged rows the times of `times` (rows it does not name keep now())."""
    staged = sql.Identifier(f"{temp}_times")
    cur.execute(
        sql.SQL("create temp table {} (key text primary key, c timestamptz, u timestamptz) on commit drop").format(
            staged
        )
    )
    with cur.copy(sql.SQL("copy {} (key, c, u) from stdin").format(staged)) as copy:
        for row in zip(times.keys, times.created_at, times.updated_at, strict=True):
            copy.write_row(row)
    cur.execute(
        sql.SQL("update {t} set created_at = s.c, updated_at = s.u from {s} s where {t}.{k} = s.key").format(
            t=sql.Identifier(temp), s=staged, k=sql.Identifier(key)
        )
    )


def load_file(conn: psycopg.Connection, path: Path, spec: FileSpec, times: SourceTimes | None = None) -> LoadResult:
    """Upsert one batch file into its table; unchanged rows are left alone (their updated_at too).

    New rows get created_at/updated_at from `times` when given (the generator's simulated timeline),
    else now(). A changed row is stamped now() by the table's trigger either way: a change is made now.
    """
    table, key, cols = spec.table, KEYS[spec.table], COLUMNS[spec.table]
    if times is not None and times.sha256 != file_sha256(path):
        log.warning("%s: changed since the generator wrote its source times; loading with now()", path)
        times = None
    temp = f"_load_{table}"
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            sql.SQL("create temp table {} (like {} including defaults) on commit drop").format(
                sql.Identifier(temp), sql.Identifier(table)
            )
        )
        try:
            if spec.kind == "json":
                _copy_json(cur, path, spec, temp)
            else:
                _copy_delimited(cur, path, spec, temp)
        except psycopg.errors.DataError as exc:
            raise InputFileError(f"{path}: {str(exc).splitlines()[0]} ({exc.diag.context or ''})".strip()) from exc
        rows = cur.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(temp))).fetchone()[0]
        dupes = cur.execute(
            sql.SQL("select {k}, count(*) from {t} group by {k} having count(*) > 1 limit 1").format(
                k=sql.Identifier(key), t=sql.Identifier(temp)
            )
        ).fetchone()
        if dupes:
            raise InputFileError(f"{path}: key {key}={dupes[0]!r} appears {dupes[1]} times")
        if times is not None:
            _apply_times(cur, temp, key, times)
        # The staged created_at/updated_at are now() unless times set them: inserted either way.
        insert_cols = sql.SQL(", ").join(map(sql.Identifier, [*cols, *AUDIT_COLUMNS]))
        non_key = [c for c in cols if c != key]
        upsert = sql.SQL(
            "insert into {t} ({cols}) select {cols} from {tmp} "
            "on conflict ({k}) do update set {sets} "
            "where ({old}) is distinct from ({new}) "
            "returning (xmax = 0) as inserted"
        ).format(
            t=sql.Identifier(table),
            cols=insert_cols,
            tmp=sql.Identifier(temp),
            k=sql.Identifier(key),
            sets=sql.SQL(", ").join(sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in non_key),
            old=sql.SQL(", ").join(
                sql.SQL("{t}.{c}").format(t=sql.Identifier(table), c=sql.Identifier(c)) for c in non_key
            ),
            new=sql.SQL(", ").join(sql.SQL("excluded.{c}").format(c=sql.Identifier(c)) for c in non_key),
        )
        flags = [r[0] for r in cur.execute(upsert).fetchall()]
    inserted = sum(flags)
    return LoadResult(table, path, rows, inserted, len(flags) - inserted)


def find_batch_files(directory: Path) -> list[FileSpec]:
    """The known batch files present in `directory`; at least one must be there."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputFileError(f"{directory}: not a directory")
    present = [spec for spec in FILES if (directory / spec.name).is_file()]
    if not present:
        names = ", ".join(spec.name for spec in FILES)
        raise InputFileError(f"{directory}: none of the batch files found (expected some of: {names})")
    return present


def load_files(conn: psycopg.Connection, directory: Path) -> list[LoadResult]:
    """Load every known batch file present in `directory`, each file in its own transaction.

    Files the generator wrote (its ground_truth/source_times.parquet beside the folder, for these
    very bytes) insert their rows with the simulated created_at/updated_at; any others with now().
    """
    directory = Path(directory)
    present = find_batch_files(directory)
    times = read_source_times(directory)
    results = []
    for spec in present:
        result = load_file(conn, directory / spec.name, spec, times.get(spec.table))
        log.info("loaded %s: %d rows (%d new, %d changed)", result.file, result.rows, result.inserted, result.updated)
        results.append(result)
    return results
