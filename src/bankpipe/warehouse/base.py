"""What every warehouse implementation offers the stages (kept deliberately small)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMAS = ("bronze", "silver", "gold", "ops")


class JsonFile(NamedTuple):
    """A landed transaction file, already identified: what a bulk JSON load needs to know."""

    path: Path
    name: str
    sha256: str
    fmt: str  # "array" | "newline_delimited"


class JsonLine(NamedTuple):
    """One line of a JSON Lines file that parsed in Python: where it is and its text."""

    number: int  # 1-based line number in the file
    offset: int  # byte offset of the line's first byte in the file
    text: str


class Warehouse(Protocol):
    """A SQL warehouse connection; stages speak SQL through it, never to a driver directly.

    Bulk loads (a CSV spool, landed JSON files) are methods, because each warehouse reads files its
    own way (DuckDB reads the path; Snowflake needs PUT to a stage, then COPY INTO).
    """

    dialect: str
    # The driver's exception types (what a failed statement or an unreadable file raises).
    errors: tuple[type[BaseException], ...]
    # Among them, the errors of the moment (I/O, connection, service): a step meeting one fails and is
    # retried; it never sets a file aside as bad.
    transient_errors: tuple[type[BaseException], ...]

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None: ...

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]: ...

    def fetchone(self, sql: str, params: Sequence[Any] | None = None) -> tuple[Any, ...] | None: ...

    def fetch_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """A query's result as an Arrow table (columnar transfer, no row-by-row Python)."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """All statements inside commit together or not at all."""
        ...

    def append_arrow(self, table: str, data: pa.Table) -> int:
        """Insert an Arrow table by column name; return the row count."""
        ...

    def table_exists(self, schema: str, table: str) -> bool: ...

    def ident(self, name: str) -> str:
        """A column name quoted the way this warehouse stores unquoted names."""
        ...

    def stage_csv(self, name: str, path: Path, columns: dict[str, str]) -> int:
        """Load a headerless PostgreSQL CSV (types `varchar`/`timestamptz`) into temp table `name`.

        Returns the row count. Call it outside a transaction (it creates a table).
        """
        ...

    def load_json_files(self, files: Sequence[JsonFile], batch_id: str, loaded_at: datetime) -> dict[str, int]:
        """Append the records of `files` whole to bronze.raw_transaction_records; rows per path.

        Each path is read literally (never as a glob pattern). Raises one of `errors` when any file
        does not parse; the caller then finds which, file by file.
        """
        ...

    def load_json_lines(
        self, file: JsonFile, lines: Iterable[JsonLine], batch_id: str, loaded_at: datetime
    ) -> tuple[int, list[JsonLine]]:
        """Append the lines of one JSON Lines file that parsed in Python (the salvage path); rows, lines refused.

        A warehouse that can tell which line its own parser refuses returns those lines (not
        loaded); one that cannot raises one of `errors` instead, and the file is set aside whole.
        """
        ...

    def json_file_error(self, path: Path, fmt: str) -> str | None:
        """Why this file cannot be loaded (one line), or None when it can."""
        ...

    def ensure_schemas(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Warehouse: ...

    def __exit__(self, *exc: object) -> None: ...


def iter_batches(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    """Group an iterator of rows into lists of at most `size`."""
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
