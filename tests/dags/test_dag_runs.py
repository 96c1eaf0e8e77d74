"""`dag.test()` runs of each DAG against a real PostgreSQL and a DuckDB warehouse in tmp, asserting what lands."""

from __future__ import annotations

import itertools
import json
import shutil
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bankpipe.settings import Settings, get_settings
from bankpipe.source.db import connect as source_connect
from bankpipe.source.load import load_files
from bankpipe.warehouse import connect as wh_connect
from tests.dags.conftest import DAGS

pytest.importorskip("airflow")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Scheduled-run moments (UTC) of 01_ingest_batch_data: 01:00 WIB on a Sunday and on a Monday.
SUNDAY_RUN = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
MONDAY_RUN = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
_SEQUENCE = itertools.count(1)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with wh_connect(settings, read_only=True) as wh:
        return wh.fetchall(sql)


def scalar(settings: Settings, sql: str) -> Any:
    return rows(settings, sql)[0][0]


def task_states(dag_run: Any) -> dict[str, str | None]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id)
        )
        return {ti.task_id: (str(ti.state) if ti.state else None) for ti in tis}


def unique(moment: datetime) -> datetime:
    """`moment` plus a few microseconds: run ids derive from run_after, and the Airflow DB lives all session."""
    return moment + timedelta(microseconds=next(_SEQUENCE))


def run(dagbag: Any, dag_id: str, run_after: datetime | None = None, **kwargs: Any) -> dict[str, str | None]:
    """`dag.test()` one DAG; return the final state of each task (and fail with them if the run failed)."""
    dag_run = dagbag.dags[dag_id].test(run_after=unique(run_after or datetime.now(UTC)), **kwargs)
    states = task_states(dag_run)
    assert str(dag_run.state) == "success", f"{dag_id} run {dag_run.state}: {states}"
    return states


@pytest.fixture
def env(settings: Settings, sample_dir: Path, airflow_db: float, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Seed batch files in the test PostgreSQL, seed stream files in the landing folder, FX API offline."""
    # A closed port: the FX client fails at once and falls back to the ECB snapshot shipped in the wheel.
    monkeypatch.setenv("BANKPIPE_FX_API_URL", f"http://127.0.0.1:{closed_port()}/v1")
    monkeypatch.setenv("BANKPIPE_FX_RETRIES", "1")
    monkeypatch.delenv("AIRFLOW_CONN_BANKPIPE_SOURCE", raising=False)
    get_settings.cache_clear()
    s = get_settings()
    with source_connect(s) as conn:
        load_files(conn, sample_dir / "batch_source")
    s.transactions_landing.mkdir(parents=True)
    for f in sorted((sample_dir / "stream_source").glob("*.json")):
        shutil.copy2(f, s.transactions_landing / f.name)
    yield s


def seed_counts(sample_dir: Path) -> dict[str, int]:
    batch = sample_dir / "batch_source"
    return {
        "raw_locations": len((batch / "location.txt").read_text().splitlines()) - 1,
        "raw_banks": len((batch / "bank_info.txt").read_text().splitlines()) - 1,
        "raw_customers": len((batch / "customer.csv").read_text().splitlines()) - 1,
        "raw_accounts": len(json.loads((batch / "account.json").read_text())),
    }


def test_batch_dag_incremental_then_sunday_full_reconcile(dagbag: Any, env: Settings, sample_dir: Path) -> None:
    states = run(dagbag, "01_ingest_batch_data", run_after=MONDAY_RUN)
    assert states == {"choose_mode": "success", "ingest_incremental": "success", "ingest_full": "skipped"}
    for table, n in seed_counts(sample_dir).items():
        assert scalar(env, f"select count(*) from bronze.{table}") == n, table

    # A row deleted at the source is only seen by the full reconcile, which the Sunday run does.
    with source_connect(env) as conn:
        conn.execute("delete from account where id = 'ACC-00015'")
        conn.commit()
    states = run(dagbag, "01_ingest_batch_data", run_after=SUNDAY_RUN)
    assert states == {"choose_mode": "success", "ingest_incremental": "skipped", "ingest_full": "success"}
    assert rows(env, "select id from bronze.raw_accounts where _is_deleted") == [("ACC-00015",)]
    steps = rows(env, "select step, status from ops.run_log order by started_at")
    assert steps == [("ingest.batch.incremental", "success"), ("ingest.batch.full", "success")]


def test_batch_dag_mode_param_forces_full(dagbag: Any, env: Settings) -> None:
    states = run(dagbag, "01_ingest_batch_data", run_after=MONDAY_RUN, run_conf={"mode": "full"})
    assert states["ingest_full"] == "success" and states["ingest_incremental"] == "skipped"


def test_stream_dag_loads_landing_files_exactly_once(dagbag: Any, env: Settings) -> None:
    run(dagbag, "02_ingest_stream_data")
    run(dagbag, "02_ingest_stream_data")  # a second pass finds nothing new
    assert scalar(env, "select count(*) from bronze.raw_transactions") == 60
    assert scalar(env, "select count(distinct id) from bronze.raw_transactions") == 60
    assert rows(env, "select status, count(*) from ops.ingested_files group by 1") == [("loaded", 3)]


def test_fx_dag_backfill_window_from_snapshot(dagbag: Any, env: Settings) -> None:
    run(dagbag, "05_ingest_api_kurs", run_conf={"start": "2025-12-17", "end": "2025-12-31"})
    lo, hi, sources, idr = rows(
        env,
        "select min(rate_date), max(rate_date), list(distinct source), count(*) filter (where quote = 'IDR')"
        " from bronze.raw_exchange_rates",
    )[0]
    assert str(lo) >= "2025-12-17" and str(hi) <= "2025-12-31"
    assert sources == ["ecb_snapshot"]
    # ECB business days in the window (25 and 26 December are TARGET holidays).
    assert idr == 9


def test_source_database_from_airflow_connection(
    dagbag: Any, env: Settings, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from psycopg.conninfo import conninfo_to_dict

    # The env points nowhere: only the Airflow Connection can lead the task to the seeded database.
    monkeypatch.setenv("BANKPIPE_SOURCE_URL", f"postgresql://nobody@127.0.0.1:{closed_port()}/nothing")
    get_settings.cache_clear()
    params = conninfo_to_dict(pg_url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_BANKPIPE_SOURCE",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": params.get("host", "127.0.0.1"),
                "port": int(params.get("port", 5432)),
                "login": params.get("user", "postgres"),
                "password": params.get("password"),
                "schema": params["dbname"],
            }
        ),
    )
    run(dagbag, "01_ingest_batch_data", run_after=MONDAY_RUN)
    assert scalar(env, "select count(*) from bronze.raw_customers") == 15


def test_failure_callback_writes_failed_row(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.models.dagbag import BundleDagBag

    monkeypatch.setenv("BANKPIPE_SOURCE_URL", f"postgresql://etl:s3cret-pw@127.0.0.1:{closed_port()}/source_bank")
    get_settings.cache_clear()
    # A private parse of the DAG, so that dropping its retries (no waiting for backoff) leaks nowhere.
    dag = BundleDagBag(dag_folder=DAGS / "01_ingest_batch_data.py", bundle_path=DAGS).dags["01_ingest_batch_data"]
    for task in dag.tasks:
        task.retries = 0
    dag_run = dag.test(run_after=unique(MONDAY_RUN), run_conf={"mode": "incremental"})
    assert str(dag_run.state) == "failed"

    logged = {r[0]: r[1:] for r in rows(env, "select step, status, error, details from ops.run_log")}
    # The stage records its own failed step (the source named, redacted), then the callback its row.
    assert set(logged) == {"ingest.batch.incremental", "airflow.01_ingest_batch_data.ingest_incremental"}, logged
    status, error, _ = logged["ingest.batch.incremental"]
    assert status == "failed" and "cannot connect to the source database" in error and "***" in error
    status, error, details = logged["airflow.01_ingest_batch_data.ingest_incremental"]
    assert status == "failed"
    assert json.loads(details)["try_number"] == 1
    # Airflow 3.1's in-process dag.test() does not put the exception in the callback's context (a
    # worker's task runner does); tests/dags/test_common.py covers the text.
    assert all("s3cret-pw" not in (e or "") for _, e, _ in logged.values())


def test_chain_ingest_to_transform(dagbag: Any, env: Settings, sample_dir: Path) -> None:
    """01 → 02 → 05 (the order of `bankpipe run`), the assets queue 03, then 03 builds silver and gold."""
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    with create_session() as session:  # earlier tests' events would satisfy the condition already
        session.execute(delete(AssetDagRunQueue))

    run(dagbag, "01_ingest_batch_data", run_after=MONDAY_RUN)
    run(dagbag, "02_ingest_stream_data")
    run(dagbag, "05_ingest_api_kurs")

    with create_session() as session:
        queued = set(
            session.scalars(
                select(AssetModel.name)
                .join(AssetDagRunQueue, AssetDagRunQueue.asset_id == AssetModel.id)
                .where(AssetDagRunQueue.target_dag_id == "03_transform_dbt")
            )
        )
    assert queued == {
        "bankpipe.bronze.master_data",
        "bankpipe.bronze.raw_transactions",
        "bankpipe.bronze.raw_exchange_rates",
    }, "the ingest DAGs' asset events should have queued 03_transform_dbt"

    assert run(dagbag, "03_transform_dbt") == {"dbt_build": "success"}
    silver = scalar(env, "select count(*) from silver.stg_transactions")
    rejected = scalar(
        env, "select count(distinct record_key) from silver.rejected_records where entity = 'transaction'"
    )
    assert silver + rejected == 60, (silver, rejected)
    assert scalar(env, "select count(*) from gold.fact_transaction_enriched") == silver
    assert scalar(env, "select count(*) from gold.fact_transaction_enriched where amount_usd is null") == 0
    assert scalar(env, "select count(*) from gold.dim_customers") >= seed_counts(sample_dir)["raw_customers"]
    assert rows(env, "select status from ops.run_log where step = 'transform'") == [("success",)]


def test_ml_dag_trains_scores_and_monitors(dagbag: Any, env: Settings) -> None:
    """04 on a silver layer with enough history: champions registered, every transaction scored."""
    from bankpipe.warehouse import connect
    from tests import ml_fixtures

    world = ml_fixtures.world(n_accounts=60, days=60, seed=11)
    with connect(env) as wh:
        ml_fixtures.build(wh, world)
    states = run(dagbag, "04_ml_train_score", run_conf={"mode": "auto"})
    assert states == {"train": "success", "score": "success", "monitor": "success"}
    transactions = scalar(env, "select count(*) from silver.stg_transactions")
    by_model = dict(rows(env, "select model_name, count(*) from gold.ml_transaction_scores group by 1"))
    assert by_model == {"bankpipe-fraud": transactions, "bankpipe-status": transactions}, by_model
    assert scalar(env, "select count(*) from gold.ml_model_metrics") > 0
    # A second run finds champions and nothing unscored: no retrain, no new scores.
    run(dagbag, "04_ml_train_score", run_after=MONDAY_RUN + timedelta(days=1), run_conf={"mode": "auto"})
    assert scalar(env, "select count(*) from gold.ml_transaction_scores") == 2 * transactions


def test_chain_ingest_transform_score_on_generated_data(
    dagbag: Any, settings: Settings, airflow_db: float, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The whole chain in one test: 01 → 02 → 05 → 03 → 04 on 70 days of generated data, models trained."""
    from bankpipe.generate import FraudConfig, GenerateConfig, generate

    monkeypatch.setenv("BANKPIPE_FX_API_URL", f"http://127.0.0.1:{closed_port()}/v1")
    monkeypatch.setenv("BANKPIPE_FX_RETRIES", "1")
    monkeypatch.delenv("AIRFLOW_CONN_BANKPIPE_SOURCE", raising=False)
    get_settings.cache_clear()
    s = get_settings()
    out = tmp_path / "generated"
    generate(
        GenerateConfig(
            customers=150,
            transactions=8_000,
            days=70,
            seed=3,
            out=out,
            stream_out=s.transactions_landing,
            fraud=FraudConfig(rate=0.02),
        )
    )
    with source_connect(s) as conn:
        load_files(conn, out / "batch_source")

    run(dagbag, "01_ingest_batch_data", run_after=MONDAY_RUN)
    run(dagbag, "02_ingest_stream_data")
    run(dagbag, "05_ingest_api_kurs")
    assert run(dagbag, "03_transform_dbt") == {"dbt_build": "success"}
    assert run(dagbag, "04_ml_train_score", run_conf={"mode": "auto"}) == {
        "train": "success",
        "score": "success",
        "monitor": "success",
    }
    valid = scalar(s, "select count(*) from silver.stg_transactions")
    assert valid > 7_000, valid
    scored = dict(rows(s, "select model_name, count(*) from gold.ml_transaction_scores group by 1"))
    assert scored == {"bankpipe-fraud": valid, "bankpipe-status": valid}, scored
    assert scalar(s, "select count(*) from gold.fraud_alerts") > 0
    steps = {step for (step,) in rows(s, "select distinct step from ops.run_log where status = 'success'")}
    assert {"ingest.stream", "transform"} <= steps, steps
