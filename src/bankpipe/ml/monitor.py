"""Model monitoring: `gold.ml_model_metrics`, one row per day and model version.

Each version is judged on the scores it served (`gold.ml_served_scores`: the first batch or
real-time score it gave a transaction), never on rows `--rescore` added later with hindsight.
Quality (AUC, AP, CP@k) is computed on matured days only: fraud is reported days to weeks after
it happens, so a recent day's "legit" labels are mostly unknown fraud and would flatter or
punish the model at random. Alert volume and score drift (PSI against the training window's
scores) need no labels and are computed for every day. Days the version was trained or tuned on
are flagged `is_in_sample`: averages of quality over time leave them out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from bankpipe import ops
from bankpipe.ml import features, metrics, registry
from bankpipe.ml.score import ensure_tables
from bankpipe.ml.train import TARGET_DEFAULTS
from bankpipe.settings import Settings
from bankpipe.warehouse import Warehouse, connect

log = logging.getLogger(__name__)

K = 100

DDL = """create table if not exists gold.ml_model_metrics (
    metric_date          date not null,
    model_name           varchar not null,
    model_version        varchar not null,
    target               varchar not null,
    n_scored             bigint not null,
    n_alerts             bigint not null,
    alert_rate           double,
    labels_matured       boolean not null,
    n_positive           bigint,            -- matured days: fraud (or non-Success) transactions known
    roc_auc              double,
    average_precision    double,
    card_precision_at_k  double,
    k                    integer not null,
    macro_f1             double,            -- status model only
    mean_score           double,
    psi                  double,            -- score drift against the training window
    computed_at          timestamptz not null,
    is_in_sample         boolean            -- a day the version was trained or tuned on (null: unknown)
)"""
# Tables made before the flag existed gain it (monitoring rewrites every row each run).
MIGRATION = "alter table gold.ml_model_metrics add column if not exists is_in_sample boolean"


@dataclass
class MonitorResult:
    """Rows written and the latest matured day's numbers per model version."""

    rows: int
    latest: dict[str, dict[str, float | None]]


def _scores(wh: Warehouse) -> pd.DataFrame:
    sql = f"""
        select s.model_name, s.model_version, s.score, s.label, t.transaction_id, t.account_id,
               t.transaction_date, t.status,
               f.transaction_id is not null as is_fraud
        from gold.ml_served_scores s
        join ({features.transactions_sql()}) t on t.transaction_id = s.transaction_id
        left join (select distinct transaction_id from silver.stg_fraud_cases where is_confirmed_fraud) f
            on f.transaction_id = s.transaction_id
        -- Sums of floats depend on the order of their terms, and the view's ranking leaves rows
        -- in no particular order: ordered, a rerun gives bit-identical metrics.
        order by s.model_name, s.model_version, t.transaction_id
    """
    return features.fetch_df(wh, sql)


def in_sample_days(tags: dict[str, str]) -> tuple[date | None, date | None]:
    """(first, end exclusive) of the days a version saw at training, from its registry tags; None: unknown.

    From the training window's first day (`train_window`, when tagged) up to the test window
    (`test_window`): training, validation and the label-delay gap between them. Without a
    `train_window` tag every day before the test window counts, the warm-up included.
    """

    def first_day(window: str | None) -> date | None:
        try:
            return date.fromisoformat(window.split("..")[0]) if window else None
        except ValueError:
            return None

    return first_day(tags.get("train_window")), first_day(tags.get("test_window"))


def day_metrics(day: pd.DataFrame, target: str, matured: bool, reference: dict[str, list[float]], k: int = K) -> dict:
    """The metrics of one model version on one day's scored transactions."""
    n = len(day)
    alerts = int((day["label"] == "fraud").sum()) if target == "fraud" else 0
    out: dict = {
        "n_scored": n,
        "n_alerts": alerts,
        "alert_rate": alerts / n if n else None,
        "labels_matured": matured,
        "mean_score": float(day["score"].mean()) if n else None,
        "psi": metrics.psi(day["score"].to_numpy(), reference) if reference else None,
        "n_positive": None,
        "roc_auc": None,
        "average_precision": None,
        "card_precision_at_k": None,
        "macro_f1": None,
    }
    if not matured:
        return out
    y = (day["is_fraud"] if target == "fraud" else day["status"] != "Success").astype(int).to_numpy()
    out["n_positive"] = int(y.sum())
    out["roc_auc"] = metrics.safe_auc(y, day["score"].to_numpy())
    out["average_precision"] = metrics.safe_ap(y, day["score"].to_numpy())
    if target == "fraud":
        frame = day[["transaction_date", "account_id", "score"]].assign(y=y)
        out["card_precision_at_k"] = metrics.card_precision_at_k(frame, k)
    else:
        classes = ("Success", "Pending", "Failed")
        out["macro_f1"] = metrics.multiclass_report(day["status"], day["label"], None, classes)["macro_f1"]
    return out


def run(settings: Settings, k: int = K) -> MonitorResult:
    """Recompute `gold.ml_model_metrics` from the scores and the labels known now (idempotent)."""
    targets = {name: target for target, name in registry.MODEL_NAMES.items()}
    mlc = registry.client(settings)
    with connect(settings) as wh, ops.step(wh, "ml.monitor") as step:
        features.check_silver(wh)
        features.prepare_tail(wh)
        ensure_tables(wh)
        wh.execute(DDL)
        wh.execute(features.dialect_sql(wh, MIGRATION))
        scores = _scores(wh)
        as_of = wh.fetchone(f"select max(transaction_date) from ({features.transactions_sql()})")
        last_day = as_of[0] if as_of else None
        rows = []
        latest: dict[str, dict[str, float | None]] = {}
        computed_at = ops.now()
        for (name, version), group in scores.groupby(["model_name", "model_version"], sort=True):
            target = targets.get(name, "fraud")
            mv = mlc.get_model_version(name, version)
            reference = registry.ModelInfo(name, version, mv.run_id, dict(mv.tags)).psi_reference
            seen_from, seen_until = in_sample_days(dict(mv.tags))
            matured_until = last_day - timedelta(days=TARGET_DEFAULTS[target]["maturity_days"])
            for day, part in group.groupby("transaction_date", sort=True):
                d = pd.Timestamp(day).date()
                m = day_metrics(part, target, d <= matured_until, reference, k)
                rows.append(
                    {
                        "metric_date": d,
                        "model_name": name,
                        "model_version": version,
                        "target": target,
                        "k": k,
                        "computed_at": computed_at,
                        "is_in_sample": None if seen_until is None else (seen_from or d) <= d < seen_until,
                        **m,
                    }
                )
                if m["labels_matured"]:
                    latest[f"{name} v{version}"] = {key: m[key] for key in ("roc_auc", "average_precision", "psi")}
        out = pd.DataFrame(rows)
        with wh.transaction():
            wh.execute("delete from gold.ml_model_metrics")
            if not out.empty:
                import pyarrow as pa

                table = pa.Table.from_pandas(out.replace({np.nan: None}), preserve_index=False)
                wh.append_arrow("gold.ml_model_metrics", table)
        step.rows_out = len(out)
    log.info("model metrics: %d day(s) x model version(s)", len(out))
    return MonitorResult(rows=len(out), latest=latest)
