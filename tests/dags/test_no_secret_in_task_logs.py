"""Airflow task logs of `dag.test()` runs carry no secret: the batch ingest DAG, as it succeeds and as it fails."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bankpipe.settings import Settings, get_settings
from bankpipe.source.db import connect as source_connect
from bankpipe.source.load import load_files
from tests.dags.conftest import _HOME, DAGS
from tests.dags.test_dag_runs import closed_port, unique
from tests.leaks import SNOWFLAKE_PASSPHRASE, SOURCE_PASSWORD, duckdb_text, in_text, in_tree

pytest.importorskip("airflow")

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def leaky_env(
    settings: Settings, pg_url: str, sample_dir: Path, airflow_db: float, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """Seed rows in the test source, read by a role whose password is the known secret; passphrase in env."""
    with source_connect(settings, use="write") as conn:
        load_files(conn, sample_dir / "batch_source")
    role = f"bp_leak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as dba:
        dba.execute(sql.SQL("create role {} login password {}").format(sql.Identifier(role), SOURCE_PASSWORD))
        dba.execute(f"grant select on all tables in schema public to {role}")
    params = conninfo_to_dict(pg_url) | {"user": role}
    url = make_conninfo(**params) + " password = '" + SOURCE_PASSWORD.replace("'", "\\'") + "'"
    assert conninfo_to_dict(url)["password"] == SOURCE_PASSWORD
    monkeypatch.setenv("BANKPIPE_SOURCE_URL", url)
    monkeypatch.setenv("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", SNOWFLAKE_PASSPHRASE)
    monkeypatch.setenv("BANKPIPE_SOURCE_CONNECT_ATTEMPTS", "2")
    monkeypatch.setenv("BANKPIPE_SOURCE_RETRY_BACKOFF_S", "0.1")
    get_settings.cache_clear()
    try:
        yield {"params": params, "url": url}
    finally:
        get_settings.cache_clear()
        with psycopg.connect(pg_url, autocommit=True) as dba:
            dba.execute(f"select pg_terminate_backend(pid) from pg_stat_activity where usename = '{role}'")
            dba.execute(f"drop owned by {role}")
            dba.execute(f"drop role {role}")


def test_batch_ingest_task_logs_hold_no_secret(
    leaky_env: dict[str, Any],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.models.dagbag import BundleDagBag

    # A private parse, so that dropping retries (no backoff waits in the failing run) leaks nowhere.
    dag = BundleDagBag(dag_folder=DAGS / "01_ingest_batch_data.py", bundle_path=DAGS).dags["01_ingest_batch_data"]
    for task in dag.tasks:
        task.retries = 0
    ok = dag.test(run_after=unique(datetime.now(UTC)), run_conf={"mode": "full"})
    assert str(ok.state) == "success"
    # Then the source is down: the retry warnings, the task's exception and the failure callback write.
    down = leaky_env["url"].replace(f"port={leaky_env['params'].get('port', '5432')}", f"port={closed_port()}")
    assert down != leaky_env["url"]
    monkeypatch.setenv("BANKPIPE_SOURCE_URL", down)
    get_settings.cache_clear()
    failed = dag.test(run_after=unique(datetime.now(UTC)), run_conf={"mode": "full"})
    assert str(failed.state) == "failed"

    out, err = capfd.readouterr()
    logs = out + err + caplog.text
    # The task logs were captured: the retry warning of the failed run, with its masked conninfo.
    assert "connection attempt 1 failed" in logs and "password = ***" in logs
    findings = in_text(out, "stdout") + in_text(err, "stderr") + in_text(caplog.text, "log records")
    findings += in_tree(_HOME)  # Airflow's own task log files, if it wrote any, and its metadata DB
    findings += in_tree(settings.state)
    for table, text in duckdb_text(settings.warehouse_file).items():
        findings += in_text(text, f"warehouse table {table}")
    assert not findings, "\n".join(map(str, findings))
