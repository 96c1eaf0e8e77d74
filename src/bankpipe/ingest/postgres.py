"""PostgreSQL master data → bronze (full, or incremental by the source's transaction ids).

Why transaction ids and not `updated_at`: `updated_at` is the writer's transaction *start* time
(`now()`), so a transaction that is open while we extract can commit, later, rows older than what
we saw. Guarding a timestamp watermark needs each open transaction's start time, which
`pg_stat_activity` hides from a reader without `pg_read_all_stats`, and a transaction that has not
written yet has no transaction id to notice at all. Every row, however, carries the id of the
transaction that wrote it (`xmin`), and any role can read its own snapshot's horizon
(`pg_current_snapshot()`): all transactions below its xmin have finished, and every transaction
still open — written yet or not, prepared for two-phase commit, of any age — will commit with an
id at or above it. So each run records that horizon, and the next one extracts the rows whose
`xmin` is at or above it. Nothing depends on clocks, privileges, transaction lengths, or writers
setting `updated_at`. Rows read twice (written between the horizon and the snapshot) are harmless:
only rows that differ from bronze's latest version are appended. The costs: a sequential scan per
table, as `xmin` cannot be indexed (2M rows, nothing changed: 0.42 s, against 1 ms for the old
`updated_at` index range); and the horizon is cluster-wide, so a long transaction in any database of
the server makes runs re-read what was written since it began — more reads, never fewer. A time
overlap window was rejected: it misses any writer older than the window and still needs the
privilege to see transaction ages. Where the horizon cannot be trusted (none yet, or the source's
id counter went backwards — a restored or replaced database) the run reads every row.

The horizon is kept in `ops.watermarks` as the row `<table>:xid` (key_value = the 64-bit id); the
row `<table>` still records the latest `(updated_at, key)` seen, for people.

All tables are extracted in one `REPEATABLE READ` snapshot into spool files, and only then loaded:
bronze rows and horizons of every table commit in one warehouse transaction, so a crash or a lost
source at any point leaves either the old state or the new one — never a skipped or doubled row.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

from bankpipe import ops
from bankpipe.errors import SourceError
from bankpipe.settings import Settings
from bankpipe.source.db import connect as source_connect
from bankpipe.source.db import redact
from bankpipe.source.schema import COLUMNS, KEYS
from bankpipe.warehouse import Warehouse
from bankpipe.warehouse import connect as warehouse_connect
from bankpipe.warehouse.ddl import MASTER_TABLES

log = logging.getLogger(__name__)

Mode = Literal["incremental", "full"]
TABLES: tuple[str, ...] = tuple(MASTER_TABLES)
XID_SUFFIX = ":xid"
# A row's xmin is 32 bits; horizons are 64 (epoch + xid). Ids further apart than 2^31 cannot be
# ordered from 32 bits (PostgreSQL's own wraparound limit), so such a horizon means: read all.
_XID_SPAN = 2**32
_MAX_SPAN = 2**31


@dataclass
class TableLoad:
    table: str
    bronze_table: str
    mode: Mode
    extracted: int = 0
    appended: int = 0
    deleted: int = 0
    watermark: tuple[datetime | None, str | None] = (None, None)
    horizon: int | None = None


@dataclass
class BatchResult:
    batch_id: str
    mode: Mode
    tables: list[TableLoad] = field(default_factory=list)

    @property
    def appended(self) -> int:
        return sum(t.appended + t.deleted for t in self.tables)


@dataclass(frozen=True)
class Snapshot:
    """The extract's snapshot: transactions below `xmin` have ended; ids from `xmax` on are unassigned."""

    xmin: int
    xmax: int


def get_watermark(wh: Warehouse, table: str) -> tuple[datetime | None, str | None]:
    """The latest (updated_at, key) loaded for a source table, or (None, None) before the first load."""
    row = wh.fetchone(
        "select updated_at, key_value from ops.watermarks where source_table = ? order by advanced_at desc limit 1",
        [table],
    )
    return (row[0], row[1]) if row else (None, None)


def get_horizon(wh: Warehouse, table: str) -> int | None:
    """The source transaction id from which the next incremental load of `table` reads, if any."""
    row = wh.fetchone(
        "select key_value from ops.watermarks where source_table = ? order by advanced_at desc limit 1",
        [table + XID_SUFFIX],
    )
    return int(row[0]) if row and row[0] is not None else None


def _snapshot(conn: psycopg.Connection) -> Snapshot:
    """The horizon of the transaction's snapshot (first statement of a REPEATABLE READ transaction)."""
    # pg_current_snapshot() is PostgreSQL 13+; the txid_* spelling also serves 12. Both are
    # granted to PUBLIC: no privilege beyond CONNECT is needed.
    query = (
        "select pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint from pg_current_snapshot() s"
        if conn.info.server_version >= 130000
        else "select txid_snapshot_xmin(s), txid_snapshot_xmax(s) from txid_current_snapshot() s"
    )
    row = conn.execute(query).fetchone()
    assert row is not None
    return Snapshot(int(row[0]), int(row[1]))


def _since(table: str, horizon: int | None, snap: Snapshot) -> sql.Composable | None:
    """A filter for the rows written by transactions at or above `horizon`; None means every row."""
    if horizon is None:
        return None
    if horizon > snap.xmax:
        log.warning(
            "%s: the source's transaction ids went backwards (horizon %d, now %d): a restored or replaced"
            " database; reading every row",
            table,
            horizon,
            snap.xmax,
        )
        return None
    span = snap.xmax - horizon
    if span >= _MAX_SPAN:
        log.warning("%s: more than 2^31 source transactions since the last load; reading every row", table)
        return None
    # How many ids before the snapshot's xmax a row was written: 1 … span means at or after horizon.
    return sql.SQL("({xmax} - xmin::text::bigint + {wrap}) % {wrap} between 1 and {span}").format(
        xmax=sql.Literal(snap.xmax % _XID_SPAN), wrap=sql.Literal(_XID_SPAN), span=sql.Literal(span)
    )


def _extract(conn: psycopg.Connection, table: str, since: sql.Composable | None, spool: Path) -> None:
    """COPY the rows to load (all of them, or those written since the horizon) as CSV into `spool`."""
    cols = [sql.SQL("{}::text").format(sql.Identifier(c)) for c in COLUMNS[table]]
    select = sql.SQL("select {cols}, created_at, updated_at from {t}").format(
        cols=sql.SQL(", ").join(cols), t=sql.Identifier(table)
    )
    if since is not None:
        select += sql.SQL(" where ") + since
    copy = sql.SQL("copy ({}) to stdout (format csv)").format(select)
    with spool.open("wb") as out, conn.cursor().copy(copy) as cp:
        for chunk in cp:
            out.write(chunk)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(text.splitlines()[0]) if text else type(exc).__name__


def _source_name(settings: Settings) -> str:
    if settings.source_url is None:
        return f"the embedded source database ({settings.pgdata})"
    return f"the source database {redact(settings.source_url.get_secret_value())}"


def _extract_all(
    settings: Settings, tables: Sequence[str], mode: Mode, horizons: dict[str, int | None], spool_dir: Path
) -> Snapshot:
    """Spool every table from one snapshot; a lost or failing source becomes one SourceError line."""
    table = None
    try:
        with source_connect(settings) as conn:
            conn.execute("set timezone to 'UTC'")
            conn.commit()
            # One snapshot for all tables, so customers and their accounts are mutually consistent.
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.transaction():
                snap = _snapshot(conn)
                for table in tables:
                    since = _since(table, horizons[table], snap) if mode == "incremental" else None
                    _extract(conn, table, since, spool_dir / f"{table}.csv")
                    table = None
    except psycopg.Error as exc:
        where = f" while extracting table {table}" if table else ""
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            # PostgreSQL's message names the object ("permission denied for table customer").
            raise SourceError(
                f"{_source_name(settings)}: the reader role is refused{where}: {_first_line(exc)}"
            ) from exc
        raise SourceError(f"{_source_name(settings)} failed{where}: {_first_line(exc)}") from exc
    return snap


def _stage_table(wh: Warehouse, table: str, mode: Mode, spool: Path) -> TableLoad:
    """Load one spool file into `_stage_<table>` and bronze's latest versions into `_current_<table>`."""
    bronze = f"bronze.{MASTER_TABLES[table]}"
    key, cols = KEYS[table], COLUMNS[table]
    result = TableLoad(table, bronze, mode)
    csv_columns = {c: "varchar" for c in cols} | {"_created_at": "timestamptz", "_updated_at": "timestamptz"}
    # The staging tables are built before the transaction: creating a table inside one would commit
    # it on Snowflake. They are session-temporary, so a crash leaves nothing behind.
    result.extracted = wh.stage_csv(f"_stage_{table}", spool, csv_columns)
    current = (
        f"select * from {bronze} where {key} in (select {key} from _stage_{table})"
        if mode == "incremental"
        else f"select * from {bronze}"
    )
    wh.execute(
        f"create or replace temp table _current_{table} as select * from ({current})"
        f" qualify row_number() over (partition by {key} order by _loaded_at desc) = 1"
    )
    return result


def _apply(wh: Warehouse, load: TableLoad, batch_id: str, loaded_at: datetime, snap: Snapshot) -> None:
    """Append what differs from bronze (and, when full, the deletions); advance the watermarks."""
    table, bronze = load.table, load.bronze_table
    key, cols = KEYS[table], COLUMNS[table]
    stage, current = f"_stage_{table}", f"_current_{table}"
    q = wh.ident
    quoted = ", ".join(q(c) for c in cols)
    changed = " or ".join(f"s.{q(c)} is distinct from c.{q(c)}" for c in cols if c != key)
    # Append only what differs from bronze's latest version: re-reading a row (a full load, or a
    # row written between the last horizon and its snapshot) adds nothing, nor does a retry.
    load.appended = _count(
        wh.fetchone(
            f"""insert into {bronze} ({LINEAGE}, {quoted})
        select ?, ?, ?, false, s._created_at, s._updated_at, {", ".join(f"s.{q(c)}" for c in cols)}
        from {stage} s left join {current} c on s.{key} = c.{key}
        where c.{key} is null or c._is_deleted or {changed}""",
            [batch_id, loaded_at, f"postgres:{table}"],
        )
    )
    if load.mode == "full":
        # A key bronze still holds as live but the source no longer has was deleted at the source.
        load.deleted = _count(
            wh.fetchone(
                f"""insert into {bronze} ({LINEAGE}, {quoted})
            select ?, ?, ?, true, c._created_at, c._updated_at, {", ".join(f"c.{q(c)}" for c in cols)}
            from {current} c
            where not c._is_deleted and not exists (select 1 from {stage} s where s.{key} = c.{key})""",
                [batch_id, loaded_at, f"postgres:{table}"],
            )
        )
    now = ops.now()
    old = get_watermark(wh, table)
    row = wh.fetchone(f"select _updated_at, {key} from {stage} order by _updated_at desc, {key} desc limit 1")
    if row is not None and (old[0] is None or (row[0], row[1]) > old):
        wh.execute("insert into ops.watermarks values (?, ?, ?, ?, ?)", [table, row[0], row[1], batch_id, now])
        old = (row[0], row[1])
    load.watermark = old
    if get_horizon(wh, table) != snap.xmin:
        wh.execute(
            "insert into ops.watermarks values (?, null, ?, ?, ?)",
            [table + XID_SUFFIX, str(snap.xmin), batch_id, now],
        )
    load.horizon = snap.xmin


LINEAGE = "_batch_id, _loaded_at, _source, _is_deleted, _created_at, _updated_at"


def _count(row: tuple | None) -> int:
    """Rows affected, from the one-row result of an INSERT (DuckDB and Snowflake both return it)."""
    return int(row[0]) if row else 0


_SPOOL_PREFIX = "spool-"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())


def _spool_owner() -> str:
    # Host and pid name the process that owns a spool dir, so a later run can tell a dead run's
    # leftovers from a concurrent run's live files.
    return f"{_host()}.{os.getpid()}"


def clean_spools(state: Path) -> list[Path]:
    """Remove spool dirs left by killed runs on this host (owner process gone); return them."""
    host = _host()
    removed = []
    for path in state.glob(_SPOOL_PREFIX + "*"):
        m = re.fullmatch(rf"{_SPOOL_PREFIX}(?:(.+)\.(\d+)-)?[^/]*", path.name)
        if not path.is_dir() or m is None:
            continue
        if m.group(1) is not None and (m.group(1) != host or _alive(int(m.group(2)))):
            continue  # another host's (cannot tell) or a live run's
        # A spool without an owner comes from a bankpipe that did not name one: before this, a
        # run always removed its spool, so one left behind is a killed run's.
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        log.info("removed %d spool dir(s) left by killed runs", len(removed))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def run(settings: Settings, mode: Mode = "incremental", tables: tuple[str, ...] = TABLES) -> BatchResult:
    """Load the source tables into bronze; `full` also records rows deleted at the source."""
    batch_id = ops.new_batch_id(f"batch-{mode}")
    result = BatchResult(batch_id, mode)
    clean_spools(settings.state)
    spool_dir = Path(tempfile.mkdtemp(prefix=f"{_SPOOL_PREFIX}{_spool_owner()}-", dir=settings.state))
    try:
        with warehouse_connect(settings) as wh, ops.step(wh, f"ingest.batch.{mode}", batch_id) as step:
            horizons = {t: get_horizon(wh, t) for t in tables} if mode == "incremental" else {}
            snap = _extract_all(settings, tables, mode, horizons, spool_dir)
            loaded_at = ops.now()
            result.tables = [_stage_table(wh, t, mode, spool_dir / f"{t}.csv") for t in tables]
            with wh.transaction():
                for load in result.tables:
                    _apply(wh, load, batch_id, loaded_at, snap)
            for load in result.tables:
                wh.execute(f"drop table _stage_{load.table}")
                wh.execute(f"drop table _current_{load.table}")
                log.info(
                    "%s → %s: %d extracted, %d appended, %d deletions",
                    load.table,
                    load.bronze_table,
                    load.extracted,
                    load.appended,
                    load.deleted,
                )
            step.rows_in = sum(t.extracted for t in result.tables)
            step.rows_out = result.appended
            step.details = {
                t.table: {"extracted": t.extracted, "appended": t.appended, "deleted": t.deleted} for t in result.tables
            }
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)
    return result
