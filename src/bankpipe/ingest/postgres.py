"""PostgreSQL master data → bronze (full or incremental by an `updated_at` watermark).

Rows leave PostgreSQL through `COPY (SELECT …) TO STDOUT` into a spool file that the warehouse reads
in one pass (DuckDB `read_csv`; Snowflake PUT + COPY INTO); the bronze rows and the new watermark
commit in one warehouse transaction, so a crash at any point leaves either the old state or the
new one — never a skipped or doubled row.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

from bankpipe import ops
from bankpipe.settings import Settings
from bankpipe.source.db import connect as source_connect
from bankpipe.source.schema import COLUMNS, KEYS
from bankpipe.warehouse import Warehouse
from bankpipe.warehouse import connect as warehouse_connect
from bankpipe.warehouse.ddl import MASTER_TABLES

log = logging.getLogger(__name__)

Mode = Literal["incremental", "full"]
TABLES: tuple[str, ...] = tuple(MASTER_TABLES)


@dataclass
class TableLoad:
    table: str
    bronze_table: str
    mode: Mode
    extracted: int = 0
    appended: int = 0
    deleted: int = 0
    watermark: tuple[datetime | None, str | None] = (None, None)


@dataclass
class BatchResult:
    batch_id: str
    mode: Mode
    tables: list[TableLoad] = field(default_factory=list)

    @property
    def appended(self) -> int:
        return sum(t.appended + t.deleted for t in self.tables)


def get_watermark(wh: Warehouse, table: str) -> tuple[datetime | None, str | None]:
    """The last (updated_at, key) loaded for a source table, or (None, None) before the first load."""
    row = wh.fetchone(
        "select updated_at, key_value from ops.watermarks where source_table = ?"
        " order by advanced_at desc limit 1",
        [table],
    )
    return (row[0], row[1]) if row else (None, None)


def _open_transaction_horizon(conn: psycopg.Connection) -> datetime | None:
    # updated_at is the writer's transaction start time (now()), so a transaction still open while
    # we extract can later commit rows *older* than what we saw. The watermark must not pass the
    # start of the oldest open writing transaction, or those rows would be skipped for ever.
    row = conn.execute(
        "select min(xact_start) from pg_stat_activity"
        " where backend_xid is not null and pid <> pg_backend_pid() and datname = current_database()"
    ).fetchone()
    return row[0] if row else None


def _extract(
    conn: psycopg.Connection,
    table: str,
    mode: Mode,
    watermark: tuple[datetime | None, str | None],
    spool: Path,
) -> None:
    """COPY the rows to load (all of them, or those past the watermark) as CSV into `spool`."""
    key = KEYS[table]
    cols = [sql.SQL("{}::text").format(sql.Identifier(c)) for c in COLUMNS[table]]
    select = sql.SQL("select {cols}, created_at, updated_at from {t}").format(
        cols=sql.SQL(", ").join(cols), t=sql.Identifier(table)
    )
    if mode == "incremental" and watermark[0] is not None:
        select += sql.SQL(" where (updated_at, {k}) > ({ts}, {kv})").format(
            k=sql.Identifier(key), ts=sql.Literal(watermark[0]), kv=sql.Literal(watermark[1])
        )
    select += sql.SQL(" order by updated_at, {k}").format(k=sql.Identifier(key))
    copy = sql.SQL("copy ({}) to stdout (format csv)").format(select)
    with spool.open("wb") as out, conn.cursor().copy(copy) as cp:
        for chunk in cp:
            out.write(chunk)


def _load_table(
    wh: Warehouse,
    conn: psycopg.Connection,
    table: str,
    mode: Mode,
    batch_id: str,
    loaded_at: datetime,
    horizon: datetime | None,
    spool_dir: Path,
) -> TableLoad:
    bronze = f"bronze.{MASTER_TABLES[table]}"
    key = KEYS[table]
    cols = COLUMNS[table]
    result = TableLoad(table, bronze, mode)
    watermark = get_watermark(wh, table)
    spool = spool_dir / f"{table}.csv"
    _extract(conn, table, mode, watermark, spool)

    csv_columns = {c: "varchar" for c in cols} | {"_created_at": "timestamptz", "_updated_at": "timestamptz"}
    q = wh.ident
    quoted = ", ".join(q(c) for c in cols)
    changed = " or ".join(f"s.{q(c)} is distinct from c.{q(c)}" for c in cols if c != key)
    # The staging tables are built before the transaction: creating a table inside one would commit
    # it on Snowflake. They are session-temporary, so a crash leaves nothing behind.
    result.extracted = wh.stage_csv("_stage", spool, csv_columns)
    current = (
        f"select * from {bronze} where {key} in (select {key} from _stage)"
        if mode == "incremental"
        else f"select * from {bronze}"
    )
    wh.execute(
        f"create or replace temp table _current as select * from ({current})"
        f" qualify row_number() over (partition by {key} order by _loaded_at desc) = 1"
    )
    with wh.transaction():
        # Append only what differs from bronze's latest version: re-running a load (or a full load
        # over unchanged data) adds nothing, and a crash-then-retry cannot double a row.
        result.appended = _count(
            wh.fetchone(
                f"""insert into {bronze} ({LINEAGE}, {quoted})
            select ?, ?, ?, false, s._created_at, s._updated_at, {", ".join(f"s.{q(c)}" for c in cols)}
            from _stage s left join _current c on s.{key} = c.{key}
            where c.{key} is null or c._is_deleted or {changed}""",
                [batch_id, loaded_at, f"postgres:{table}"],
            )
        )
        if mode == "full":
            # A key bronze still holds as live but the source no longer has was deleted at the source.
            result.deleted = _count(
                wh.fetchone(
                    f"""insert into {bronze} ({LINEAGE}, {quoted})
                select ?, ?, ?, true, c._created_at, c._updated_at, {", ".join(f"c.{q(c)}" for c in cols)}
                from _current c
                where not c._is_deleted and not exists (select 1 from _stage s where s.{key} = c.{key})""",
                    [batch_id, loaded_at, f"postgres:{table}"],
                )
            )
        # Advance the watermark to the last row that is safe (see _open_transaction_horizon).
        safe = "" if horizon is None else " where _updated_at < ?"
        row = wh.fetchone(
            f"select _updated_at, {key} from _stage{safe} order by _updated_at desc, {key} desc limit 1",
            [] if horizon is None else [horizon],
        )
        if row is not None and (watermark[0] is None or (row[0], row[1]) > watermark):
            wh.execute(
                "insert into ops.watermarks values (?, ?, ?, ?, ?)",
                [table, row[0], row[1], batch_id, ops.now()],
            )
            result.watermark = (row[0], row[1])
        else:
            result.watermark = watermark
    wh.execute("drop table _stage")
    wh.execute("drop table _current")
    spool.unlink(missing_ok=True)
    return result


LINEAGE = "_batch_id, _loaded_at, _source, _is_deleted, _created_at, _updated_at"


def _count(row: tuple | None) -> int:
    """Rows affected, from the one-row result of an INSERT (DuckDB and Snowflake both return it)."""
    return int(row[0]) if row else 0


def run(settings: Settings, mode: Mode = "incremental", tables: tuple[str, ...] = TABLES) -> BatchResult:
    """Load the source tables into bronze; `full` also records rows deleted at the source."""
    batch_id = ops.new_batch_id(f"batch-{mode}")
    result = BatchResult(batch_id, mode)
    spool_dir = Path(tempfile.mkdtemp(prefix="spool-", dir=settings.state))
    try:
        with source_connect(settings) as conn:
            conn.execute("set timezone to 'UTC'")
            conn.commit()
            # One snapshot for all tables, so customers and their accounts are mutually consistent.
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.transaction():
                horizon = _open_transaction_horizon(conn)
                with (
                    warehouse_connect(settings) as wh,
                    ops.step(wh, f"ingest.batch.{mode}", batch_id) as step,
                ):
                    loaded_at = ops.now()
                    for table in tables:
                        load = _load_table(wh, conn, table, mode, batch_id, loaded_at, horizon, spool_dir)
                        log.info(
                            "%s → %s: %d extracted, %d appended, %d deletions",
                            table,
                            load.bronze_table,
                            load.extracted,
                            load.appended,
                            load.deleted,
                        )
                        result.tables.append(load)
                    step.rows_in = sum(t.extracted for t in result.tables)
                    step.rows_out = result.appended
                    step.details = {
                        t.table: {"extracted": t.extracted, "appended": t.appended, "deleted": t.deleted}
                        for t in result.tables
                    }
    finally:
        for leftover in spool_dir.glob("*"):
            leftover.unlink()
        os.rmdir(spool_dir)
    return result
