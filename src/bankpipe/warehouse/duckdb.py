"""DuckDB file warehouse (the embedded default)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from bankpipe.errors import BankpipeError
from bankpipe.warehouse.base import SCHEMAS, JsonFile
from bankpipe.warehouse.ddl import DDL

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

# DuckDB lets one process write a file at a time. Steps are short and open the file only while
# they work, so a second process waits for its turn instead of failing at once.
LOCK_WAIT_S = 120.0


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + LOCK_WAIT_S
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise BankpipeError(f"cannot open warehouse {path}: {str(exc).splitlines()[0]}") from exc
            log.debug("warehouse %s busy, retrying in %.2fs", path, delay)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


class DuckDBWarehouse:
    """A DuckDB file; one connection per instance, opened on construction."""

    dialect = "duckdb"
    errors: tuple[type[BaseException], ...] = (duckdb.Error,)

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise BankpipeError(f"no warehouse at {self.path} yet (run: bankpipe run)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = _open(self.path, read_only)
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
    def _select_records(files: Sequence[JsonFile], fmt: str) -> str:
        paths = ", ".join("'" + str(f.path).replace("'", "''") + "'" for f in files)
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
        for f in files:
            self.con.execute("insert into _landed values (?, ?, ?)", [str(f.path), f.name, f.sha256])
        for fmt in ("array", "newline_delimited"):
            group = [f for f in files if f.fmt == fmt]
            if not group:
                continue
            self.con.execute(
                f"""insert into bronze.raw_transaction_records (_batch_id, _loaded_at, _source, _file_sha256, _record)
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
        self.con.execute("drop table _landed")
        return {str(f.path): by_sha.get(f.sha256, 0) for f in files}

    def json_file_error(self, path: Path, fmt: str) -> str | None:
        if fmt == "":
            return "not a JSON array or JSON Lines (first character is neither '[' nor '{')"
        try:
            self.con.execute(
                f"select count(*) from ({self._select_records([JsonFile(path, path.name, '', fmt)], fmt)})"
            ).fetchone()
        except duckdb.Error as exc:
            return str(exc).splitlines()[0]
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
