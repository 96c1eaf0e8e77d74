"""
### 02_ingest_stream_data — landing folder → bronze.raw_transactions

Every 5 minutes (Airflow Variable `bankpipe_stream_schedule`, a cron expression, changes that) the
complete transaction files in `<landing>/transactions/` are loaded exactly once into
`bronze.raw_transactions`; bad JSON Lines lines go to `ops.rejected_lines`, truncated files are
recorded `partial`, unparseable ones go to quarantine and `ops.rejected_files` (`bankpipe status`).

Calls `bankpipe.ingest.stream.run` (the same function as `bankpipe ingest stream`), which holds a
single-instance lock: an overlapping run fails fast and is retried. Updates the asset
`bankpipe.bronze.raw_transactions`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from _common import (
    BRONZE_TRANSACTIONS,
    START,
    STREAM_SCHEDULE_DEFAULT,
    STREAM_SCHEDULE_VAR,
    TAGS,
    TZ,
    default_args,
    digest,
    settings,
    variable,
)
from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable


@dag(
    dag_id="02_ingest_stream_data",
    schedule=CronTriggerTimetable(variable(STREAM_SCHEDULE_VAR, STREAM_SCHEDULE_DEFAULT), timezone=TZ),
    start_date=START,
    catchup=False,
    # One pass at a time; a pass that overruns the interval is cut off rather than piling up runs.
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=15),
    default_args=default_args(
        retries=2,
        retry_delay=timedelta(seconds=30),
        max_retry_delay=timedelta(minutes=2),
        execution_timeout=timedelta(minutes=10),
    ),
    tags=[*TAGS, "ingest", "bronze", "stream"],
    doc_md=__doc__,
)
def ingest_stream_data() -> None:
    """Load the new landing files."""

    @task(outlets=[BRONZE_TRANSACTIONS])
    def ingest_stream() -> dict[str, Any]:
        """New landing files → bronze, exactly once."""
        from bankpipe.ingest import stream

        return digest(stream.run(settings()))

    ingest_stream()


ingest_stream_data()
