"""
### 03_transform_dbt — dbt build: bronze → silver → gold

Runs when the bronze assets were updated: by default once **all three** (master data, transactions,
exchange rates) have new events since the last run — in practice daily after the batch and FX
loads. The Airflow Variable `bankpipe_transform_trigger=any` makes it run after every update instead.

One task, `dbt_build`, calls `bankpipe.transform.run` (the same function as `bankpipe transform`):
one `dbt build` of what the new bronze data reaches (models, snapshots, data tests; everything on
the first run or after a change to the dbt project), with the profile made from Settings; with
nothing new in bronze it does nothing. dbt unit tests run in CI, not here. Why not one task per
model (astronomer-cosmos): see docs/deploy.md. A failing test fails the task with a line naming the
test and its first failing rows. Updates the asset `bankpipe.gold`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from _common import GOLD, START, TAGS, default_args, digest, settings, transform_schedule
from airflow.sdk import dag, task


@dag(
    dag_id="03_transform_dbt",
    schedule=transform_schedule(),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    default_args=default_args(
        # A failing dbt test fails again on retry; one retry covers a transient warehouse error.
        retries=1,
        retry_delay=timedelta(minutes=5),
        max_retry_delay=timedelta(minutes=15),
        execution_timeout=timedelta(hours=2),
    ),
    tags=[*TAGS, "transform", "dbt", "silver", "gold"],
    doc_md=__doc__,
)
def transform_dbt() -> None:
    """Build silver and gold."""

    @task(outlets=[GOLD])
    def dbt_build() -> dict[str, Any]:
        """`dbt build` of what new bronze data reaches in silver and gold, data tests included."""
        from bankpipe import transform

        return digest(transform.run(settings()))

    dbt_build()


transform_dbt()
