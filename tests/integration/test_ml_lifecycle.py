"""Train → registry → batch and real-time scoring → monitoring → report, on a tiny silver in real DuckDB + MLflow."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pytest

from bankpipe.ingest import stream
from bankpipe.ml import features, monitor, registry, report, score, train
from bankpipe.settings import Settings
from bankpipe.warehouse import connect
from tests import ml_fixtures as fx

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Small windows for a 60-day world: 5 warm-up, ~30 train, 3 gap, 10 test, 3 maturity.
CFG = train.TrainConfig(test_days=10, gap_days=3, maturity_days=3, warmup_days=5, tree_max_iter=30)
CUTOFF = pd.Timestamp(fx.START) + pd.Timedelta(days=50)  # silver holds what came before; files bring the rest


@dataclass
class Setup:
    realtime: Settings
    batch: Settings
    world: fx.World
    first: train.TrainResult
    second: train.TrainResult


def _settings(root: Path, name: str, mlflow_uri: str) -> Settings:
    return Settings(state_dir=root / name, mlflow_uri=mlflow_uri)


def _build(settings: Settings, w: fx.World) -> None:
    with connect(settings) as wh:
        fx.build(wh, w, until=CUTOFF)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    root = tmp_path_factory.mktemp("ml")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    w = fx.world(n_accounts=60, days=60, seed=11)
    rt, batch = _settings(root, "realtime", uri), _settings(root, "batch", uri)
    for s in (rt, batch):
        _build(s, w)
    first = train.run(rt, "fraud", CFG)
    second = train.run(rt, "fraud", CFG)
    return Setup(rt, batch, w, first, second)


def test_training_reports_lr_tree_and_rules_on_the_same_window(setup: Setup) -> None:
    r = setup.first
    assert set(r.reports) == {"lr", "tree", "rules"}
    for rep in r.reports.values():
        assert rep["n"] == r.reports["lr"]["n"] and rep["positives"] > 0
        assert {"roc_auc", "average_precision", "card_precision_at_100", "tp", "fp", "fn", "tn"} <= set(rep)
    assert r.reports["lr"]["roc_auc"] > 0.8  # the planted bursts are easy
    assert r.split.train_end <= r.split.validation_start  # then validation, the gap, the test window
    assert r.split.validation_end <= r.split.test_start - pd.Timedelta(days=CFG.gap_days).to_pytimedelta()
    assert "\n".join(r.headline()).count("roc_auc") == 3


def test_a_version_becomes_champion_only_if_it_beats_the_current_one(setup: Setup) -> None:
    first, second = setup.first, setup.second
    assert first.promoted and first.previous_champion is None
    # Same data, same random_state: the same metric, which does not beat the champion.
    assert second.new_metric == pytest.approx(first.new_metric)
    assert second.champion_metric == pytest.approx(first.new_metric)
    assert not second.promoted
    champ = registry.champion(setup.realtime, "fraud")
    assert champ is not None and champ.version == first.model.version
    mlc = registry.client(setup.realtime)
    tags = mlc.get_model_version(second.model.name, second.model.version).tags
    assert tags["promoted"] == "false" and tags["test_window"] == first.split.test_window
    run = mlc.get_run(second.model.run_id)
    assert run.data.params["target"] == "fraud" and "lr_average_precision" in run.data.metrics


def test_batch_and_realtime_give_identical_features_and_scores(setup: Setup, tmp_path: Path) -> None:
    rest = setup.world.transactions[setup.world.transactions["transaction_at"] >= CUTOFF]
    files = fx.write_stream_files(rest, tmp_path / "files", per_file=120)
    assert len(files) >= 3

    # Real time: each file lands, is ingested, and is scored before the next one exists.
    rt_features = []
    for path in files:
        target = setup.realtime.transactions_landing / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        result = stream.run(setup.realtime)
        assert [n for n, _ in result.loaded] == [path.name]
        with connect(setup.realtime) as wh:
            rt_features.append(features.compute(wh, "batch_id = ?", [result.batch_id]))
        summary = score.score_files(setup.realtime, result)
        assert summary.rows == len(rt_features[-1])

    # Batch: all files at once, then one scoring pass.
    setup.batch.transactions_landing.mkdir(parents=True, exist_ok=True)
    for path in files:
        (setup.batch.transactions_landing / path.name).write_bytes(path.read_bytes())
    stream.run(setup.batch)
    with connect(setup.batch) as wh:
        batch_features = features.compute(wh, "transaction_id in (select transaction_id from _ml_tail)")
    score.run(setup.batch)

    left = pd.concat(rt_features).set_index("transaction_id").drop(columns="batch_id").sort_index()
    right = batch_features.set_index("transaction_id").drop(columns="batch_id").sort_index()
    assert len(left) == len(rest)
    pd.testing.assert_frame_equal(left, right, check_exact=True)

    def scores(s: Settings) -> pd.DataFrame:
        with connect(s, read_only=True) as wh:
            return features.fetch_df(
                wh,
                "select transaction_id, model_name, model_version, score, label, scored_by"
                " from gold.ml_transaction_scores order by transaction_id",
            )

    a, b = scores(setup.realtime), scores(setup.batch)
    assert set(a["scored_by"]) == {"realtime"} and set(b["scored_by"]) == {"batch"}
    rt_part = a.set_index("transaction_id").loc[right.index]
    b_part = b.set_index("transaction_id").loc[right.index]
    pd.testing.assert_frame_equal(rt_part.drop(columns="scored_by"), b_part.drop(columns="scored_by"), check_exact=True)
    with connect(setup.realtime, read_only=True) as wh:
        alerts = wh.fetchall("select raised_by, landed_at is not null from gold.fraud_alerts")
    assert alerts and all(raised == "realtime" and landed for raised, landed in alerts)


def test_batch_scoring_is_incremental(setup: Setup) -> None:
    score.run(setup.batch)
    again = score.run(setup.batch)
    assert again.rows == 0
    with connect(setup.batch, read_only=True) as wh:
        n, distinct = wh.fetchone(
            "select count(*), count(distinct transaction_id || model_name) from gold.ml_transaction_scores"
        )
    assert n == distinct == len(setup.world.transactions)


def test_monitoring_uses_matured_labels_only_and_report_is_written(setup: Setup) -> None:
    score.run(setup.batch)
    result = monitor.run(setup.batch)
    assert result.rows > 0
    with connect(setup.batch, read_only=True) as wh:
        rows = features.fetch_df(wh, "select * from gold.ml_model_metrics order by metric_date")
    last = rows["metric_date"].max()
    recent = rows[rows["metric_date"] > last - pd.Timedelta(days=3)]
    assert not recent["labels_matured"].any() and recent["roc_auc"].isna().all()
    assert rows.loc[rows["labels_matured"], "roc_auc"].notna().any()
    assert rows["psi"].notna().all() and (rows["n_scored"] > 0).all()
    # Days the version was trained on are flagged, so averages can leave them out; its test window is not.
    split = setup.first.split
    day = rows["metric_date"].dt.date
    assert rows.loc[(day >= split.train_start) & (day < split.train_end), "is_in_sample"].eq(True).all()
    assert not rows.loc[day >= split.test_start, "is_in_sample"].any()
    assert rows["is_in_sample"].any()
    out = report.run(setup.batch)
    assert out.markdown.exists() and out.html.exists()
    text = out.markdown.read_text()
    assert "rules baseline" in text and "HistGradientBoosting" in text and "fraud_roc_pr.png" in text
    assert (out.markdown.parent / "metrics_over_time.png").stat().st_size > 10_000
    assert any("AUC" in line for line in out.headline)


def test_follow_scores_each_new_file_and_raises_alerts_quickly(
    setup: Setup, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """stream.follow with the real-time hook: a file with a fraud burst lands → alert rows appear."""
    caplog.set_level(logging.INFO)
    s = setup.realtime
    burst = pd.DataFrame(
        [
            {
                "transaction_id": f"TRX-RT{i}",
                "account_id": "ACC-00001",
                "counterparty_account_id": f"ACC-0999{i}",
                "location_id": "LOC-004",
                "transaction_type": "Transfer",
                "status": "Success",
                "currency": "IDR",
                "channel": "mobile",
                "amount": 90_000_000.0,
                "transaction_at": pd.Timestamp(fx.START) + pd.Timedelta(days=61, hours=2, minutes=3 * i),
            }
            for i in range(4)
        ]
    )
    burst["transaction_date"] = burst["transaction_at"].dt.date
    stop = threading.Event()
    hook = score.realtime_hook(s)  # loads the champion now, not on the first file
    follower = threading.Thread(
        target=stream.follow, args=(s,), kwargs={"stop": stop, "on_loaded": hook, "poll_s": 0.05, "settle_s": 0.0}
    )
    follower.start()
    try:
        time.sleep(0.3)
        staged = fx.write_stream_files(burst, tmp_path / "staged", per_file=10)[0]
        tmp = s.transactions_landing / f".{staged.name}.tmp"
        tmp.write_bytes(staged.read_bytes())
        landed = time.monotonic()
        tmp.rename(s.transactions_landing / staged.name)  # producers write a temp name and rename
        latency = None
        while time.monotonic() - landed < 30:
            time.sleep(0.05)
            if any("real-time" in r.getMessage() and "TRX-RT" not in r.getMessage() for r in caplog.records):
                latency = time.monotonic() - landed
                break
    finally:
        stop.set()
        follower.join(timeout=30)
    assert latency is not None, "the landed file was not scored within 30 s"
    with connect(s, read_only=True) as wh:
        alerts = wh.fetchall(
            "select transaction_id, epoch(alerted_at) - epoch(landed_at) from gold.fraud_alerts"
            " where transaction_id like 'TRX-RT%' order by 1"
        )
    assert len(alerts) >= 3, alerts  # the burst is what the model learned to flag
    logging.getLogger(__name__).info("file landed → scored in %.2fs; alert latency by mtime %s", latency, alerts)
    # The goal is < 2 s; shared CI machines get a generous bound, the measured value is in docs/ml.md.
    assert latency < 10


def test_status_model_is_multinomial_with_tuned_decision_and_scores(setup: Setup) -> None:
    cfg = train.TrainConfig(test_days=10, warmup_days=5, tree_max_iter=20)
    result = train.run(setup.batch, "status", cfg)
    assert result.promoted and result.primary_metric == "macro_f1"
    lr = result.reports["lr"]
    assert lr["classes"] == ["Success", "Pending", "Failed"] and len(lr["class_offsets"]) == 3
    assert result.reports["rules"]["macro_f1"] is not None
    champ = registry.load_champion(setup.batch, "status")
    assert champ is not None and len(champ[0].classes_) == 3  # one multinomial model, not one-vs-rest
    summary = score.run(setup.batch)
    assert summary.scored[f"{champ[1].name} v{champ[1].version}"] == len(setup.world.transactions)
    with connect(setup.batch, read_only=True) as wh:
        labels = {
            r[0]
            for r in wh.fetchall(
                "select distinct label from gold.ml_transaction_scores where model_name = 'bankpipe-status'"
            )
        }
    assert labels <= {"Success", "Pending", "Failed"}


def test_rescore_keeps_the_served_scores_and_alerts_and_adds_the_champions(setup: Setup) -> None:
    """A new champion, then `ml score --rescore`: its rows are added and current, the served rows stay as they were."""
    s = setup.batch
    score.run(s)
    # A weaker regularisation gives different scores, so a re-scored row is visibly new.
    third = train.run(s, "fraud", replace(CFG, lr_c=0.05))
    if not third.promoted:
        registry.set_champion(s, third.model)
    name, version = third.model.name, third.model.version
    served_version = setup.first.model.version
    n = len(setup.world.transactions)
    status = "bankpipe-status"

    def table(sql: str) -> pd.DataFrame:
        with connect(s, read_only=True) as wh:
            return features.fetch_df(wh, sql).sort_values(["transaction_id", "model_name"]).reset_index(drop=True)

    before = table("select * from gold.ml_transaction_scores")
    alerts_before = table("select * from gold.fraud_alerts")
    assert set(before.loc[before["model_name"] == name, "model_version"]) == {served_version}

    summary = score.run(s, rescore="stale")
    assert summary.rescored[f"{name} v{version}"] == n and summary.rows == n  # status: its champion's already

    after = table("select * from gold.ml_transaction_scores")
    assert len(after) == len(before) + n
    # The served rows are all still there, unchanged: nothing deleted, nothing overwritten.
    kept = after.merge(before, how="inner", on=list(before.columns))
    assert len(kept) == len(before)
    added = after[after["scored_by"] == "rescore"]
    assert set(added["model_name"]) == {name} and set(added["model_version"]) == {version}
    assert set(added["transaction_id"]) == set(setup.world.transactions["transaction_id"])

    current = table("select * from gold.ml_current_scores")
    assert len(current) == 2 * n and not current.duplicated(["transaction_id", "model_name"]).any()
    fraud = current[current["model_name"] == name]
    assert set(fraud["model_version"]) == {version} and set(fraud["scored_by"]) == {"rescore"}
    pd.testing.assert_frame_equal(fraud.reset_index(drop=True), added.reset_index(drop=True), check_exact=True)
    old = before[before["model_name"] == name].set_index("transaction_id")["score"]
    assert (fraud.set_index("transaction_id")["score"].loc[old.index] != old).mean() > 0.9
    # The status model's current rows were its champion's already: untouched.
    pd.testing.assert_frame_equal(
        current[current["model_name"] == status].reset_index(drop=True),
        before[before["model_name"] == status].reset_index(drop=True),
    )
    # Monitoring judges what each version served: the re-scored version served none of these.
    served = table("select * from gold.ml_served_scores")
    assert set(served.loc[served["model_name"] == name, "model_version"]) == {served_version}

    # Alerts are append-only too: the served version's stay, the champion's are added and current.
    alerts = table("select * from gold.fraud_alerts")
    assert len(alerts.merge(alerts_before, how="inner", on=list(alerts_before.columns))) == len(alerts_before)
    flagged = set(fraud.loc[fraud["label"] == "fraud", "transaction_id"])
    now = table(f"select * from gold.current_fraud_alerts where model_name = '{name}'")
    assert set(now["model_version"]) == {version} and now["transaction_id"].is_unique
    assert set(now["transaction_id"]) == flagged and flagged
    assert len(alerts) == len(alerts_before) + len(flagged)

    # `bankpipe ml history`: both fraud scores, the served one first, the re-scored one current.
    tid = sorted(flagged)[0]
    rows = [r for r in score.history(s, tid) if r["model_name"] == name]
    assert [(r["model_version"], r["scored_by"], r["is_current"], r["is_served"]) for r in rows] == [
        (served_version, "batch", False, True),
        (version, "rescore", True, False),
    ]
    assert rows[0]["score"] == old[tid] and rows[1]["alerted"]

    # Nothing stale left, nothing unscored: both passes add nothing.
    assert score.run(s, rescore="stale").rows == 0 and score.run(s).rows == 0
    assert len(table("select * from gold.ml_transaction_scores")) == len(after)
    everything = score.run(s, rescore="all")
    assert sum(everything.rescored.values()) == 2 * n
    final = table("select * from gold.ml_current_scores")
    assert len(final) == 2 * n and not final.duplicated(["transaction_id", "model_name"]).any()
    assert (final["scored_by"] == "rescore").all() and final["score_seq"].nunique() == 1
    cols = ["transaction_id", "model_name", "model_version", "score", "label"]
    pd.testing.assert_frame_equal(final[cols], current[cols], check_exact=True)  # the same champions
    assert len(table("select * from gold.ml_transaction_scores")) == len(after) + 2 * n
    assert len([r for r in score.history(s, tid) if r["model_name"] == name]) == 3
