"""Run log, batch ids, status and freshness (the `ops` schema)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bankpipe.errors import BankpipeError
from bankpipe.redact import redact
from bankpipe.warehouse import Warehouse

log = logging.getLogger(__name__)


def now() -> datetime:
    return datetime.now(UTC)


def new_batch_id(prefix: str) -> str:
    """A sortable, unique batch id such as `stream-20261127T031500-1a2b3c4d`."""
    return f"{prefix}-{now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


@dataclass
class StepRun:
    run_id: str
    step: str
    rows_in: int = 0
    rows_out: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@contextmanager
def step(wh: Warehouse, name: str, run_id: str | None = None) -> Iterator[StepRun]:
    """Record one pipeline step in `ops.run_log`: a `running` row now, `success`/`failed` at the end.

    A process killed mid-step leaves `running` behind; `bankpipe status` shows it as `interrupted`
    once a later run of the same step has started.
    """
    run = StepRun(run_id=run_id or new_batch_id(name.replace(" ", "_")), step=name)
    started = now()
    wh.execute(
        "insert into ops.run_log (run_id, step, started_at, status) values (?, ?, ?, 'running')",
        [run.run_id, name, started],
    )
    status, error = "success", None
    try:
        yield run
    except BaseException as exc:
        # Redacted: the run log is read by people (status, dashboard) and may quote a conninfo or a URL.
        status, error = "failed", redact(f"{type(exc).__name__}: {exc}")[:2000]
        raise
    finally:
        wh.execute(
            "update ops.run_log set ended_at = ?, rows_in = ?, rows_out = ?, status = ?, error = ?, details = ?"
            " where run_id = ? and step = ?",
            [now(), run.rows_in, run.rows_out, status, error, json.dumps(run.details, default=str), run.run_id, name],
        )


# Freshness is judged per source from what bronze holds, not from the run log: a run that loaded
# nothing new does not make the data fresher.
SOURCE_TABLES: dict[str, list[str]] = {
    "postgres": ["raw_locations", "raw_banks", "raw_customers", "raw_accounts", "raw_fraud_cases"],
    "stream": ["raw_transactions"],
    "fx": ["raw_exchange_rates"],
}


def bronze_loads(wh: Warehouse) -> dict[str, tuple[int, Any]]:
    """Rows and latest `_loaded_at` of each bronze source table, in one query."""
    tables = [t for names in SOURCE_TABLES.values() for t in names]
    sql = " union all ".join(f"select '{t}', count(*), max(_loaded_at) from bronze.{t}" for t in tables)
    return {str(name): (int(n), latest) for name, n, latest in wh.fetchall(sql)}


def status(wh: Warehouse) -> dict[str, Any]:
    """Rows per layer table, last load per source, rejected files, and the last runs.

    Table keys are `schema.table` in lower case on every warehouse (Snowflake stores names upper-case).
    """
    if not wh.table_exists("ops", "run_log"):  # a first step killed between creating the file and its schemas
        raise BankpipeError("the warehouse has no tables yet (run: bankpipe run)")
    tables = wh.fetchall(
        "select table_schema, table_name from information_schema.tables"
        " where lower(table_schema) in ('bronze', 'silver', 'gold', 'ops') order by 1, 2"
    )
    counts: dict[str, int] = {}
    if tables:
        # one round trip, not one per table (a Snowflake session pays latency per statement)
        sql = " union all ".join(
            f"select '{schema.lower()}.{name.lower()}', count(*) from {schema}.\"{name}\"" for schema, name in tables
        )
        counts = dict(sorted((str(key), int(n)) for key, n in wh.fetchall(sql)))
    loads = bronze_loads(wh)
    sources = {}
    for source, names in SOURCE_TABLES.items():
        last = [loads[n][1] for n in names if loads[n][1] is not None]
        latest = max(last) if last else None
        sources[source] = {
            "last_loaded_at": latest.isoformat() if latest else None,
            "age_hours": round((now() - latest).total_seconds() / 3600, 2) if latest else None,
        }
    runs = [
        dict(zip(("step", "started_at", "ended_at", "rows_in", "rows_out", "status", "error"), row, strict=True))
        for row in wh.fetchall(
            # A `running` row with a later run of the same step was killed (SIGKILL, OOM): say so.
            "select step, started_at, ended_at, rows_in, rows_out, case when status = 'running' and"
            " started_at < max(started_at) over (partition by step) then 'interrupted' else status end, error"
            " from ops.run_log order by started_at desc limit 10"
        )
    ]
    return {
        "tables": counts,
        "sources": sources,
        "rejected_files": wh.fetchone("select count(*) from ops.rejected_files")[0],
        **stream_issues(wh),
        **record_issues(wh),
        "last_runs": runs,
    }


def record_issues(wh: Warehouse) -> dict[str, Any]:
    """Silver's verdicts per rule: records rejected (`silver.rejected_records`) and kept but flagged."""
    out: dict[str, Any] = {"rejected_records": [], "flagged_records": []}
    # Before the first transform (or on a warehouse from before issue 13) the tables do not exist yet.
    for key, table, column in (
        ("rejected_records", "rejected_records", "rule"),
        ("flagged_records", "flagged_records", "flag"),
    ):
        if wh.table_exists("silver", table):
            out[key] = _records(
                wh.fetchall(
                    f"select entity, {column}, count(*) from silver.{table} group by 1, 2 order by 3 desc, 1, 2"
                ),
                ("entity", column, "records"),
            )
    return out


def _records(rows: list[tuple[Any, ...]], names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in zip(names, row, strict=True)} for row in rows
    ]


def stream_issues(wh: Warehouse, limit: int = 20) -> dict[str, Any]:
    """What the stream ingest could not load whole: latest rejected files, open partial files, rejected lines."""
    out: dict[str, Any] = {
        "rejected_files_latest": _records(
            wh.fetchall(
                "select file_name, reason, quarantine_path, rejected_at from ops.rejected_files"
                f" order by rejected_at desc, file_name limit {int(limit)}"
            ),
            ("file_name", "reason", "quarantine_path", "rejected_at"),
        ),
        "partial_files": [],
        "rejected_lines": 0,
        "rejected_lines_by_file": [],
    }
    if not wh.table_exists("ops", "rejected_lines"):  # a warehouse made before issue 13, opened read-only
        return out
    # A partial file is open until a later version of the same name loaded (or matched loaded bytes).
    out["partial_files"] = _records(
        wh.fetchall(
            "select p.file_name, p.detail, p.size_bytes, p.ingested_at from ops.ingested_files p"
            " where p.status = 'partial' and not exists (select 1 from ops.ingested_files l"
            " where l.file_name = p.file_name and l.ingested_at > p.ingested_at)"
            f" order by p.ingested_at desc, p.file_name limit {int(limit)}"
        ),
        ("file_name", "detail", "size_bytes", "recorded_at"),
    )
    out["rejected_lines"] = int(wh.fetchone("select count(*) from ops.rejected_lines")[0])
    out["rejected_lines_by_file"] = _records(
        wh.fetchall(
            "select file_name, count(*) as lines, min(line_number) as first_line,"
            " min_by(reason, line_number) as first_reason, max(rejected_at) as rejected_at"
            " from ops.rejected_lines group by file_name"
            f" order by max(rejected_at) desc, file_name limit {int(limit)}"
        ),
        ("file_name", "lines", "first_line", "first_reason", "rejected_at"),
    )
    return out
