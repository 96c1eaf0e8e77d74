"""
### 04_ml_train_score — fraud and status models: train (weekly), score and monitor after each transform

Runs whenever `03_transform_dbt` updates the asset `bankpipe.gold`. Each run trains a model only when
its target has no champion yet, except on the weekly retrain day (Monday, WIB) or when the `mode`
param says `retrain`; a new version becomes `champion` only if it beats the current one on the same
test window. Then every transaction no champion has scored yet is scored into
`gold.ml_transaction_scores` (high fraud scores into `gold.fraud_alerts`), and
`gold.ml_model_metrics` is recomputed on matured labels.

Calls `bankpipe.ml.train.ensure_champions`, `bankpipe.ml.score.run` and `bankpipe.ml.monitor.run`
(the same functions as `bankpipe ml train|score` and `bankpipe run`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from _common import GOLD, START, TAGS, TZ, default_args, digest, settings
from airflow.sdk import Param, dag, task

RETRAIN_WEEKDAY = 0  # Monday, Jakarta time: a week of new matured labels since the last retrain


@dag(
    dag_id="04_ml_train_score",
    schedule=[GOLD],
    start_date=START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=4),
    default_args=default_args(
        retries=2,
        retry_delay=timedelta(minutes=5),
        max_retry_delay=timedelta(minutes=30),
        execution_timeout=timedelta(hours=2),
    ),
    params={"mode": Param("auto", enum=["auto", "retrain", "keep"], description="retrain the models?")},
    tags=[*TAGS, "ml", "gold"],
    doc_md=__doc__,
)
def ml_train_score() -> None:
    """Train when needed, then score and monitor."""

    @task
    def train(**context: Any) -> list[str]:
        """Champions for fraud and status (retrained weekly)."""
        from bankpipe.ml import train as ml_train

        mode = context["params"]["mode"]
        weekly = pendulum.instance(context["dag_run"].run_after).in_timezone(TZ).weekday() == RETRAIN_WEEKDAY
        return ml_train.ensure_champions(settings(), retrain=mode == "retrain" or (mode == "auto" and weekly))

    @task
    def score() -> str:
        """Every unscored transaction, with each champion."""
        from bankpipe.ml import score as ml_score

        return ml_score.run(settings()).line()

    @task
    def monitor() -> dict[str, Any]:
        """gold.ml_model_metrics on matured labels."""
        from bankpipe.ml import monitor as ml_monitor

        return digest(ml_monitor.run(settings()))

    train() >> score() >> monitor()


ml_train_score()
