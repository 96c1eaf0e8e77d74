"""Scoring with the champions: batch (`bankpipe ml score`) and real-time (each landed file, in `--follow`).

Both paths call the same `Scorer.score()` with a different predicate: batch takes every transaction
a champion has not scored yet, real-time the transactions of the stream batch that just landed.
Features come from `features.compute()` either way, so a transaction gets the same features and
score whichever path reaches it first, and it is scored once per model (the unscored predicate).

Scores and alerts are append-only history: a row is never updated or deleted. `bankpipe ml score
--rescore` adds the champion's rows beside the served ones; the views name what is current
(`gold.ml_current_scores`, `gold.current_fraud_alerts`) and what was served
(`gold.ml_served_scores`), and `history()` lists every score a transaction got.
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

# How a row was written: served (batch, realtime) or added later by `--rescore`.
SERVED_BY = ("batch", "realtime")
SCORED_BY = (*SERVED_BY, "rescore")

DDL = [
    """create table if not exists gold.ml_transaction_scores (
    transaction_id  varchar not null,
    model_name      varchar not null,
    model_version   varchar not null,
    score           double not null,   -- fraud: P(fraud); status: P(not Success)
    label           varchar not null,  -- fraud: fraud | legit at the version's threshold; status: predicted status
    scored_at       timestamptz not null,
    scored_by       varchar not null,  -- batch | realtime | rescore
    score_seq       bigint             -- the scoring call that wrote the row: 1, 2, … in commit order
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
    raised_by       varchar not null,  -- batch | realtime | rescore
    score_seq       bigint             -- the score row's (same call, same alerted_at = scored_at)
)""",
    # Warehouses made before scores were kept as history: the column is null on their rows.
    "alter table gold.ml_transaction_scores add column if not exists score_seq bigint",
    "alter table gold.fraud_alerts add column if not exists score_seq bigint",
]

# The latest row first: by the call's sequence (the warehouse's commit order; scored_at is the
# scoring process's clock), then its time; the rest only make ties between concurrent writers
# deterministic. Rows written before the sequence existed (null) were the only row of their model.
LATEST_FIRST = "coalesce(score_seq, 0) desc, scored_at desc, model_version desc, scored_by desc, score desc, label desc"
# The first score a version served a transaction, outside any rescoring.
FIRST_SERVED = "coalesce(score_seq, 0), scored_at, scored_by, score, label"
_IN = ", ".join(f"'{m}'" for m in SCORED_BY)
_SERVED_IN = ", ".join(f"'{m}'" for m in SERVED_BY)
VIEWS = [
    f"""create or replace view gold.ml_current_scores as
select * from gold.ml_transaction_scores
where scored_by in ({_IN})
qualify row_number() over (partition by transaction_id, model_name order by {LATEST_FIRST}) = 1""",
    f"""create or replace view gold.ml_served_scores as
select * from gold.ml_transaction_scores
where scored_by in ({_SERVED_IN})
qualify row_number() over (partition by transaction_id, model_name, model_version order by {FIRST_SERVED}) = 1""",
    # An alert is current while the score row that raised it is. The latest rows are looked up for
    # alerted transactions only: ranking every score (millions) would cost the dashboard seconds.
    f"""create or replace view gold.current_fraud_alerts as
with latest as (
    select * from gold.ml_transaction_scores s
    where scored_by in ({_IN}) and exists (
        select 1 from gold.fraud_alerts x where x.transaction_id = s.transaction_id and x.model_name = s.model_name
    )
    qualify row_number() over (partition by transaction_id, model_name order by {LATEST_FIRST}) = 1
)
select a.* from gold.fraud_alerts a
join latest c
  on c.transaction_id = a.transaction_id and c.model_name = a.model_name and c.model_version = a.model_version
 and c.scored_at = a.alerted_at and coalesce(c.score_seq, 0) = coalesce(a.score_seq, 0)""",
]


def ensure_tables(wh: Warehouse) -> None:
    """Create the gold scoring tables and views if they are missing (idempotent; old tables gain `score_seq`)."""
    for statement in DDL + VIEWS:
        wh.execute(features.dialect_sql(wh, statement))


def _next_seq(wh: Warehouse) -> int:
    """The next scoring call's number (read inside its transaction: a rolled-back call uses none)."""
    # fetchall, not fetchone: DuckDB keeps a half-read result open, and the inserts follow at once.
    ((seq,),) = wh.fetchall("select coalesce(max(score_seq), 0) + 1 from gold.ml_transaction_scores")
    return int(seq)


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
    rescored: dict[str, int] = field(default_factory=dict)  # "name vN" → rows added by --rescore
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
        self._tables_ready = False
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

    def _ensure_tables(self, wh: Warehouse) -> None:
        # Once per scorer: a follower scores every landed file, and seven DDL statements cost it ~0.1 s
        # each time. A failed call makes the next one check again (the warehouse may have been replaced).
        if not self._tables_ready:
            ensure_tables(wh)
            self._tables_ready = True

    def score(self, wh: Warehouse, where: str, params: list[Any], mode: str) -> ScoreSummary:
        """Score the transactions matching `where` that a champion has not scored yet, and raise alerts.

        Real-time calls look for their targets in the bronze tail first; if a transform already
        moved the batch into silver, the whole history is searched instead.
        """
        started = time.monotonic()
        summary = ScoreSummary()
        if not self.champions:
            return summary
        self._ensure_tables(wh)
        try:
            return self._score(wh, where, params, mode, summary, started)
        except Exception:
            self._tables_ready = False
            raise

    def _score(
        self, wh: Warehouse, where: str, params: list[Any], mode: str, summary: ScoreSummary, started: float
    ) -> ScoreSummary:
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
            seq = _next_seq(wh)
            for champ in self.champions.values():
                part = parts[champ.target]
                n = self._write(wh, champ, part, scored_at, mode, seq)
                summary.scored[f"{champ.info.name} v{champ.info.version}"] = n
                if champ.target == "fraud" and n:
                    summary.alerts += _raise_alerts(wh, champ, part, scored_at, mode, seq)
        summary.seconds = time.monotonic() - started
        return summary

    def rescore(self, wh: Warehouse, mode: str = "stale") -> ScoreSummary:
        """Add the champions' scores (and alerts) for transactions whose current score is an earlier version's
        (`stale`) or for every scored transaction (`all`).

        Nothing is deleted or updated: the served rows stay, and the added rows (`rescore`) become
        current through the views. One warehouse transaction, so a crash adds nothing.
        """
        if mode not in RESCORE_MODES:
            raise BankpipeError(f"unknown rescore mode {mode!r}: choose {' or '.join(RESCORE_MODES)}")
        started = time.monotonic()
        summary = ScoreSummary()
        if not self.champions:
            return summary
        self._ensure_tables(wh)
        stale = {c.info.name: (None if mode == "all" else c.info.version) for c in self.champions.values()}
        which = " or ".join(
            f"(model_name = '{name}'" + ("" if version is None else f" and model_version <> '{version}'") + ")"
            for name, version in stale.items()
        )
        current = f"select transaction_id from gold.ml_current_scores where {which}"
        df = features.compute(wh, f"transaction_id in ({current})")
        # Which rows each model re-scores is read before the transaction opens (a temp table; on
        # Snowflake a CREATE would commit it); only the inserts run inside.
        parts = {
            c.target: df[_scored_rows(wh, df, c.info.name, other_than=stale[c.info.name])]
            for c in self.champions.values()
        }
        scored_at = ops.now()
        with wh.transaction():
            seq = _next_seq(wh)
            for champ in self.champions.values():
                part = parts[champ.target]
                n = self._write(wh, champ, part, scored_at, "rescore", seq)
                summary.rescored[f"{champ.info.name} v{champ.info.version}"] = n
                if champ.target == "fraud" and n:
                    summary.alerts += _raise_alerts(wh, champ, part, scored_at, "rescore", seq)
        ((left,),) = wh.fetchall(f"select count(*) from gold.ml_current_scores where {which}")
        if mode == "stale" and left:
            # Scores of transactions silver no longer holds as valid: nothing to score them with.
            log.warning("%d current score(s) of earlier versions left: their transactions have no features", left)
        summary.seconds = time.monotonic() - started
        return summary

    def _write(self, wh: Warehouse, champ: Champion, df: pd.DataFrame, scored_at: Any, mode: str, seq: int) -> int:
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
                "score_seq": pa.array([seq] * len(df), pa.int64()),
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
    """Boolean mask of the feature rows this model has scored (whose current score is not `other_than`'s, if given)."""
    ids = pa.table({"transaction_id": pa.array(df["transaction_id"].to_numpy(), pa.string())})
    wh.execute("create or replace temp table _ml_candidates (transaction_id varchar)")
    wh.append_arrow("_ml_candidates", ids)
    done = {
        r[0]
        for r in wh.fetchall(
            features.dialect_sql(
                wh,
                "select s.transaction_id from gold.ml_current_scores s"
                " semi join _ml_candidates c on c.transaction_id = s.transaction_id"
                " where s.model_name = ? and s.model_version is distinct from ?",
            ),
            [model_name, other_than],
        )
    }
    wh.execute("drop table _ml_candidates")
    return df["transaction_id"].isin(done).to_numpy()


def _raise_alerts(wh: Warehouse, champ: Champion, df: pd.DataFrame, alerted_at: Any, mode: str, seq: int) -> int:
    score, _ = predict(champ, df)
    high = score >= champ.info.threshold
    if not high.any():
        return 0
    hits = df[high]
    landed: list[Any] = [None] * len(hits)
    if mode == "realtime":
        # The file's arrival time, from the ingest ledger, makes landed → alert latency measurable.
        batches = sorted({b for b in hits["batch_id"] if isinstance(b, str)})
        if batches:
            marks = ", ".join("?" for _ in batches)
            rows = wh.fetchall(
                features.dialect_sql(
                    wh,
                    "select batch_id, to_timestamp(min(mtime_ns) / 1e9) from ops.ingested_files"
                    f" where status = 'loaded' and batch_id in ({marks}) group by batch_id",
                ),
                batches,
            )
            by_batch = dict(rows)
            landed = [by_batch.get(b) for b in hits["batch_id"]]
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
            "landed_at": pa.array(landed, pa.timestamp("us", tz="UTC")),
            "alerted_at": pa.array([alerted_at] * len(hits), pa.timestamp("us", tz="UTC")),
            "raised_by": pa.array([mode] * len(hits), pa.string()),
            "score_seq": pa.array([seq] * len(hits), pa.int64()),
        }
    )
    n = wh.append_arrow("gold.fraud_alerts", table)
    log.warning("%d fraud alert(s) from %s v%s (%s)", n, champ.info.name, champ.info.version, mode)
    return n


def run(settings: Settings, rescore: str | None = None) -> ScoreSummary:
    """`bankpipe ml score`: every transaction a champion has not scored yet (incremental, idempotent).

    With `rescore` (`stale` or `all`), the transactions whose current score is an earlier version's
    (or every scored one) get the champions' scores first, added beside the served ones.
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


def history(settings: Settings, transaction_id: str) -> list[dict[str, Any]]:
    """Every score a transaction got, in the order they were written: `bankpipe ml history TRANSACTION_ID`.

    Each row: model_name, model_version, score, label, scored_at, scored_by, score_seq, is_current
    (the row `gold.ml_current_scores` shows for its model), is_served (the first score its version
    served, which monitoring evaluates) and alerted (the row raised a fraud alert).
    """
    with connect(settings, read_only=True) as wh:
        if not wh.table_exists("gold", "ml_transaction_scores"):
            return []
        # A warehouse not scored since scores became history has no score_seq yet (read-only: no DDL).
        seq = "score_seq" if _has_column(wh, "ml_transaction_scores", "score_seq") else "cast(null as bigint)"
        alerts = (
            "select transaction_id, model_name, model_version, alerted_at,"
            f" {'score_seq' if _has_column(wh, 'fraud_alerts', 'score_seq') else 'cast(null as bigint)'} as score_seq"
            " from gold.fraud_alerts where transaction_id = ?"
            if wh.table_exists("gold", "fraud_alerts")
            else "select cast(null as varchar) as transaction_id, cast(null as varchar) as model_name,"
            " cast(null as varchar) as model_version, cast(null as timestamptz) as alerted_at,"
            " cast(null as bigint) as score_seq where ? is null"
        )
        # The views' orderings, applied to this transaction's rows alone.
        sql = f"""
            with s as (
                select model_name, model_version, score, label, scored_at, scored_by, {seq} as score_seq
                from gold.ml_transaction_scores where transaction_id = ?
            ),
            ranked as (
                select *,
                       scored_by in ({_IN}) and row_number() over (
                           partition by model_name, scored_by in ({_IN}) order by {LATEST_FIRST}) = 1 as is_current,
                       scored_by in ({_SERVED_IN}) and row_number() over (
                           partition by model_name, model_version, scored_by in ({_SERVED_IN})
                           order by {FIRST_SERVED}) = 1 as is_served
                from s
            ),
            a as ({alerts})
            select r.model_name, r.model_version, r.score, r.label, r.scored_at, r.scored_by, r.score_seq,
                   r.is_current, r.is_served, a.model_name is not null as alerted
            from ranked r
            left join a on a.model_name = r.model_name and a.model_version = r.model_version
                       and a.alerted_at = r.scored_at and coalesce(a.score_seq, 0) = coalesce(r.score_seq, 0)
            order by coalesce(r.score_seq, 0), r.scored_at, r.model_name, r.model_version"""
        table = wh.fetch_arrow(features.dialect_sql(wh, sql), [transaction_id, transaction_id])
    return [{k.lower(): v for k, v in row.items()} for row in table.to_pylist()]


def _has_column(wh: Warehouse, table: str, column: str) -> bool:
    ((n,),) = wh.fetchall(
        "select count(*) from information_schema.columns where lower(table_schema) = 'gold'"
        " and lower(table_name) = ? and lower(column_name) = ?",
        [table, column],
    )
    return bool(n)


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
