"""Scores and alerts as append-only history: the current/served views, `score.history`, old warehouses, in-sample days.

Real DuckDB, rows written as the scorer writes them (no model needed); the lifecycle test
(test_ml_lifecycle.py) checks the same through training, `ml score` and `--rescore`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from bankpipe.ml import monitor, score
from bankpipe.settings import Settings
from bankpipe.warehouse import Warehouse, connect

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FRAUD, STATUS = "bankpipe-fraud", "bankpipe-status"


def add_scores(wh: Warehouse, rows: list[tuple]) -> None:
    """(transaction_id, model_name, version, score, label, scored_at, scored_by, seq) rows."""
    cols = ["transaction_id", "model_name", "model_version", "score", "label", "scored_at", "scored_by", "score_seq"]
    types = [pa.string()] * 3 + [pa.float64(), pa.string(), pa.timestamp("us", tz="UTC"), pa.string(), pa.int64()]
    data = {c: pa.array([r[i] for r in rows], t) for i, (c, t) in enumerate(zip(cols, types, strict=True))}
    wh.append_arrow("gold.ml_transaction_scores", pa.table(data))


def add_alert(wh: Warehouse, tid: str, version: str, score_: float, at: datetime, by: str, seq: int | None) -> None:
    wh.execute(
        "insert into gold.fraud_alerts (transaction_id, model_name, model_version, score, threshold, alerted_at,"
        " raised_by, score_seq) values (?, ?, ?, ?, 0.5, ?, ?, ?)",
        [tid, FRAUD, version, score_, at, by, seq],
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(state_dir=tmp_path / "state")
    with connect(s) as wh:
        score.ensure_tables(wh)
    return s


def test_rescore_rows_become_current_and_the_served_ones_stay(settings: Settings) -> None:
    with connect(settings) as wh:
        add_scores(
            wh,
            [
                ("T1", FRAUD, "1", 0.9, "fraud", T0, "realtime", 1),
                ("T1", STATUS, "1", 0.1, "Success", T0, "realtime", 1),
                ("T2", FRAUD, "1", 0.2, "legit", T0 + timedelta(hours=1), "batch", 2),
                # v2 champion, `--rescore`: added beside v1's rows.
                ("T1", FRAUD, "2", 0.3, "legit", T0 + timedelta(days=1), "rescore", 3),
                ("T2", FRAUD, "2", 0.7, "fraud", T0 + timedelta(days=1), "rescore", 3),
            ],
        )
        add_alert(wh, "T1", "1", 0.9, T0, "realtime", 1)
        add_alert(wh, "T2", "2", 0.7, T0 + timedelta(days=1), "rescore", 3)
        current = wh.fetchall(
            "select transaction_id, model_name, model_version, score from gold.ml_current_scores order by 1, 2"
        )
        served = wh.fetchall(
            "select transaction_id, model_name, model_version, score, scored_by from gold.ml_served_scores"
            " order by 1, 2, 3"
        )
        alerts_now = wh.fetchall("select transaction_id, model_version from gold.current_fraud_alerts")
        alerts_ever = wh.fetchall("select transaction_id, model_version from gold.fraud_alerts order by 1")
    assert current == [("T1", FRAUD, "2", 0.3), ("T1", STATUS, "1", 0.1), ("T2", FRAUD, "2", 0.7)]
    # Version 2 served nothing: rescored rows are hindsight, never what a version served.
    assert served == [
        ("T1", FRAUD, "1", 0.9, "realtime"),
        ("T1", STATUS, "1", 0.1, "realtime"),
        ("T2", FRAUD, "1", 0.2, "batch"),
    ]
    assert alerts_now == [("T2", "2")]  # T1's alert stays in the table, no longer current
    assert alerts_ever == [("T1", "1"), ("T2", "2")]

    rows = score.history(settings, "T1")
    assert [(r["model_name"], r["model_version"], r["scored_by"]) for r in rows] == [
        (FRAUD, "1", "realtime"),
        (STATUS, "1", "realtime"),
        (FRAUD, "2", "rescore"),
    ]
    assert [(r["is_current"], r["is_served"], r["alerted"]) for r in rows] == [
        (False, True, True),
        (True, True, False),
        (True, False, False),
    ]
    assert rows[0]["score"] == 0.9 and rows[0]["label"] == "fraud" and rows[0]["scored_at"] == T0
    assert score.history(settings, "T-unknown") == []


def test_current_is_deterministic_when_rows_tie(settings: Settings) -> None:
    """Two writers in the same instant with the same sequence: the same row wins on every read."""
    with connect(settings) as wh:
        add_scores(
            wh,
            [
                ("T1", FRAUD, "3", 0.4, "legit", T0, "batch", 5),
                ("T1", FRAUD, "3", 0.6, "fraud", T0, "realtime", 5),
                ("T1", FRAUD, "1", 0.9, "fraud", T0 + timedelta(days=9), "batch", 4),  # an older call, later clock
            ],
        )
        picks = {wh.fetchone("select score from gold.ml_current_scores")[0] for _ in range(5)}
        served = wh.fetchall("select model_version, score from gold.ml_served_scores order by 1")
    # Sequence first (the warehouse's order), then time, then the row's content: realtime > batch.
    assert picks == {0.6}
    assert served == [("1", 0.9), ("3", 0.4)]  # same call and time: batch before realtime


def test_a_warehouse_from_before_the_history_keeps_working(tmp_path: Path) -> None:
    """Tables made by the old DDL (no score_seq): history reads them, ensure_tables adds the column and views."""
    s = Settings(state_dir=tmp_path / "state")
    with connect(s) as wh:
        wh.execute(
            "create table gold.ml_transaction_scores (transaction_id varchar not null, model_name varchar not null,"
            " model_version varchar not null, score double not null, label varchar not null,"
            " scored_at timestamptz not null, scored_by varchar not null)"
        )
        wh.execute(
            "insert into gold.ml_transaction_scores values ('T1', ?, '1', 0.8, 'fraud', ?, 'batch')", [FRAUD, T0]
        )
    (old,) = score.history(s, "T1")
    assert old["score_seq"] is None and old["is_current"] and old["is_served"] and not old["alerted"]
    with connect(s) as wh:
        score.ensure_tables(wh)
        score.ensure_tables(wh)  # idempotent
        add_scores(wh, [("T1", FRAUD, "2", 0.1, "legit", T0 - timedelta(hours=1), "rescore", 1)])
        current = wh.fetchall("select model_version, score from gold.ml_current_scores")
    # A numbered row is later than any row from before the sequence, whatever the clocks say.
    assert current == [("2", 0.1)]
    assert [r["is_current"] for r in score.history(s, "T1")] == [False, True]


def test_in_sample_days_come_from_the_version_tags() -> None:
    tags = {"train_window": "2026-01-08..2026-02-20", "test_window": "2026-03-03..2026-03-16"}
    assert monitor.in_sample_days(tags) == (date(2026, 1, 8), date(2026, 3, 3))
    assert monitor.in_sample_days({"test_window": "2026-03-03..2026-03-16"}) == (None, date(2026, 3, 3))
    assert monitor.in_sample_days({}) == (None, None)
    assert monitor.in_sample_days({"test_window": "garbage"}) == (None, None)


def test_ml_history_command_lists_every_score_and_marks_the_current(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from bankpipe.cli import app
    from bankpipe.logs import console
    from bankpipe.settings import get_settings

    with connect(settings) as wh:
        add_scores(
            wh,
            [
                ("T1", FRAUD, "1", 0.9, "fraud", T0, "realtime", 1),
                ("T1", FRAUD, "2", 0.3, "legit", T0 + timedelta(days=1), "rescore", 2),
            ],
        )
    monkeypatch.setenv("BANKPIPE_STATE_DIR", str(settings.state_dir))
    monkeypatch.setattr(console, "width", 200)
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["ml", "history", "T1"])
        missing = CliRunner().invoke(app, ["ml", "history", "T-unknown"])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if FRAUD in line]
    assert len(lines) == 2
    assert "0.9000" in lines[0] and "realtime" in lines[0] and "yes" in lines[0]  # served, alert-less, not current
    assert "0.3000" in lines[1] and "rescore" in lines[1]
    assert lines[1].count("yes") == 1  # current only (a rescore is never the served score)
    assert missing.exit_code == 0 and "no score for T-unknown" in missing.output
