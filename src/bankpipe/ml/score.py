"""Scoring with the champions: batch (`bankpipe ml score`) and real-time (each landed file, in `--follow`).

Both paths call the same `Scorer.score()` with a different predicate: batch takes every transaction
a champion has not scored yet, real-time the transactions of the stream batch that just landed.
Features come from `features.compute()` either way, so a transaction gets the same features and
score whichever path reaches it first, and it is scored once per model (the unscored predicate).
`bankpipe ml score --rescore` replaces the scores (and alerts) of earlier versions with the
champion's, so every row can be made to carry the current model.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from bankpipe import ops
from bankpipe.errors import BankpipeError
from bankpipe.ml import features, metrics, registry
from bankpipe.settings import Settings
from bankpipe.warehouse import Warehouse, connect

if TYPE_CHECKING:
    import pandas as pd

    from bankpipe.ingest.stream import StreamResult

log = logging.getLogger(__name__)

TARGETS = ("fraud", "status")
STATUS_CLASSES = ("Success", "Pending", "Failed")
# How often a long-running scorer (stream --follow) checks whether a new champion was promoted.
REFRESH_S = 60.0
# `--rescore` modes: rows of versions other than the champion, or every scored row.
RESCORE_MODES = ("stale", "all")

DDL = [
    """create table if not exists gold.ml_transaction_scores (
    transaction_id  varchar not null,
    model_name      varchar not null,
    model_version   varchar not null,
    score           double not null,   -- fraud: P(fraud); status: P(not Success)
    label           varchar not null,  -- fraud: fraud | legit at the version's threshold; status: predicted status
    scored_at       timestamptz not null,
    scored_by       varchar not null   -- batch | realtime | rescore
)""",
    """create table if not exists gold.fraud_alerts (
    transaction_id  varchar not null,
    account_id      varchar,
    model_name      varchar not null,
    model_version   varchar not null,
    score           double not null,
    threshold       double not null,
    transaction_at  timestamp,
    batch_id        varchar,
    landed_at       timestamptz,       -- when the transaction's file appeared (real-time only)
    alerted_at      timestamptz not null,
    raised_by       varchar not null   -- batch | realtime | rescore
)""",
]


def ensure_tables(wh: Warehouse) -> None:
    """Create the gold scoring tables if they are missing."""
    for statement in DDL:
        wh.execute(features.dialect_sql(wh, statement))


@dataclass
class Champion:
    """A loaded champion pipeline and what scoring needs from its registry entry."""

    target: str
    model: Any
    info: registry.ModelInfo

    @property
    def columns(self) -> list[str]:
        return json.loads(self.info.tags["features"])


@dataclass
class ScoreSummary:
    """Rows scored and alerts raised per model in one call."""

    scored: dict[str, int] = field(default_factory=dict)  # "name vN" → rows
    rescored: dict[str, int] = field(default_factory=dict)  # "name vN" → rows replaced (--rescore)
    alerts: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(self.scored.values()) + sum(self.rescored.values())

    def line(self) -> str:
        """One line for the console and the run log."""
        if not self.scored and not self.rescored:
            return "no champion model yet (run: bankpipe ml train --target fraud)"
        parts = ", ".join(
            [f"{name}: {n} re-scored" for name, n in self.rescored.items()]
            + [f"{name}: {n} scored" for name, n in self.scored.items()]
        )
        return f"{parts}; {self.alerts} fraud alerts ({self.seconds:.1f}s)"


class Scorer:
    """Holds the loaded champions (loading MLflow costs seconds, so a follower loads them once)."""

    def __init__(self, settings: Settings, targets: tuple[str, ...] = TARGETS) -> None:
        self.settings = settings
        self.targets = targets
        self.champions: dict[str, Champion] = {}
        self._checked = 0.0
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Reload a target's champion when the alias moved (at most every REFRESH_S seconds)."""
        if not force and time.monotonic() - self._checked < REFRESH_S:
            return
        self._checked = time.monotonic()
        mlc = registry.client(self.settings)
        for target in self.targets:
            info = registry.champion(self.settings, target, mlc)
            current = self.champions.get(target)
            if info is None or (current and current.info.version == info.version):
                continue
            if info.tags.get("feature_version") != features.FEATURE_VERSION:
                raise BankpipeError(
                    f"{info.name} v{info.version} was trained on feature version {info.tags.get('feature_version')}, "
                    f"this code computes version {features.FEATURE_VERSION}: "
                    f"retrain (bankpipe ml train --target {target})"
                )
            self.champions[target] = Champion(target, registry.load_model(info), info)
            log.info("scoring with %s v%s", info.name, info.version)

    def score(self, wh: Warehouse, where: str, params: list[Any], mode: str) -> ScoreSummary:
        """Score the transactions matching `where` that a champion has not scored yet, and raise alerts.

        Real-time calls look for their targets in the bronze tail first; if a transform already
        moved the batch into silver, the whole history is searched instead.
        """
        started = time.monotonic()
        summary = ScoreSummary()
        if not self.champions:
            return summary
        ensure_tables(wh)
        names = [c.info.name for c in self.champions.values()]
        # A transaction is a target while at least one champion has not scored it.
        unscored = " or ".join(
            f"transaction_id not in (select transaction_id from gold.ml_transaction_scores where model_name = '{n}')"
            for n in names
        )
        predicate = f"({where}) and ({unscored})"
        df = features.compute(wh, predicate, params, new_only=True) if mode == "realtime" else None
        if df is None or df.empty:
            df = features.compute(wh, predicate, params)
        if df.empty:
            summary.scored = {f"{c.info.name} v{c.info.version}": 0 for c in self.champions.values()}
            return summary
        # Which rows each model still lacks is read before the transaction opens: it needs a temp
        # table, and on Snowflake creating one (DDL) would commit the open transaction.
        parts = {c.target: df[_unscored_rows(wh, df, c.info.name)] for c in self.champions.values()}
        scored_at = ops.now()
        with wh.transaction():
            for champ in self.champions.values():
                part = parts[champ.target]
                n = self._write(wh, champ, part, scored_at, mode)
                summary.scored[f"{champ.info.name} v{champ.info.version}"] = n
                if champ.target == "fraud" and n:
                    summary.alerts += _raise_alerts(wh, champ, part, scored_at, mode)
        summary.seconds = time.monotonic() - started
        return summary

    def rescore(self, wh: Warehouse, mode: str = "stale") -> ScoreSummary:
        """Replace the scores of earlier versions (`stale`) or all scores (`all`) with the champions', alerts too.

        Each re-scored transaction loses its rows of that model (score and alert) and gets the
        champion's, in one warehouse transaction: nothing is duplicated and nothing is lost.
        """
        if mode not in RESCORE_MODES:
            raise BankpipeError(f"unknown rescore mode {mode!r}: choose {' or '.join(RESCORE_MODES)}")
        started = time.monotonic()
        summary = ScoreSummary()
        if not self.champions:
            return summary
        ensure_tables(wh)
        stale = {c.info.name: (None if mode == "all" else c.info.version) for c in self.champions.values()}
        which = " or ".join(
            f"(model_name = '{name}'" + ("" if version is None else f" and model_version <> '{version}'") + ")"
            for name, version in stale.items()
        )
        df = features.compute(
            wh, f"transaction_id in (select transaction_id from gold.ml_transaction_scores where {which})"
        )
        # The rows to replace, and the temp table naming them, are made before the transaction opens
        # (on Snowflake a CREATE would commit it); only the deletes and inserts run inside.
        parts = {
            c.target: df[_scored_rows(wh, df, c.info.name, other_than=stale[c.info.name])]
            for c in self.champions.values()
        }
        wh.execute("create or replace temp table _ml_rescored (model_name varchar, transaction_id varchar)")
        for champ in self.champions.values():
            ids = parts[champ.target]["transaction_id"].to_numpy()
            wh.append_arrow(
                "_ml_rescored",
                pa.table(
                    {
                        "model_name": pa.array([champ.info.name] * len(ids), pa.string()),
                        "transaction_id": pa.array(ids, pa.string()),
                    }
                ),
            )
        scored_at = ops.now()
        try:
            with wh.transaction():
                for champ in self.champions.values():
                    name = champ.info.name
                    part = parts[champ.target]
                    for table in ("gold.ml_transaction_scores", "gold.fraud_alerts"):
                        wh.execute(
                            f"delete from {table} where model_name = ? and transaction_id in"
                            " (select transaction_id from _ml_rescored where model_name = ?)",
                            [name, name],
                        )
                    n = self._write(wh, champ, part, scored_at, "rescore")
                    summary.rescored[f"{name} v{champ.info.version}"] = n
                    if champ.target == "fraud" and n:
                        summary.alerts += _raise_alerts(wh, champ, part, scored_at, "rescore")
        finally:
            wh.execute("drop table if exists _ml_rescored")
        left = wh.fetchone(f"select count(*) from gold.ml_transaction_scores where {which}")
        if mode == "stale" and left and left[0]:
            # Scores of transactions silver no longer holds as valid: nothing to score them with.
            log.warning("%d score row(s) of earlier versions left: their transactions have no features", left[0])
        summary.seconds = time.monotonic() - started
        return summary

    def _write(self, wh: Warehouse, champ: Champion, df: pd.DataFrame, scored_at: Any, mode: str) -> int:
        if df.empty:
            return 0
        score, label = predict(champ, df)
        table = pa.table(
            {
                "transaction_id": pa.array(df["transaction_id"].to_numpy(), pa.string()),
                "model_name": pa.array([champ.info.name] * len(df), pa.string()),
                "model_version": pa.array([champ.info.version] * len(df), pa.string()),
                "score": pa.array(score, pa.float64()),
                "label": pa.array(label, pa.string()),
                "scored_at": pa.array([scored_at] * len(df), pa.timestamp("us", tz="UTC")),
                "scored_by": pa.array([mode] * len(df), pa.string()),
            }
        )
        return wh.append_arrow("gold.ml_transaction_scores", table)


def predict(champ: Champion, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(score, label) arrays for feature rows, as the scores table stores them."""
    proba = champ.model.predict_proba(df[champ.columns])
    classes = [str(c) for c in champ.model.classes_]
    if champ.target == "fraud":
        score = proba[:, classes.index("1")] if "1" in classes else proba[:, 1]
        label = np.where(score >= champ.info.threshold, "fraud", "legit")
        return score, label
    success = proba[:, classes.index("Success")]
    # Decision offsets (in STATUS_CLASSES order) were learnt at training for macro-F1.
    offsets = json.loads(champ.info.tags.get("class_offsets", "null"))
    ordered = np.column_stack([proba[:, classes.index(c)] for c in STATUS_CLASSES])
    return 1.0 - success, np.asarray(STATUS_CLASSES)[metrics.decide(ordered, offsets)]


def _unscored_rows(wh: Warehouse, df: pd.DataFrame, model_name: str) -> np.ndarray:
    """Boolean mask of the feature rows this model has not scored yet."""
    return ~_scored_rows(wh, df, model_name)


def _scored_rows(wh: Warehouse, df: pd.DataFrame, model_name: str, other_than: str | None = None) -> np.ndarray:
    """Boolean mask of the feature rows this model has scored (only by versions other than `other_than`, if given)."""
    ids = pa.table({"transaction_id": pa.array(df["transaction_id"].to_numpy(), pa.string())})
    wh.execute("create or replace temp table _ml_candidates (transaction_id varchar)")
    wh.append_arrow("_ml_candidates", ids)
    done = {
        r[0]
        for r in wh.fetchall(
            features.dialect_sql(
                wh,
                "select s.transaction_id from gold.ml_transaction_scores s"
                " semi join _ml_candidates c on c.transaction_id = s.transaction_id"
                " where s.model_name = ? and s.model_version is distinct from ?",
            ),
            [model_name, other_than],
        )
    }
    wh.execute("drop table _ml_candidates")
    return df["transaction_id"].isin(done).to_numpy()


def _raise_alerts(wh: Warehouse, champ: Champion, df: pd.DataFrame, alerted_at: Any, mode: str) -> int:
    score, _ = predict(champ, df)
    high = score >= champ.info.threshold
    if not high.any():
        return 0
    hits = df[high]
    table = pa.table(
        {
            "transaction_id": pa.array(hits["transaction_id"].to_numpy(), pa.string()),
            "account_id": pa.array(hits["account_id"].to_numpy(), pa.string()),
            "model_name": pa.array([champ.info.name] * len(hits), pa.string()),
            "model_version": pa.array([champ.info.version] * len(hits), pa.string()),
            "score": pa.array(score[high], pa.float64()),
            "threshold": pa.array([champ.info.threshold] * len(hits), pa.float64()),
            "transaction_at": pa.array(hits["transaction_at"].to_numpy(), pa.timestamp("us")),
            "batch_id": pa.array(hits["batch_id"].to_numpy(), pa.string()),
            "alerted_at": pa.array([alerted_at] * len(hits), pa.timestamp("us", tz="UTC")),
            "raised_by": pa.array([mode] * len(hits), pa.string()),
        }
    )
    n = wh.append_arrow("gold.fraud_alerts", table)
    if mode == "realtime":
        # The file's arrival time, from the ingest ledger, makes landed → alert latency measurable.
        wh.execute(
            features.dialect_sql(
                wh,
                """update gold.fraud_alerts a set landed_at = f.landed_at
               from (select batch_id, to_timestamp(min(mtime_ns) / 1e9) as landed_at
                     from ops.ingested_files where status = 'loaded' group by batch_id) f
               where a.batch_id = f.batch_id and a.landed_at is null and a.raised_by = 'realtime'""",
            )
        )
    log.warning("%d fraud alert(s) from %s v%s (%s)", n, champ.info.name, champ.info.version, mode)
    return n


def run(settings: Settings, rescore: str | None = None) -> ScoreSummary:
    """`bankpipe ml score`: every transaction a champion has not scored yet (incremental, idempotent).

    With `rescore` (`stale` or `all`), the rows of earlier versions (or all rows) are replaced
    with the champions' first.
    """
    scorer = Scorer(settings)
    if not scorer.champions:
        log.warning("no champion model in %s: nothing scored", settings.mlflow_tracking_uri)
        return ScoreSummary()
    with connect(settings) as wh, ops.step(wh, "ml.score") as step:
        # Re-scoring first: the incremental pass then scores only what no model version has seen.
        replaced = scorer.rescore(wh, rescore) if rescore is not None else ScoreSummary()
        summary = scorer.score(wh, "true", [], "batch")
        summary.rescored = replaced.rescored
        summary.alerts += replaced.alerts
        summary.seconds += replaced.seconds
        step.rows_out = summary.rows
        step.details = {"scored": summary.scored, "rescored": summary.rescored, "alerts": summary.alerts}
    log.info("scored: %s", summary.line())
    return summary


_SCORERS: dict[str, Scorer] = {}


def score_files(settings: Settings, result: StreamResult) -> ScoreSummary:
    """Real-time: score the transactions of one stream batch right after it landed (stream.follow's hook)."""
    if not result.loaded:
        return ScoreSummary()
    key = f"{settings.mlflow_tracking_uri}|{settings.warehouse_file}"
    scorer = _SCORERS.get(key)
    if scorer is None:
        scorer = _SCORERS[key] = Scorer(settings)
    else:
        scorer.refresh()
    with connect(settings) as wh:
        summary = scorer.score(wh, "batch_id = ?", [result.batch_id], "realtime")
    log.info("real-time %s: %s", result.batch_id, summary.line())
    return summary


def realtime_hook(settings: Settings) -> Callable[[StreamResult], None]:
    """An `on_loaded` callback for `stream.follow` that loads the champions now, not on the first file.

    A scoring failure is raised to the follower, which logs it, counts it in ops.run_log and retries
    the batch on a later tick; ingestion goes on meanwhile, and `bankpipe ml score` catches up
    every transaction left unscored.
    """
    key = f"{settings.mlflow_tracking_uri}|{settings.warehouse_file}"
    _SCORERS[key] = Scorer(settings)

    def hook(result: StreamResult) -> None:
        score_files(settings, result)

    return hook
