"""Airflow for the DAG tests: a throw-away AIRFLOW_HOME, the project's DAG folder, one DagBag, one metadata DB.

Airflow reads its configuration when it is first imported, so the environment is set here, at
collection time, before any test module imports it; nothing outside the temp dir is touched.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parents[2] / "airflow" / "dags"

_HOME = Path(tempfile.mkdtemp(prefix="bankpipe-airflow-test-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Unpaused on creation, so an ingest DAG's asset event queues 03_transform_dbt as the scheduler would.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
    }
)
# Airflow's DAG processor and task runner put the bundle (DAG folder) on sys.path; so do the tests.
if str(DAGS) not in sys.path:
    sys.path.insert(0, str(DAGS))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def dagbag() -> Any:
    """The DAG folder parsed once, as Airflow's DAG processor parses it."""
    pytest.importorskip("airflow")
    from airflow.models.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=DAGS, bundle_path=DAGS)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[float]:
    """`airflow db migrate` once per session (SQLite under the temp AIRFLOW_HOME); yields its seconds."""
    pytest.importorskip("airflow")
    from airflow.utils.db import initdb

    started = time.perf_counter()
    initdb()
    yield time.perf_counter() - started
