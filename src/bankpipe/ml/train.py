"""`bankpipe ml train --target fraud|status`: a time-split scikit-learn pipeline, compared and registered.

The split follows the Fraud Detection Handbook: train on earlier days, leave a gap the length of
the label delay, test on later days. Training labels are what the bank knew when the test period
began (fraud reported before it); test labels are everything known now, and the last
`maturity_days` are left out of the test because their fraud is mostly not reported yet.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from bankpipe import ops
from bankpipe.errors import BankpipeError
from bankpipe.ml import features, metrics, registry
from bankpipe.settings import Settings
from bankpipe.warehouse import connect

log = logging.getLogger(__name__)

TARGETS = ("fraud", "status")
STATUS_CLASSES = ("Success", "Pending", "Failed")
# Per target: days between the training and test windows, and days at the end of the data whose
# labels are not mature yet. Status is known at once; fraud is reported days to weeks later.
TARGET_DEFAULTS: dict[str, dict[str, int]] = {
    "fraud": {"gap_days": 7, "maturity_days": 14},
    "status": {"gap_days": 0, "maturity_days": 0},
}


@dataclass(frozen=True)
class TrainConfig:
    """How to split and fit; None means the target's default from TARGET_DEFAULTS."""

    test_days: int = 14
    gap_days: int | None = None
    maturity_days: int | None = None
    # The first days have no 30-day history yet; they would teach the model that "no history" is normal.
    warmup_days: int = 7
    k: int = 100
    random_state: int = 42
    lr_c: float = 1.0
    tree_max_iter: int = 200
    # OpenMP/BLAS threads for fitting. On a small shared machine, busy-waiting threads made fitting
    # 15x slower than one thread; raise it on a dedicated host.
    threads: int = 1

    def resolved(self, target: str) -> tuple[int, int]:
        """(gap_days, maturity_days) for a target."""
        d = TARGET_DEFAULTS[target]
        return (
            d["gap_days"] if self.gap_days is None else self.gap_days,
            d["maturity_days"] if self.maturity_days is None else self.maturity_days,
        )


@dataclass(frozen=True)
class Split:
    """Day windows (end exclusive) and the training label cut-off."""

    train_start: date
    train_end: date
    test_start: date
    test_end: date
    label_cutoff: datetime  # training labels: fraud reported before this moment

    @property
    def test_window(self) -> str:
        return f"{self.test_start}..{self.test_end - timedelta(days=1)}"

    def as_params(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


@dataclass
class TrainResult:
    """What one training run produced and decided."""

    target: str
    model: registry.ModelInfo
    promoted: bool
    split: Split
    primary_metric: str
    new_metric: float | None
    champion_metric: float | None
    previous_champion: str | None
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)  # model kind → metrics
    seconds: float = 0.0

    def headline(self) -> list[str]:
        """Human-readable lines: the three models side by side and the promotion decision."""
        lines = [f"{self.target} model, test window {self.split.test_window}:"]
        keys = (
            [
                "roc_auc",
                "average_precision",
                "card_precision_at_100",
                "card_precision_ceiling_at_100",
                "precision",
                "recall",
            ]
            if self.target == "fraud"
            else ["macro_f1", "accuracy", "roc_auc_ovr"]
        )
        for kind, rep in self.reports.items():
            vals = ", ".join(f"{k}={_fmt(rep.get(k))}" for k in keys if k in rep)
            lines.append(f"  {kind:<8} {vals}")
        decision = "promoted to champion" if self.promoted else "not promoted"
        vs = f" (champion v{self.previous_champion}: {_fmt(self.champion_metric)})" if self.previous_champion else ""
        lines.append(
            f"  {self.model.name} v{self.model.version}: {self.primary_metric}={_fmt(self.new_metric)}{vs} → {decision}"
        )
        return lines


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


# --- split ----------------------------------------------------------------------------------------


class NotEnoughData(BankpipeError):
    """The warehouse holds too little history (or too few labels) to train and test a model."""


def time_split(first_day: date, last_day: date, target: str, cfg: TrainConfig) -> Split:
    """Train / gap / test day windows over [first_day, last_day]; raises when the data is too short."""
    gap, maturity = cfg.resolved(target)
    test_end = last_day + timedelta(days=1 - maturity)
    test_start = test_end - timedelta(days=cfg.test_days)
    train_end = test_start - timedelta(days=gap)
    train_start = first_day + timedelta(days=cfg.warmup_days)
    if train_end - train_start < timedelta(days=max(cfg.test_days // 2, 1)):
        need = cfg.warmup_days + cfg.test_days // 2 + gap + cfg.test_days + maturity
        raise NotEnoughData(
            f"not enough history to train the {target} model: {first_day}..{last_day} is "
            f"{(last_day - first_day).days + 1} days, need at least {need} "
            f"(warm-up {cfg.warmup_days} + train + gap {gap} + test {cfg.test_days} + maturity {maturity})"
        )
    return Split(train_start, train_end, test_start, test_end, datetime.combine(test_start, datetime.min.time()))


# --- models ---------------------------------------------------------------------------------------


def make_lr(numeric: list[str], categorical: list[str], cfg: TrainConfig) -> Pipeline:
    """Scaling + one-hot + class-weighted logistic regression (multinomial for more than two classes)."""
    pre = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())]
                ),
                numeric,
            ),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    # lbfgs fits a true multinomial model for 3 classes (scikit-learn ≥ 1.5 needs no multi_class flag).
    lr = LogisticRegression(class_weight="balanced", C=cfg.lr_c, max_iter=2000, random_state=cfg.random_state)
    return Pipeline([("features", pre), ("model", lr)])


def make_tree(numeric: list[str], categorical: list[str], cfg: TrainConfig) -> Pipeline:
    """HistGradientBoosting on the same features (native missing values and categories)."""
    pre = ColumnTransformer(
        [
            ("numeric", "passthrough", numeric),
            (
                "categorical",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
                categorical,
            ),
        ]
    )
    mask = [False] * len(numeric) + [True] * len(categorical)
    # Regularised: with defaults (lr 0.1, leaves of 20) the rare positives drove leaves to
    # probabilities of exactly 0 and 1, and the ties cost 0.19 AUC on the 1M-transaction test window.
    hgb = HistGradientBoostingClassifier(
        max_iter=cfg.tree_max_iter,
        learning_rate=0.05,
        min_samples_leaf=100,
        l2_regularization=1.0,
        categorical_features=mask,
        early_stopping=False,
        random_state=cfg.random_state,
    )
    return Pipeline([("features", pre), ("model", hgb)])


# Rules a fraud analyst would write first; the score is the share of rules a transaction breaks.
def fraud_rules_score(df: pd.DataFrame) -> np.ndarray:
    """The rules baseline's fraud score in [0, 1]."""
    flags = [
        df["log_amount_to_avg_30d"] > np.log1p(5.0),  # five times the account's 30-day average
        df["txn_count_1h"] >= 2,  # a burst
        (df["is_night"] == 1) & (df["transaction_type"] == "Transfer"),
        (df["is_new_counterparty"] == 1) & (df["transaction_type"] == "Transfer"),
        df["is_far_from_home"] == 1,
        df["point_risk_30d"] > 0.05,  # a place and channel with recently reported fraud
    ]
    return np.sum([f.fillna(False).to_numpy(dtype=float) for f in flags], axis=0) / len(flags)


FRAUD_RULES_THRESHOLD = 2 / 6


class StatusRules:
    """Baseline for status: the most frequent status of the transaction's type and channel in training."""

    keys = ("transaction_type", "channel")

    def fit(self, df: pd.DataFrame, y: pd.Series) -> StatusRules:
        counts = pd.crosstab([df[k] for k in self.keys], y).reindex(columns=list(STATUS_CLASSES), fill_value=0)
        self.shares_ = counts.div(counts.sum(axis=1), axis=0)
        total = y.value_counts(normalize=True).reindex(list(STATUS_CLASSES), fill_value=0.0)
        self.prior_ = total.to_numpy()
        return self

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        idx = pd.MultiIndex.from_frame(df[list(self.keys)])
        proba = self.shares_.reindex(idx).to_numpy(dtype=float, copy=True)
        missing = np.isnan(proba).any(axis=1)
        proba[missing] = self.prior_
        return proba

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return np.asarray(STATUS_CLASSES)[self.predict_proba(df).argmax(axis=1)]


# --- data -----------------------------------------------------------------------------------------


def load_data(settings: Settings, target: str, cfg: TrainConfig) -> tuple[pd.DataFrame, Split]:
    """Features of the train and test windows, with the label columns `y_train` and `y_test`."""
    with connect(settings) as wh:
        features.check_silver(wh)
        features.prepare_tail(wh)
        row = wh.fetchone(
            features.dialect_sql(
                wh,
                f"select min(transaction_date), max(transaction_date), count(*) from ({features.transactions_sql()})",
            )
        )
        if not row or not row[2]:
            raise BankpipeError("no transactions in silver yet: run `bankpipe ingest stream` and `bankpipe transform`")
        split = time_split(row[0], row[1], target, cfg)
        log.info("computing features for %s..%s", split.train_start, split.test_end - timedelta(days=1))
        # The features are computed in the warehouse; only the window's feature rows and the labels
        # come back, because scikit-learn fits in memory here.
        df = features.compute(wh, "transaction_date >= ? and transaction_date < ?", [split.train_start, split.test_end])
        reports = features.fetch_df(wh, features.fraud_labels_sql()) if target == "fraud" else None
    df["is_test"] = (df["transaction_date"] >= pd.Timestamp(split.test_start)).to_numpy()
    df = df[df["is_test"] | (df["transaction_date"] < pd.Timestamp(split.train_end))].reset_index(drop=True)
    if target == "fraud":
        assert reports is not None
        reported = df["transaction_id"].map(reports.groupby("transaction_id")["reported_at"].min())
        df["y_test"] = reported.notna().astype(int)
        df["y_train"] = (reported < pd.Timestamp(split.label_cutoff)).fillna(False).astype(int)
    else:
        df["y_test"] = df["status"]
        df["y_train"] = df["status"]
    return df, split


# --- training -------------------------------------------------------------------------------------


def _fraud_reports(
    train: pd.DataFrame, test: pd.DataFrame, models: dict[str, Any], num: list[str], cat: list[str], cfg: TrainConfig
) -> tuple[dict[str, dict[str, Any]], pd.DataFrame, float, np.ndarray]:
    cols = num + cat
    y_train, y_test = train["y_train"].to_numpy(), test["y_test"].to_numpy()
    train_lr = models["lr"].predict_proba(train[cols])[:, 1]
    threshold = metrics.best_f1_threshold(y_train, train_lr)
    frame = test[["transaction_date", "account_id"]]
    scores = {
        "lr": models["lr"].predict_proba(test[cols])[:, 1],
        "tree": models["tree"].predict_proba(test[cols])[:, 1],
        "rules": fraud_rules_score(test),
    }
    tree_threshold = metrics.best_f1_threshold(y_train, models["tree"].predict_proba(train[cols])[:, 1])
    thresholds = {"lr": threshold, "tree": tree_threshold, "rules": FRAUD_RULES_THRESHOLD}
    reports = {kind: metrics.binary_report(y_test, s, thresholds[kind], frame, cfg.k) for kind, s in scores.items()}
    predictions = test[["transaction_id", "account_id", "transaction_date"]].assign(
        y=y_test, **{f"score_{kind}": s for kind, s in scores.items()}
    )
    return reports, predictions, threshold, train_lr


def _status_reports(
    train: pd.DataFrame, test: pd.DataFrame, models: dict[str, Any], num: list[str], cat: list[str]
) -> tuple[dict[str, dict[str, Any]], pd.DataFrame, np.ndarray, list[float]]:
    cols = num + cat
    y_test = test["y_test"].to_numpy()
    reports, predictions = {}, test[["transaction_id", "account_id", "transaction_date"]].assign(y=y_test)
    offsets: dict[str, list[float] | None] = {"rules": None}
    train_proba = {}
    for kind in ("lr", "tree"):
        # The decision offsets are learnt on the training window only, for both models alike.
        train_proba[kind] = _ordered_proba(models[kind], train[cols])
        offsets[kind] = metrics.class_offsets(train["y_train"].to_numpy(), train_proba[kind], STATUS_CLASSES)
    for kind in ("lr", "tree", "rules"):
        x = test if kind == "rules" else test[cols]
        proba = _ordered_proba(models[kind], x)
        pred = np.asarray(STATUS_CLASSES)[metrics.decide(proba, offsets[kind])]
        reports[kind] = metrics.multiclass_report(y_test, pred, proba, STATUS_CLASSES)
        reports[kind]["class_offsets"] = offsets[kind]
        predictions[f"pred_{kind}"] = pred
        predictions[f"score_{kind}"] = 1.0 - proba[:, 0]  # probability of not succeeding
    train_score = 1.0 - train_proba["lr"][:, 0]
    return reports, predictions, train_score, offsets["lr"] or [0.0] * len(STATUS_CLASSES)


def _ordered_proba(model: Any, x: pd.DataFrame) -> np.ndarray:
    """Class probabilities in STATUS_CLASSES order (a class missing from training gets 0)."""
    proba = model.predict_proba(x)
    classes = list(getattr(model, "classes_", STATUS_CLASSES))
    out = np.zeros((len(x), len(STATUS_CLASSES)))
    for i, c in enumerate(STATUS_CLASSES):
        if c in classes:
            out[:, i] = proba[:, classes.index(c)]
    return out


def _evaluate(
    target: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    models: dict[str, Any],
    num: list[str],
    cat: list[str],
    cfg: TrainConfig,
) -> tuple[dict[str, dict[str, Any]], pd.DataFrame, float, np.ndarray]:
    """Metrics of LR, tree and rules on the test window, test predictions, LR threshold and training scores."""
    if target == "fraud":
        return _fraud_reports(train, test, models, num, cat, cfg)
    models["rules"] = StatusRules().fit(train, train["y_train"])
    reports, predictions, train_score, _ = _status_reports(train, test, models, num, cat)
    return reports, predictions, 0.5, train_score


def champion_metric_on(model: Any, info: registry.ModelInfo, test: pd.DataFrame, target: str, k: int) -> float | None:
    """The current champion's primary metric on this run's test window (None if it cannot be scored)."""
    if info.tags.get("feature_version") != features.FEATURE_VERSION:
        log.info("champion v%s uses feature version %s: not comparable", info.version, info.tags.get("feature_version"))
        return None
    cols = json.loads(info.tags.get("features", "[]"))
    try:
        if target == "fraud":
            score = model.predict_proba(test[cols])[:, 1]
            return metrics.safe_ap(test["y_test"].to_numpy(), score)
        proba = _ordered_proba(model, test[cols])
        pred = np.asarray(STATUS_CLASSES)[metrics.decide(proba, json.loads(info.tags.get("class_offsets", "null")))]
        return metrics.multiclass_report(test["y_test"].to_numpy(), pred, None, STATUS_CLASSES)["macro_f1"]
    except (KeyError, ValueError) as exc:
        log.warning("champion v%s cannot score this test window (%s): treated as beaten", info.version, exc)
        return None


def run(settings: Settings, target: str = "fraud", config: TrainConfig | None = None) -> TrainResult:
    """Train LR (plus tree and rules for comparison), log and register it, promote it if it wins."""
    if target not in TARGETS:
        raise BankpipeError(f"unknown target {target!r}: choose fraud or status")
    cfg = config or TrainConfig()
    started = time.monotonic()
    df, split = load_data(settings, target, cfg)
    train, test = df[~df["is_test"]], df[df["is_test"]]
    num, cat = features.feature_columns(target)
    cols = num + cat
    _check_classes(train, test, target, split)
    log.info(
        "training %s on %d transactions (%s..%s), testing on %d",
        target,
        len(train),
        split.train_start,
        split.train_end - timedelta(days=1),
        len(test),
    )

    models: dict[str, Any] = {"lr": make_lr(num, cat, cfg), "tree": make_tree(num, cat, cfg)}
    with threadpool_limits(cfg.threads):
        for kind, model in models.items():
            t0 = time.monotonic()
            model.fit(train[cols], train["y_train"])
            log.info("fitted %s in %.1fs", kind, time.monotonic() - t0)
        reports, predictions, threshold, train_score = _evaluate(target, train, test, models, num, cat, cfg)
    primary = registry.PRIMARY_METRIC[target]
    new_metric = reports["lr"].get(primary)

    current = registry.load_champion(settings, target)
    champ_metric = champion_metric_on(current[0], current[1], test, target, cfg.k) if current else None
    promote = registry.should_promote(new_metric, champ_metric)

    run_dir = _run_dir(settings, target)
    pred_path = run_dir / "test_predictions.parquet"
    predictions.to_parquet(pred_path, index=False)
    metrics_path = run_dir / "metrics.json"
    metrics_path.write_text(json.dumps({"split": split.as_params(), "reports": reports}, indent=2, default=str))
    trained_at = ops.now().strftime("%Y%m%dT%H%M%S")
    tags = {
        "target": target,
        "feature_version": features.FEATURE_VERSION,
        "features": json.dumps(cols),
        "threshold": repr(float(threshold)),
        "class_offsets": json.dumps(reports["lr"].get("class_offsets")),
        "psi_reference": json.dumps(metrics.psi_reference(np.asarray(train_score))),
        "test_window": split.test_window,
        "primary_metric": primary,
        f"test_{primary}": _fmt(new_metric),
        "trained_at": trained_at,
    }
    params = {
        "target": target,
        **split.as_params(),
        **{f"cfg_{k}": v for k, v in asdict(cfg).items()},
        "n_train": len(train),
        "n_test": len(test),
        "feature_version": features.FEATURE_VERSION,
        "numeric_features": ",".join(num),
        "categorical_features": ",".join(cat),
    }
    flat = {
        f"{kind}_{k}": float(v) for kind, rep in reports.items() for k, v in rep.items() if isinstance(v, int | float)
    }
    flat[f"test_{primary}"] = new_metric if new_metric is not None else float("nan")
    info = registry.log_model(
        settings, target, models["lr"], params=params, metrics=flat, tags=tags, artifacts=[pred_path, metrics_path]
    )
    decision = {
        "promoted": str(promote).lower(),
        "champion_before": current[1].version if current else "none",
        f"champion_{primary}_same_window": _fmt(champ_metric),
    }
    registry.tag_version(settings, info, decision)
    if promote:
        registry.set_champion(settings, info)
    else:
        log.info(
            "%s v%s not promoted: %s %s ≤ champion's %s on %s",
            info.name,
            info.version,
            primary,
            _fmt(new_metric),
            _fmt(champ_metric),
            split.test_window,
        )
    return TrainResult(
        target=target,
        model=info,
        promoted=promote,
        split=split,
        primary_metric=primary,
        new_metric=new_metric,
        champion_metric=champ_metric,
        previous_champion=current[1].version if current else None,
        reports=reports,
        seconds=time.monotonic() - started,
    )


def _check_classes(train: pd.DataFrame, test: pd.DataFrame, target: str, split: Split) -> None:
    if train.empty or test.empty:
        raise BankpipeError(f"empty {'training' if train.empty else 'test'} window for {target} ({split})")
    if train["y_train"].nunique() < 2:
        what = "fraud reported before " + str(split.label_cutoff) if target == "fraud" else "more than one status"
        raise BankpipeError(f"cannot train the {target} model: the training window has no {what}")


def _run_dir(settings: Settings, target: str) -> Path:
    path = settings.state / "ml" / "runs" / f"{target}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_champions(settings: Settings, *, retrain: bool = False) -> list[str]:
    """Fraud and status: train when there is no champion (or always, with `retrain`); one line per target.

    Too little history is not a failure here: a small dataset (the seed's sample files span two days)
    still runs end to end, the model waits for history and scoring says there is no champion yet.
    """
    said = []
    for target in ("fraud", "status"):
        try:
            result = run(settings, target) if retrain else ensure_champion(settings, target)
        except NotEnoughData as exc:
            log.warning("%s", exc)
            said.append(f"{target}: skipped ({exc})")
            continue
        said.append(f"{target}: trained" if result is not None else f"{target}: champion already registered")
    return said


def ensure_champion(settings: Settings, target: str = "fraud", config: TrainConfig | None = None) -> TrainResult | None:
    """Train only when the target has no champion yet (what `bankpipe run` needs); None when it has one."""
    if registry.champion(settings, target) is not None:
        log.info(
            "%s already has a champion: training skipped (bankpipe ml train retrains)", registry.model_name(target)
        )
        return None
    return run(settings, target, config)
