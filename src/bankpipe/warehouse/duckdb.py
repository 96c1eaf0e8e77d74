"""DuckDB file warehouse (the embedded default)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from bankpipe.errors import BankpipeError
from bankpipe.warehouse.base import SCHEMAS
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

    def ensure_schemas(self) -> None:
        with self.transaction():
            for schema in SCHEMAS:
                self.con.execute(f"create schema if not exists {schema}")
            for statement in DDL:
                self.con.execute(statement)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
