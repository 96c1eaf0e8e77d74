"""The one interface to the warehouse (DuckDB file by default; Snowflake fills the same shape)."""

from __future__ import annotations

from bankpipe.settings import Settings
from bankpipe.warehouse.base import Warehouse
from bankpipe.warehouse.duckdb import DuckDBWarehouse, resources


def connect(settings: Settings, *, read_only: bool = False, lock_wait_s: float | None = None) -> Warehouse:
    """Open the configured warehouse with the bronze/silver/gold/ops schemas in place.

    `lock_wait_s` overrides BANKPIPE_WAREHOUSE_LOCK_WAIT_S (a dashboard waits less than a pipeline step).
    """
    if settings.warehouse == "snowflake":
        # Imported here: the connector is only needed (and only imported) on Snowflake deployments.
        from bankpipe.warehouse.snowflake import SnowflakeWarehouse

        sf = SnowflakeWarehouse.from_settings(settings)
        # Read-only access on Snowflake is the role's business; the schemas are made idempotently
        # (creating them needs a role that may, see docs/deploy.md — a read-only role skips this).
        if not read_only:
            sf.ensure_schemas()
        else:
            sf.execute(f"use database {settings.snowflake_database}")
        return sf
    wait = settings.warehouse_lock_wait_s if lock_wait_s is None else lock_wait_s
    wh = DuckDBWarehouse(settings.warehouse_file, read_only=read_only, lock_wait_s=wait, config=resources(settings))
    if not read_only:
        wh.ensure_schemas()
    return wh


__all__ = ["DuckDBWarehouse", "Warehouse", "connect"]
