"""What every bankpipe DAG shares: assets, default task arguments, settings from Airflow, the failure hook.

Kept light on purpose: the DAG processor imports this module on every parse, so bankpipe's stage
modules (and psycopg, DuckDB, dbt) are imported inside the functions that run in tasks, never here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import pendulum
from airflow.sdk import Asset, AssetAll, AssetAny, Variable

if TYPE_CHECKING:
    from airflow.sdk import Connection, Context

    from bankpipe.settings import Settings

log = logging.getLogger(__name__)

OWNER = "bankpipe-data-eng"
# The bank's clock: schedules are read in Western Indonesian Time (UTC+7, no daylight saving).
TZ = "Asia/Jakarta"
START = pendulum.datetime(2025, 1, 1, tz=TZ)
TAGS = ["bankpipe"]

# An Airflow Connection (conn type postgres) that, when defined, is the source database.
SOURCE_CONN_ID = "bankpipe_source"
# DuckDB allows one writing process per file, and every task writes the warehouse: a one-slot pool
# queues them in the scheduler instead of letting them fail on the file lock and burn retries.
# With Snowflake the slots can be raised without touching the DAGs.
WAREHOUSE_POOL = "bankpipe_warehouse"

# --- assets: what each DAG updates, and what the downstream DAGs wait for ----------------------
# The URIs name layers, not files: the same DAGs run against DuckDB or Snowflake.
BRONZE_MASTER = Asset(
    name="bankpipe.bronze.master_data",
    uri="bankpipe://warehouse/bronze/master_data",
    group="bronze",
    extra={"tables": ["raw_locations", "raw_banks", "raw_customers", "raw_accounts", "raw_fraud_cases"]},
)
BRONZE_TRANSACTIONS = Asset(
    name="bankpipe.bronze.raw_transactions",
    uri="bankpipe://warehouse/bronze/raw_transactions",
    group="bronze",
)
BRONZE_FX = Asset(
    name="bankpipe.bronze.raw_exchange_rates",
    uri="bankpipe://warehouse/bronze/raw_exchange_rates",
    group="bronze",
)
GOLD = Asset(name="bankpipe.gold", uri="bankpipe://warehouse/gold", group="gold")

BRONZE_ASSETS = (BRONZE_MASTER, BRONZE_TRANSACTIONS, BRONZE_FX)

# Schedules that operators may change without a deploy, as Airflow Variables (or their
# AIRFLOW_VAR_<NAME> environment form, which is read without touching the metadata database).
STREAM_SCHEDULE_VAR = "bankpipe_stream_schedule"
STREAM_SCHEDULE_DEFAULT = "*/5 * * * *"
TRANSFORM_TRIGGER_VAR = "bankpipe_transform_trigger"

# Which weekday `01_ingest_batch_data` runs the full reconcile (Monday = 0): Sunday, when the
# source is quiet and a full scan of the master tables hurts no one.
FULL_RECONCILE_WEEKDAY = 6


def variable(key: str, default: str) -> str:
    """An Airflow Variable read at parse time, `default` when it is not set."""
    # default=None, not `default`: Airflow registers a non-empty default as a secret to mask (and
    # warns on every parse when it is short).
    value = Variable.get(key, default=None)
    text = "" if value is None else str(value).strip()
    return text or default


def transform_schedule() -> AssetAll | AssetAny:
    """When `03_transform_dbt` runs: once all three bronze assets were updated (`all`), or on any update (`any`).

    `all` (the default) gives one gold rebuild a day, after the batch and FX loads, with the stream
    rows that arrived meanwhile; `any` rebuilds after every 5-minute stream load.
    """
    mode = variable(TRANSFORM_TRIGGER_VAR, "all").lower()
    if mode not in ("all", "any"):
        raise ValueError(f"Airflow Variable {TRANSFORM_TRIGGER_VAR} must be 'all' or 'any', not {mode!r}")
    return AssetAll(*BRONZE_ASSETS) if mode == "all" else AssetAny(*BRONZE_ASSETS)


def default_args(
    *,
    retries: int,
    retry_delay: timedelta,
    max_retry_delay: timedelta,
    execution_timeout: timedelta,
) -> dict[str, Any]:
    """Task defaults: owner, retries with exponential backoff, a timeout, the warehouse pool, the failure hook."""
    return {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": True,
        "max_retry_delay": max_retry_delay,
        "execution_timeout": execution_timeout,
        "pool": WAREHOUSE_POOL,
        "on_failure_callback": record_failure,
    }


# --- settings: Airflow's connection store feeds the one Settings object ------------------------

# libpq parameters a Connection's `extra` may carry; anything else there (hook options such as
# `cursor`) is for Airflow's PostgresHook and would make libpq refuse the conninfo.
_LIBPQ_EXTRAS = frozenset(
    {
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslcrl",
        "connect_timeout",
        "application_name",
        "options",
        "target_session_attrs",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
    }
)


def conninfo_from_connection(conn: Connection) -> str:
    """A libpq conninfo (`host=… dbname=…`) from an Airflow postgres Connection; `schema` is the database."""
    from psycopg.conninfo import make_conninfo

    if conn.conn_type not in ("postgres", "postgresql"):
        raise ValueError(f"Airflow connection {conn.conn_id!r} has type {conn.conn_type!r}; expected 'postgres'")
    params: dict[str, Any] = {
        "host": conn.host,
        "port": conn.port,
        "user": conn.login,
        "password": conn.password,
        "dbname": conn.schema,
    }
    params |= {k: v for k, v in conn.extra_dejson.items() if k in _LIBPQ_EXTRAS}
    return make_conninfo(**{k: str(v) for k, v in params.items() if v not in (None, "")})


def source_conninfo() -> str | None:
    """The conninfo of the `bankpipe_source` Connection, or None when it is not defined."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.sdk import Connection
    from airflow.sdk.log import mask_secret

    try:
        conn = Connection.get(SOURCE_CONN_ID)
    except AirflowNotFoundException:
        return None
    conninfo = conninfo_from_connection(conn)
    # Airflow masks the password itself; masking the whole string too keeps it out of task logs
    # even if a library prints the conninfo verbatim.
    # (No `name=`: with a name Airflow masks only values of keys that look sensitive.)
    mask_secret(conninfo)
    return conninfo


def settings() -> Settings:
    """`get_settings()`, with the source database taken from the `bankpipe_source` Connection when it exists.

    Copied rather than exported to the environment: `dag.test()` runs tasks in one process and the
    override must not leak into the next task or test.
    """
    from pydantic import SecretStr

    from bankpipe.settings import PRIVATE_UMASK, get_settings

    # Every task starts here: what it writes under the state dir holds customer data, so files 0600 and
    # folders 0700, as the `bankpipe` CLI makes them (the task runs in its own process; Airflow's logs are not
    # written by it). The state dir itself is made or tightened to 0700 by Settings.state.
    os.umask(PRIVATE_UMASK)
    base = get_settings()
    conninfo = source_conninfo()
    if conninfo is None:
        return base
    log.info("source database: Airflow connection %r", SOURCE_CONN_ID)
    return base.model_copy(update={"source_url": SecretStr(conninfo)})


# --- small helpers the tasks use ----------------------------------------------------------------

BatchMode = Literal["incremental", "full"]


def batch_mode(run_after: datetime, requested: str = "auto") -> BatchMode:
    """`full` or `incremental`: as requested, or with `auto` full on the reconcile weekday (Jakarta time)."""
    if requested in ("incremental", "full"):
        return requested  # type: ignore[return-value]
    if requested != "auto":
        raise ValueError(f"mode must be auto, incremental or full, not {requested!r}")
    local = pendulum.instance(run_after).in_timezone(TZ)
    return "full" if local.weekday() == FULL_RECONCILE_WEEKDAY else "incremental"


def day(value: str | None) -> date | None:
    """A `YYYY-MM-DD` DAG param as a date (None or empty: not given)."""
    return date.fromisoformat(value) if value else None


def digest(result: Any) -> dict[str, Any]:
    """A small JSON-safe view of a stage's result for XCom: scalars as they are, lists as counts."""
    if callable(getattr(result, "summary", None)):
        return result.summary()
    out: dict[str, Any] = {}
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        # Lists can hold thousands of file names on a backlog; the run log keeps the detail.
        out[f.name] = len(value) if isinstance(value, list | tuple) else value
    for prop in ("rows", "appended", "source"):
        if prop not in out and hasattr(result, prop):
            out[prop] = getattr(result, prop)
    return json.loads(json.dumps(out, default=str))


# --- failure hook ---------------------------------------------------------------------------------


def failure_row(context: Context, ended_at: datetime) -> list[Any]:
    """The `ops.run_log` values (run_id, step, started_at, ended_at, error, details) for a failed task."""
    from bankpipe.source.db import redact

    ti = context["ti"]
    exc = context.get("exception")
    error = f"{type(exc).__name__}: {exc}" if exc is not None else "task failed (no exception recorded)"
    # The exception text may quote a conninfo; the run log is read by people without Airflow's masking.
    error = redact(error)[:2000]
    run_id = context.get("run_id") or "manual"
    details = {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "airflow_run_id": run_id,
        "try_number": ti.try_number,
    }
    return [
        f"airflow-{ti.dag_id}-{ti.task_id}-{run_id}-try{ti.try_number}",
        f"airflow.{ti.dag_id}.{ti.task_id}",
        getattr(ti, "start_date", None) or ended_at,
        ended_at,
        error,
        json.dumps(details),
    ]


def record_failure(context: Context) -> None:
    """on_failure_callback: a `failed` row in `ops.run_log`, so `bankpipe status` shows what Airflow saw.

    The stages log their own steps; this row also covers what fails before a step starts (source
    unreachable, timeouts, a killed worker). It never raises: the task's own error is what matters.
    """
    try:
        from bankpipe import ops
        from bankpipe.settings import get_settings
        from bankpipe.warehouse import connect

        with connect(get_settings()) as wh:
            wh.execute(
                "insert into ops.run_log (run_id, step, started_at, ended_at, status, error, details)"
                " values (?, ?, ?, ?, 'failed', ?, ?)",
                failure_row(context, ops.now()),
            )
    except Exception as exc:  # logged, not hidden: the callback must not mask the task's failure
        log.warning("could not record the failure in ops.run_log: %s: %s", type(exc).__name__, exc)
