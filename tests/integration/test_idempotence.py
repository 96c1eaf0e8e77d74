"""Idempotence: `bankpipe run` twice gives the same gold; a run SIGKILLed and resumed gives an uninterrupted run's gold.

The CLI runs as a subprocess on data from `bankpipe generate` in a fresh PostgreSQL database; gold
is compared table by table (row count + checksum of every column but GOLD_LINEAGE).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import harness

pytestmark = pytest.mark.integration

# Gold columns that name the run that wrote a row, not what it says — the only ones left out:
GOLD_LINEAGE = frozenset(
    {
        "batch_id",  # the stream batch that loaded the transaction (facts, fraud_alerts)
        "loaded_at",  # when that batch was loaded (facts and aggregates)
        "scored_at",  # when a model scored the row (ml_transaction_scores)
        "alerted_at",  # when the alert was raised (fraud_alerts)
        "computed_at",  # when monitoring recomputed the metrics (ml_model_metrics), every run
        # A run killed after registering a model version and before promoting it leaves that
        # version behind: the resumed run trains the same model (same data, fixed random_state)
        # as the next number. Scores, labels and alerts must still be equal.
        "model_version",
    }
)
TINY = ["--customers", "100", "--transactions", "1500", "--days", "10", "--seed", "3"]


def gold(ws: harness.Workspace) -> dict[str, tuple[int, int]]:
    return harness.checksums(ws.warehouse, schemas=("gold",), lineage=GOLD_LINEAGE, ml_lineage=frozenset())


def generate(ws: harness.Workspace, dataset: list[str]) -> None:
    gen = harness.generate(ws, dataset)
    assert gen.returncode == 0, gen.stderr[-2000:]


@pytest.mark.slow
def test_run_twice_on_the_same_inputs_gives_the_same_gold(tmp_path: Path) -> None:
    """Ten days of data: too short to train, so this is the ingest + dbt gold (fast)."""
    with harness.workspace(tmp_path) as ws:
        generate(ws, TINY)
        ws.run(harness.RUN)
        first = gold(ws)
        assert first["gold.fact_transaction_enriched"][0] > 1000
        ws.run(harness.RUN)
        assert harness.diff(first, gold(ws)) == []


@pytest.mark.slow
@pytest.mark.long
def test_interrupted_and_resumed_runs_give_the_gold_of_an_uninterrupted_run(tmp_path: Path) -> None:
    """Sixty days (models trained, transactions scored); `run` killed at a quarter, half and 90 % of its time."""
    with harness.workspace(tmp_path) as ws:
        generate(ws, harness.DATASET)
        before = tmp_path / "before"
        ws.snapshot(before)
        seconds = ws.run(harness.RUN)
        clean = gold(ws)
        assert clean["gold.ml_transaction_scores"][0] > 0 and clean["gold.ml_model_metrics"][0] > 0
        ws.run(harness.RUN)
        assert harness.diff(clean, gold(ws)) == [], "a second run changed gold"
        for share in (0.25, 0.5, 0.9):
            ws.restore(before)
            killed = ws.kill_after(harness.RUN, seconds * share)
            ws.run(harness.RUN)
            assert harness.diff(clean, gold(ws)) == [], f"killed at {share:.0%} ({killed=}), resumed"
