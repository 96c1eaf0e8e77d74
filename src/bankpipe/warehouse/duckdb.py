"""DuckDB file warehouse (the embedded default)."""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from bankpipe.errors import BankpipeError, WarehouseBusyError
from bankpipe.warehouse.base import SCHEMAS, JsonFile, JsonLine
from bankpipe.warehouse.ddl import DDL

if TYPE_CHECKING:
    import pyarrow as pa

    from bankpipe.settings import Settings

log = logging.getLogger(__name__)

# DuckDB lets one process write a file at a time. Steps are short and open the file only while
# they work, so a second process waits for its turn instead of failing at once; how long is the
# setting BANKPIPE_WAREHOUSE_LOCK_WAIT_S (this is its default).
LOCK_WAIT_S = 120.0
LOCK_REPORT_EVERY_S = 10.0  # a "still waiting" line this often, so a long wait never looks like a hang
_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")
# What the OS says when a write finds no room: DuckDB passes strerror on in its message.
_NO_SPACE = ("No space left on device", "Disk quota exceeded")


# What BANKPIPE_DUCKDB_MEMORY_LIMIT may say: a number and a DuckDB unit (GB = 1000³ bytes, GiB = 1024³).
_SIZE = re.compile(r"\s*\d+(\.\d+)?\s*([KMGT]i?B|B|bytes)\s*", re.IGNORECASE)
# The default memory limit per DuckDB thread: the upper end of DuckDB's own advice (1-4 GB per thread for
# aggregation- and join-heavy work) halved, since anything over the limit spills to disk beside the warehouse.
_MIB_PER_THREAD = 2048


def _physical_mib() -> int:
    """The RAM this process may use, in MiB: the machine's, or its cgroup's limit when that is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total >> 20


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resources(settings: Settings) -> dict[str, str]:
    """DuckDB's `memory_limit` and `threads` for every connection bankpipe opens (and dbt-duckdb's).

    DuckDB's own default is 80 % of RAM, which let one `bankpipe run` at 10M transactions reach 13.7 GB
    during transform and leave nothing for training (issue 17). Unset, the limit is 2 GiB per thread,
    at most half the RAM: 4 GiB on a 2-core machine, so the process stays under 6 GB with Python's
    share, and a bigger query spills to `<warehouse>.tmp/` instead of growing.
    """
    threads = settings.duckdb_threads or _cpus()
    limit = settings.duckdb_memory_limit
    if limit is None:
        limit = f"{min(_physical_mib() // 2, _MIB_PER_THREAD * threads)}MiB"
    elif not _SIZE.fullmatch(limit):
        raise BankpipeError(
            f"BANKPIPE_DUCKDB_MEMORY_LIMIT={limit!r} is not a size DuckDB reads"
            " (a number and a unit: 4GB, 1500MB, 3GiB)"
        )
    return {"memory_limit": limit.strip(), "threads": str(threads)}


class WarehouseFullError(BankpipeError):
    """The disk under the warehouse file is full; the transaction that hit it was rolled back by DuckDB."""


def _no_space(exc: BaseException, path: Path) -> WarehouseFullError | None:
    text = str(exc)
    if not any(marker in text for marker in _NO_SPACE):
        return None
    free = shutil.disk_usage(path.parent).free >> 20
    # DuckDB's own line names the file it could not write (the WAL, a spill file): kept at the end.
    return WarehouseFullError(
        f"no space left on the disk of the warehouse {path} ({free} MiB free): the failed transaction was"
        f" rolled back, committed data is intact — free space and run again ({text.splitlines()[0]})"
    )


class _Connection:
    """A DuckDB connection whose disk-full errors become one WarehouseFullError naming the file.

    Once a write has hit a full disk, DuckDB may refuse every later statement on the connection
    with a different message ("database has been invalidated"); those repeat the first error, so
    the user sees the cause, not its echo. Everything else passes through untouched.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self._con = con
        self._path = path
        self._full: WarehouseFullError | None = None

    def _guard(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except duckdb.Error as exc:
            full = self._full or _no_space(exc, self._path)
            if full is None:
                raise
            self._full = full
            raise WarehouseFullError(str(full)) from exc

    def execute(self, sql: str, params: Any = None) -> Any:
        return self._guard(self._con.execute, sql, params)

    def close(self) -> None:
        self._guard(self._con.close)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def _holder(message: str) -> str:
    found = _HOLDER.search(message)
    return f"PID {found['pid']} ({found['exe']})" if found else "another process"


def _open(
    path: Path, read_only: bool, wait_s: float = LOCK_WAIT_S, config: Mapping[str, str] | None = None
) -> duckdb.DuckDBPyConnection:
    """Connect, waiting up to `wait_s` for another process's lock on the file, with a log line as it goes."""
    started = time.monotonic()
    reported = -LOCK_REPORT_EVERY_S
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=dict(config or {}))
            return _Connection(con, path)  # type: ignore[return-value]
        except duckdb.IOException as exc:
            first = str(exc).splitlines()[0]
            full = _no_space(exc, path)
            if full is not None:
                raise full from exc
            if "lock" not in first.lower():
                raise BankpipeError(f"cannot open warehouse {path}: {first}") from exc
            waited = time.monotonic() - started
            holder = _holder(first)
            if waited >= wait_s:
                raise WarehouseBusyError(
                    f"warehouse {path} is locked by another process, {holder}; gave up after {wait_s:g} s"
                    " (BANKPIPE_WAREHOUSE_LOCK_WAIT_S) — let it finish, or stop it, and run again"
                ) from exc
            if waited - reported >= LOCK_REPORT_EVERY_S:
                # A moment's wait is routine (INFO); still waiting after that is worth the operator's eye, and
                # `bankpipe run` shows only warnings beside its step lines.
                level = logging.WARNING if waited >= LOCK_REPORT_EVERY_S else logging.INFO
                reported = waited
                log.log(
                    level,
                    "waiting for the warehouse lock held by %s on %s (%.0f of %g s)",
                    holder,
                    path,
                    waited,
                    wait_s,
                )
            time.sleep(min(delay, max(wait_s - waited, 0.0)))
            delay = min(delay * 2, 1.0)


@contextmanager
def _staged(files: Sequence[JsonFile], warehouse: Path) -> Iterator[dict[str, JsonFile]]:
    """Each file under a generated, glob-free name (a symlink in a private temp dir): staged path → file.

    DuckDB's readers take a path as a glob pattern; a landed `x*.json` would also read `x1.json`, and
    `[x].json` would read `x.json`. The landing folder's names are never handed to DuckDB. The links
    sit beside the warehouse (the state dir, 0700), not in /tmp; the caller holds the file's only
    write connection, so a stage folder of this warehouse found here is a killed run's.
    """
    prefix = f"{warehouse.name}.stage-"
    for stale in warehouse.parent.glob(f"{glob.escape(prefix)}*"):
        shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=warehouse.parent))
    staged: dict[str, JsonFile] = {}
    try:
        for i, f in enumerate(files):
            link = folder / f"{i:06d}.json"
            os.symlink(Path(f.path).absolute(), link)
            staged[str(link)] = f
        yield staged
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class DuckDBWarehouse:
    """A DuckDB file; one connection per instance, opened on construction."""

    dialect = "duckdb"
    errors: tuple[type[BaseException], ...] = (duckdb.Error,)
    # Errors of the moment, not of the data: a step meeting one fails (and is retried), it never
    # sets a file aside as bad.
    transient_errors: tuple[type[BaseException], ...] = (
        duckdb.IOException,
        duckdb.TransactionException,
        duckdb.ConnectionException,
        duckdb.OutOfMemoryException,
        duckdb.InterruptException,
    )

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        lock_wait_s: float = LOCK_WAIT_S,
        config: Mapping[str, str] | None = None,
    ) -> None:
        """`config`: DuckDB options set at connect time (`resources(settings)`: memory_limit, threads)."""
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise BankpipeError(f"no warehouse at {self.path} yet (run: bankpipe run)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = _open(self.path, read_only, lock_wait_s, config)
        self._in_tx = False

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.con.execute(sql, params)

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] | None = None) -> tuple[Any, ...] | None:
        return self.con.execute(sql, params).fetchone()

    def fetch_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        return self.con.execute(sql, params).to_arrow_table()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._in_tx:  # nested: the outer transaction decides
            yield
            return
        self.con.execute("begin transaction")
        self._in_tx = True
        try:
            yield
        except BaseException:
            self.con.execute("rollback")
            raise
        else:
            self.con.execute("commit")
        finally:
            self._in_tx = False

    def append_arrow(self, table: str, data: pa.Table) -> int:
        self.con.register("_bankpipe_arrow", data)
        try:
            cols = ", ".join(f'"{c}"' for c in data.column_names)
            self.con.execute(f"insert into {table} ({cols}) select {cols} from _bankpipe_arrow")
        finally:
            self.con.unregister("_bankpipe_arrow")
        return data.num_rows

    def table_exists(self, schema: str, table: str) -> bool:
        row = self.fetchone(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        )
        return bool(row and row[0])

    def ident(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def stage_csv(self, name: str, path: Path, columns: dict[str, str]) -> int:
        # PostgreSQL CSV writes NULL unquoted-empty and '' as "": allow_quoted_nulls=false keeps them apart.
        self.con.execute(
            f"create or replace temp table {name} as select * from read_csv(?, columns = ?, header = false,"
            " auto_detect = false, allow_quoted_nulls = false, delim = ',', quote = '\"', escape = '\"')",
            [str(path), {c: t.upper() for c, t in columns.items()}],
        )
        return int(self.con.execute(f"select count(*) from {name}").fetchone()[0])

    @staticmethod
    def _select_records(staged: Sequence[str], fmt: str) -> str:
        """The records of already staged (glob-free) paths, with the staged path as `_path`."""
        paths = ", ".join("'" + p.replace("'", "''") + "'" for p in staged)
        # read_json_objects keeps every record whole, unknown fields included; the seed's fields are
        # extracted by the bronze.raw_transactions view (and once, incrementally, by silver). json()
        # drops the pretty-printing whitespace (values and key order stay as they came): the seed's
        # indent=4 files would otherwise double bronze's size.
        return (
            f"select filename as _path, json(json) as _record"
            f" from read_json_objects([{paths}], format = '{fmt}', filename = true)"
        )

    def load_json_files(self, files: Sequence[JsonFile], batch_id: str, loaded_at: datetime) -> dict[str, int]:
        self.con.execute("create or replace temp table _landed (_path varchar, _name varchar, _sha varchar)")
        try:
            with _staged(files, self.path) as staged:
                for path, f in staged.items():
                    self.con.execute("insert into _landed values (?, ?, ?)", [path, f.name, f.sha256])
                for fmt in ("array", "newline_delimited"):
                    group = [path for path, f in staged.items() if f.fmt == fmt]
                    if not group:
                        continue
                    self.con.execute(
                        f"""insert into bronze.raw_transaction_records
                            (_batch_id, _loaded_at, _source, _file_sha256, _record)
                        select ?, ?, l._name, l._sha, r._record
                        from ({self._select_records(group, fmt)}) r join _landed l on r._path = l._path""",
                        [batch_id, loaded_at],
                    )
            # _loaded_at is unique per chunk and grows with time, so DuckDB's zone maps skip every older
            # row group: this count costs the chunk's rows, not bronze's.
            by_sha = dict(
                self.con.execute(
                    "select _file_sha256, count(*) from bronze.raw_transaction_records"
                    " where _loaded_at = ? and _batch_id = ? group by 1",
                    [loaded_at, batch_id],
                ).fetchall()
            )
        finally:
            self.con.execute("drop table if exists _landed")
        return {str(f.path): by_sha.get(f.sha256, 0) for f in files}

    def load_json_lines(
        self, file: JsonFile, lines: Iterable[JsonLine], batch_id: str, loaded_at: datetime
    ) -> tuple[int, list[JsonLine]]:
        # The good lines go to a spool file that one INSERT … SELECT reads with DuckDB's streaming
        # reader: many small inserts in one transaction would hold every uncommitted row in memory
        # (830 MB for a 200 MB file, measured), one streaming insert writes row groups as it goes.
        # The spool holds transaction records: beside the warehouse (the state dir, 0700), never in /tmp. This
        # process holds the file's only write connection, so a spool of this warehouse found here is a dead run's.
        prefix = f"{self.path.name}.salvage-"
        for stale in self.path.parent.glob(f"{glob.escape(prefix)}*"):
            shutil.rmtree(stale, ignore_errors=True)
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=self.path.parent))
        try:
            spool = folder / "000000.jsonl"
            n = 0
            with spool.open("w", encoding="utf-8") as fh:
                for line in lines:
                    fh.write(line.text)
                    fh.write("\n")
                    n += 1
            if n == 0:
                return 0, []
            # Every line already parsed in Python (orjson: strict JSON, no NaN, depth <= 1024); should
            # DuckDB still refuse one, the statement fails and the caller sets the file aside whole.
            row = self.con.execute(
                f"""insert into bronze.raw_transaction_records (_batch_id, _loaded_at, _source, _file_sha256, _record)
                select ?, ?, ?, ?, _record from ({self._select_records([str(spool)], "newline_delimited")})""",
                [batch_id, loaded_at, file.name, file.sha256],
            ).fetchone()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return int(row[0]) if row else 0, []

    def json_file_error(self, path: Path, fmt: str) -> str | None:
        if fmt == "":
            return "not a JSON array or JSON Lines (first character is neither '[' nor '{')"
        with _staged([JsonFile(path, path.name, "", fmt)], self.path) as staged:
            try:
                self.con.execute(f"select count(*) from ({self._select_records(list(staged), fmt)})").fetchone()
            except duckdb.Error as exc:
                # DuckDB names the staged link; the reader knows the file by its own name.
                return str(exc).splitlines()[0].replace(next(iter(staged)), path.name)
        return None

    def ensure_schemas(self) -> None:
        with self.transaction():
            for schema in SCHEMAS:
                self.con.execute(f"create schema if not exists {schema}")
            self._migrate()
            for statement in DDL:
                self.con.execute(statement)

    def _migrate(self) -> None:
        # Warehouses made before bronze kept stream records whole had bronze.raw_transactions as a
        # table; move its records into raw_transaction_records so the view can take the name.
        kind = self.con.execute(
            "select table_type from information_schema.tables"
            " where table_schema = 'bronze' and table_name = 'raw_transactions'"
        ).fetchone()
        if kind is None or kind[0] != "BASE TABLE":
            return
        log.warning("migrating bronze.raw_transactions (table) to bronze.raw_transaction_records + view")
        self.con.execute(
            "create table if not exists bronze.raw_transaction_records as"
            " select _batch_id, _loaded_at, _source, _file_sha256, _record from bronze.raw_transactions"
        )
        self.con.execute("drop table bronze.raw_transactions")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
