"""DAG integrity: the folder imports cleanly, every DAG is owned, retried, tagged and scheduled as intended."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import timedelta
from typing import Any

import pytest

from tests.dags.conftest import DAGS

pytest.importorskip("airflow")

EXPECTED_SCHEDULES = {
    "01_ingest_batch_data": "0 1 * * *",
    "02_ingest_stream_data": "*/5 * * * *",
    "05_ingest_api_kurs": "30 0 * * *",
    "03_transform_dbt": "asset",
    "04_ml_train_score": "gold",
}
# task id → the asset (name) it updates
EXPECTED_OUTLETS = {
    ("01_ingest_batch_data", "ingest_incremental"): "bankpipe.bronze.master_data",
    ("01_ingest_batch_data", "ingest_full"): "bankpipe.bronze.master_data",
    ("02_ingest_stream_data", "ingest_stream"): "bankpipe.bronze.raw_transactions",
    ("05_ingest_api_kurs", "ingest_fx"): "bankpipe.bronze.raw_exchange_rates",
    ("03_transform_dbt", "dbt_build"): "bankpipe.gold",
}


def test_no_import_errors(dagbag: Any) -> None:
    errors = "\n".join(f"{path}: {err.strip().splitlines()[-1]}" for path, err in dagbag.import_errors.items())
    assert not dagbag.import_errors, f"DAG import errors:\n{errors}"


def test_expected_dag_ids(dagbag: Any) -> None:
    assert set(dagbag.dag_ids) == set(EXPECTED_SCHEDULES), f"DAG ids: {sorted(dagbag.dag_ids)}"


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_SCHEDULES))
def test_dag_hygiene(dagbag: Any, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert dag.doc_md and dag_id in dag.doc_md, f"{dag_id}: doc_md should be the module docstring naming the DAG"
    assert "bankpipe" in dag.tags, f"{dag_id}: tags {sorted(dag.tags)} lack 'bankpipe'"
    assert len(dag.tags) >= 2, f"{dag_id}: give it a tag for its stage as well"
    assert not dag.catchup, f"{dag_id}: catchup would replay every interval since start_date"
    assert dag.max_active_runs == 1, f"{dag_id}: runs of one DAG must not overlap (one DuckDB writer)"
    for task in dag.tasks:
        where = f"{dag_id}.{task.task_id}"
        assert task.owner and task.owner != "airflow", f"{where}: no owner"
        assert task.retries >= 1, f"{where}: no retries"
        assert task.retry_exponential_backoff, f"{where}: retries without exponential backoff"
        assert task.max_retry_delay is not None, f"{where}: backoff without a ceiling"
        assert task.execution_timeout is not None, f"{where}: no execution_timeout"
        assert task.execution_timeout <= timedelta(hours=2), f"{where}: timeout {task.execution_timeout} too long"
        assert task.on_failure_callback, f"{where}: no on_failure_callback (run log row)"
        assert task.pool == "bankpipe_warehouse", f"{where}: pool {task.pool!r}, expected the warehouse pool"


@pytest.mark.parametrize(("dag_id", "expected"), sorted(EXPECTED_SCHEDULES.items()))
def test_schedules(dagbag: Any, dag_id: str, expected: str) -> None:
    dag = dagbag.dags[dag_id]
    if expected == "gold":
        names = {a.name for _, a in dag.timetable.asset_condition.iter_assets()}
        assert names == {"bankpipe.gold"}, f"{dag_id} waits for {sorted(names)}"
    elif expected == "asset":
        names = {a.name for _, a in dag.timetable.asset_condition.iter_assets()}
        want = {"bankpipe.bronze.master_data", "bankpipe.bronze.raw_transactions", "bankpipe.bronze.raw_exchange_rates"}
        assert names == want, f"{dag_id} waits for {sorted(names)}"
        assert type(dag.timetable.asset_condition).__name__ == "AssetAll", "default trigger: all bronze assets"
    else:
        assert dag.timetable.summary == expected, f"{dag_id}: schedule {dag.timetable.summary!r}"
        assert str(dag.timetable._timezone.name) == "Asia/Jakarta", f"{dag_id}: schedule not in WIB"


@pytest.mark.parametrize(("key", "asset"), sorted(EXPECTED_OUTLETS.items()))
def test_outlets(dagbag: Any, key: tuple[str, str], asset: str) -> None:
    dag_id, task_id = key
    outlets = [o.name for o in dagbag.dags[dag_id].get_task(task_id).outlets]
    assert outlets == [asset], f"{dag_id}.{task_id} updates {outlets}"


def test_batch_branch_order(dagbag: Any) -> None:
    dag = dagbag.dags["01_ingest_batch_data"]
    assert dag.get_task("choose_mode").downstream_task_ids == {"ingest_incremental", "ingest_full"}


@pytest.mark.slow
def test_parse_is_fast_and_light() -> None:
    """Parse the folder in a fresh interpreter: time it, and prove no stage module, driver or dbt was imported."""
    code = textwrap.dedent(
        f"""
        import json, sys, time
        from pathlib import Path
        from airflow.models.dagbag import BundleDagBag
        heavy_before = {{m for m in sys.modules if m.split(".")[0] in ("bankpipe", "dbt", "duckdb", "psycopg")}}
        started = time.perf_counter()
        bag = BundleDagBag(dag_folder=Path({str(DAGS)!r}), bundle_path=Path({str(DAGS)!r}))
        seconds = time.perf_counter() - started
        heavy = sorted(
            m for m in sys.modules
            if m.split(".")[0] in ("bankpipe", "dbt", "duckdb", "psycopg") and m not in heavy_before
        )
        report = {{"seconds": seconds, "dags": len(bag.dags), "errors": len(bag.import_errors), "heavy": heavy}}
        print(json.dumps(report))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"DAG folder parse: {report['seconds'] * 1000:.0f} ms for {report['dags']} DAGs")
    assert report["errors"] == 0
    assert report["heavy"] == [], f"DAG files import heavy modules at parse time: {report['heavy']}"
    # Airflow's default dagbag_import_timeout is 30 s; this folder takes ~0.1 s. The budget catches a regression.
    assert report["seconds"] < 2.0, f"parsing the DAG folder took {report['seconds']:.2f}s"
