"""Training's evaluation end to end on a small hand-built silver in real DuckDB + MLflow: a target that
cannot be trained is skipped, the prequential weeks, per-scenario metrics, the report and report_json."""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from bankpipe.ml import registry, report, score, train
from bankpipe.settings import Settings
from bankpipe.warehouse import connect
from tests import ml_fixtures as fx

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAYS = 80  # enough for the default split (56 days) and four prequential weeks


@dataclass
class Built:
    settings: Settings
    world: fx.World
    lines: list[str]
    second: train.TrainResult
    truth: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("ml-eval")
    settings = Settings(state_dir=root / "state", mlflow_uri=f"sqlite:///{root / 'mlflow.db'}", ml_alerts_per_day=10)
    w = fx.world(n_accounts=60, days=DAYS, seed=5)
    # Every transaction succeeded (as on the handbook's simulation): the status model cannot train.
    w.transactions["status"] = "Success"
    with connect(settings) as wh:
        fx.build(wh, w)
    lines = train.ensure_champions(settings)  # what `bankpipe run` calls
    truth = root / "transactions.parquet"
    w.transactions.assign(fraud_scenario=w.transactions["is_fraud"].map({True: "night_burst", False: None}))[
        ["transaction_id", "fraud_scenario"]
    ].to_parquet(truth)
    second = train.run(settings, "fraud", train.TrainConfig(lr_c=0.05, ground_truth=truth))
    return Built(settings, w, lines, second, truth)


def test_a_one_class_target_is_skipped_with_a_warning_and_scoring_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(state_dir=tmp_path / "state", mlflow_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    w = fx.world(n_accounts=40, days=DAYS, seed=3)
    w.transactions["status"] = "Success"
    with connect(settings) as wh:
        fx.build(wh, w)
    with caplog.at_level(logging.WARNING, logger="bankpipe.ml.train"):
        lines = train.ensure_champions(settings)
    assert lines[0] == "fraud: trained"
    assert lines[1].startswith("status: skipped (cannot train the status model: the training window has no more")
    assert any("status model skipped" in r.getMessage() for r in caplog.records)
    assert registry.champion(settings, "status") is None
    summary = score.run(settings)
    fraud = registry.champion(settings, "fraud")
    assert fraud is not None
    assert summary.scored == {f"{fraud.name} v{fraud.version}": len(w.transactions)}
    # The direct command still fails, with the one-line reason.
    with pytest.raises(train.NotEnoughData, match="more than one status"):
        train.run(settings, "status")


def test_prequential_weeks_each_chose_their_own_threshold_with_intervals(built: Built) -> None:
    weeks = built.second.prequential
    assert len(weeks) == 4
    ends = [pd.Timestamp(w["test"]["end"]) for w in weeks]
    assert all(b - a == pd.Timedelta(days=7) for a, b in itertools.pairwise(ends))
    assert weeks[-1]["test"]["end"] == str(built.second.split.test_end - pd.Timedelta(days=1).to_pytimedelta())
    for w in weeks:
        assert w["positives"] > 0 and w["n"] > 0
        for key in ("roc_auc", "average_precision", "money_recall"):
            low, high = w["intervals"][key]
            assert low <= w["metrics"][key] <= high, (w["test"], key)
    # Each week's threshold comes from its own validation window.
    assert len({w["threshold"] for w in weeks}) > 1


def test_the_registered_fraud_model_is_calibrated_and_tagged(built: Built) -> None:
    champ = registry.load_champion(built.settings, "fraud")
    assert champ is not None
    model, info = champ
    assert type(model).__name__ == "CalibratedClassifierCV"
    tags = info.tags
    assert tags["calibration"] == "sigmoid" and tags["alerts_per_day"] == "10"
    assert tags["train_window"].split("..")[1] < tags["validation_window"] < tags["test_window"]
    assert json.loads(tags["metrics"])["roc_auc"] is not None
    assert set(json.loads(tags["intervals"])) >= {"roc_auc", "average_precision", "card_precision_at_100"}
    assert len(json.loads(tags["prequential"])) == 4


def test_per_scenario_and_per_segment_metrics_are_logged(built: Built) -> None:
    body = json.loads(registry.download_artifact(built.settings, built.second.model.run_id, "metrics.json").read_text())
    assert [r["scenario"] for r in body["per_scenario"]] == ["night_burst"]
    assert {r["segment"] for r in body["per_segment"]} <= {"Gold", "Silver", "Standard"}
    scenario = body["per_scenario"][0]
    assert scenario["positives"] == sum(w["positives"] for w in body["prequential"])
    assert "card_precision_at_100" not in scenario["metrics"]  # one scenario's fraud against all negatives


def test_report_prints_the_prequential_table_and_report_json_has_the_schema(built: Built) -> None:
    score.run(built.settings)
    out = report.run(built.settings)
    weeks = [line for line in out.headline if line.strip().startswith("week ")]
    assert len(weeks) == 4 and all("AUC" in line and "[" in line for line in weeks)
    assert "### Prequential evaluation" in out.markdown.read_text()

    doc = report.report_json(built.settings)
    assert set(doc) == {"models"}
    models = doc["models"]
    assert [(m["target"], m["version"]) for m in models] == [("fraud", 1), ("fraud", 2)]  # no status model
    champion = registry.champion(built.settings, "fraud")
    assert champion is not None
    for m in models:
        assert set(m) == {"name", "version", "target", "alias", "test", "metrics", "intervals", "features"}
        assert m["name"] == "bankpipe-fraud"
        assert m["alias"] == ("champion" if str(m["version"]) == champion.version else None)
        assert set(m["test"]) == {"start", "end"} and m["test"]["start"] <= m["test"]["end"]
        assert {"roc_auc", "average_precision", "card_precision_at_100"} <= set(m["metrics"])
        for key, (low, high) in m["intervals"].items():
            assert low <= m["metrics"][key] <= high, key
        assert "log_amount_idr" in m["features"] and "status" not in m["features"]
    json.dumps(doc)  # plain JSON types only
    assert models[1]["metrics"]["average_precision"] == pytest.approx(
        built.second.reports["lr"]["average_precision"], abs=1e-5
    )


def test_a_second_version_uses_the_settings_budget_and_its_own_fixed_c(built: Built) -> None:
    r = built.second
    assert r.chosen["lr_c"] == 0.05 and r.chosen["alerts_per_day"] == 10
    per_day = r.chosen["validation_alerts_per_day"]
    assert all(v <= 10 for v in per_day.values()) and set(per_day) == {"lr", "tree", "rules"}
    assert built.lines[0] == "fraud: trained" and built.lines[1].startswith("status: skipped")


def test_ml_report_json_command_prints_only_the_json_object(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bankpipe.cli import app
    from bankpipe.settings import get_settings

    monkeypatch.setenv("BANKPIPE_STATE_DIR", str(built.settings.state_dir))
    monkeypatch.setenv("BANKPIPE_MLFLOW_URI", built.settings.mlflow_tracking_uri)
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["ml", "report", "--json"])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)  # nothing but the object on stdout
    assert doc == json.loads(json.dumps(report.report_json(built.settings), default=str))
