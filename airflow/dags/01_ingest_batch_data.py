"""
### 01_ingest_batch_data — PostgreSQL master data → bronze

Every day at 01:00 WIB the master tables of the source database (`location`, `bank_info`,
`customer`, `account`, `fraud_case`) are loaded into `bronze.raw_*`: **incremental** by transaction
id (the rows committed since the last run's snapshot, so no concurrent writer is skipped), and on
**Sundays a full reconcile** that also records rows deleted at the source. A manual run may force
either with the `mode` param.

Calls `bankpipe.ingest.postgres.run` (the same function as `bankpipe ingest batch`). The source is
the Airflow Connection `bankpipe_source` when defined, else `BANKPIPE_SOURCE_URL`. Its login is a
read-only role made once by a DBA from `bankpipe source ddl` (CONNECT, USAGE on the schema, SELECT
on the five tables; no DDL, no writes): bankpipe never changes an external source's schema, it
checks the tables, columns, `*_touch` triggers and grants on connect and fails in one line naming
what is missing.
Updates the asset `bankpipe.bronze.master_data`, which `03_transform_dbt` waits for.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from _common import BRONZE_MASTER, START, TAGS, TZ, batch_mode, default_args, digest, settings
from airflow.sdk import Param, dag, task
from airflow.timetables.trigger import CronTriggerTimetable


@dag(
    dag_id="01_ingest_batch_data",
    schedule=CronTriggerTimetable("0 1 * * *", timezone=TZ),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    default_args=default_args(
        retries=3,
        retry_delay=timedelta(minutes=2),
        max_retry_delay=timedelta(minutes=30),
        execution_timeout=timedelta(hours=1),
    ),
    params={
        "mode": Param(
            "auto",
            enum=["auto", "incremental", "full"],
            description="auto: full reconcile on Sundays (WIB), incremental otherwise",
        )
    },
    tags=[*TAGS, "ingest", "bronze", "postgres"],
    doc_md=__doc__,
)
def ingest_batch_data() -> None:
    """Branch on the load mode, then load the master tables."""

    @task.branch
    def choose_mode(**context: Any) -> str:
        """The task id to run: `ingest_incremental` or `ingest_full`."""
        return f"ingest_{batch_mode(context['dag_run'].run_after, context['params']['mode'])}"

    @task(outlets=[BRONZE_MASTER])
    def ingest_incremental() -> dict[str, Any]:
        """Rows past the watermark → bronze."""
        from bankpipe.ingest import postgres

        return digest(postgres.run(settings(), "incremental"))

    @task(outlets=[BRONZE_MASTER], execution_timeout=timedelta(hours=2))
    def ingest_full() -> dict[str, Any]:
        """Every row → bronze (only changes are appended), plus tombstones for deleted rows."""
        from bankpipe.ingest import postgres

        return digest(postgres.run(settings(), "full"))

    choose_mode() >> [ingest_incremental(), ingest_full()]


ingest_batch_data()
