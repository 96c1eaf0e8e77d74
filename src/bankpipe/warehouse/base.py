"""What every warehouse implementation offers the stages (kept deliberately small)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMAS = ("bronze", "silver", "gold", "ops")


class Warehouse(Protocol):
    """A SQL warehouse connection; stages speak SQL through it, never to a driver directly."""

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None: ...

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]: ...

    def fetchone(self, sql: str, params: Sequence[Any] | None = None) -> tuple[Any, ...] | None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """All statements inside commit together or not at all."""
        ...

    def append_arrow(self, table: str, data: pa.Table) -> int:
        """Insert an Arrow table by column name; return the row count."""
        ...

    def table_exists(self, schema: str, table: str) -> bool: ...

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
