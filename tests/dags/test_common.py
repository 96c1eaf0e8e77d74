"""The pure helpers of airflow/dags/_common.py: load mode, connection → conninfo, variables, XCom digest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.importorskip("airflow")

import _common  # the DAG folder is on sys.path (conftest), as Airflow puts it there
from airflow.sdk import Connection


@pytest.mark.parametrize(
    ("run_after", "requested", "expected"),
    [
        # 2026-11-28 18:00 UTC is Sunday 01:00 in Jakarta: the scheduled Sunday run is a full reconcile.
        (datetime(2026, 11, 28, 18, 0, tzinfo=UTC), "auto", "full"),
        # Saturday 23:00 in Jakarta (16:00 UTC): still incremental.
        (datetime(2026, 11, 28, 16, 0, tzinfo=UTC), "auto", "incremental"),
        (datetime(2026, 11, 30, 18, 0, tzinfo=UTC), "auto", "incremental"),
        (datetime(2026, 11, 30, 18, 0, tzinfo=UTC), "full", "full"),
        (datetime(2026, 11, 28, 18, 0, tzinfo=UTC), "incremental", "incremental"),
    ],
)
def test_batch_mode(run_after: datetime, requested: str, expected: str) -> None:
    assert _common.batch_mode(run_after, requested) == expected


def test_batch_mode_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="mode must be"):
        _common.batch_mode(datetime(2026, 1, 1, tzinfo=UTC), "weekly")


def test_conninfo_from_connection_keeps_libpq_extras_only() -> None:
    conn = Connection(
        conn_id="bankpipe_source",
        conn_type="postgres",
        host="db.bank.internal",
        port=5433,
        login="etl",
        password="p@ss word",
        schema="source_bank",
        extra=json.dumps({"sslmode": "require", "cursor": "dictcursor"}),
    )
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(_common.conninfo_from_connection(conn))
    assert params == {
        "host": "db.bank.internal",
        "port": "5433",
        "user": "etl",
        "password": "p@ss word",
        "dbname": "source_bank",
        "sslmode": "require",
    }


def test_conninfo_refuses_other_connection_types() -> None:
    conn = Connection(conn_id="bankpipe_source", conn_type="mysql", host="h")
    with pytest.raises(ValueError, match="expected 'postgres'"):
        _common.conninfo_from_connection(conn)


def test_variable_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_BANKPIPE_STREAM_SCHEDULE", "*/2 * * * *")
    assert _common.variable(_common.STREAM_SCHEDULE_VAR, _common.STREAM_SCHEDULE_DEFAULT) == "*/2 * * * *"
    monkeypatch.setenv("AIRFLOW_VAR_BANKPIPE_STREAM_SCHEDULE", "  ")
    assert _common.variable(_common.STREAM_SCHEDULE_VAR, "x") == "x"


def test_transform_schedule_any_or_all(monkeypatch: pytest.MonkeyPatch) -> None:
    assert type(_common.transform_schedule()).__name__ == "AssetAll"
    monkeypatch.setenv("AIRFLOW_VAR_BANKPIPE_TRANSFORM_TRIGGER", "any")
    assert type(_common.transform_schedule()).__name__ == "AssetAny"
    monkeypatch.setenv("AIRFLOW_VAR_BANKPIPE_TRANSFORM_TRIGGER", "sometimes")
    with pytest.raises(ValueError, match="'all' or 'any'"):
        _common.transform_schedule()


def test_digest_counts_lists_and_keeps_scalars() -> None:
    @dataclass
    class Result:
        batch_id: str
        loaded: list[tuple[str, int]] = field(default_factory=list)
        when: datetime = datetime(2026, 1, 1, tzinfo=UTC)

        @property
        def rows(self) -> int:
            return sum(n for _, n in self.loaded)

    out = _common.digest(Result("b1", [("a.json", 20), ("b.json", 20)]))
    assert out == {"batch_id": "b1", "loaded": 2, "when": "2026-01-01 00:00:00+00:00", "rows": 40}


def test_day_param() -> None:
    assert _common.day(None) is None
    assert _common.day("") is None
    assert str(_common.day("2025-12-24")) == "2025-12-24"


def test_record_failure_names_the_error_without_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The failure callback as a worker calls it (the exception in the context) writes one redacted row."""
    from bankpipe.errors import SourceError
    from bankpipe.settings import get_settings
    from bankpipe.warehouse import connect

    monkeypatch.setenv("BANKPIPE_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()

    class TI:
        dag_id, task_id, try_number, start_date = "01_ingest_batch_data", "ingest_full", 4, None

    exc = SourceError("cannot connect to the source database postgresql://etl:s3cret-pw@db:5432/source_bank")
    try:
        _common.record_failure({"ti": TI(), "run_id": "scheduled__2026-11-22", "exception": exc})  # type: ignore[typeddict-item]
        with connect(get_settings(), read_only=True) as wh:
            logged = wh.fetchall("select run_id, step, status, error from ops.run_log")
    finally:
        get_settings.cache_clear()
    assert logged == [
        (
            "airflow-01_ingest_batch_data-ingest_full-scheduled__2026-11-22-try4",
            "airflow.01_ingest_batch_data.ingest_full",
            "failed",
            "SourceError: cannot connect to the source database postgresql://etl:***@db:5432/source_bank",
        )
    ]


def test_record_failure_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken warehouse must not turn the task's own error into a callback error."""
    from bankpipe.settings import get_settings

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("BANKPIPE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("BANKPIPE_WAREHOUSE_PATH", str(blocker / "warehouse.duckdb"))
    get_settings.cache_clear()
    try:
        _common.record_failure({"ti": object(), "run_id": "r"})  # type: ignore[typeddict-item]
    finally:
        get_settings.cache_clear()
