"""The one interface to the warehouse (DuckDB file by default; Snowflake fills the same shape)."""

from __future__ import annotations

from bankpipe.settings import Settings
from bankpipe.warehouse.base import Warehouse
from bankpipe.warehouse.duckdb import DuckDBWarehouse


def connect(settings: Settings, *, read_only: bool = False) -> Warehouse:
    """Open the configured warehouse with the bronze/silver/gold/ops schemas in place."""
    if settings.warehouse == "duckdb":
        wh = DuckDBWarehouse(settings.warehouse_file, read_only=read_only)
        if not read_only:
            wh.ensure_schemas()
        return wh
    from bankpipe.errors import BankpipeError

    raise BankpipeError(f"warehouse {settings.warehouse!r} is not implemented yet (use BANKPIPE_WAREHOUSE=duckdb)")


__all__ = ["DuckDBWarehouse", "Warehouse", "connect"]
