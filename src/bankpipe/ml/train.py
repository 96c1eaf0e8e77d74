"""`bankpipe ml train --target fraud|status`: train | validation | gap | test by time, compared and registered.

The split follows the Fraud Detection Handbook: train on earlier days, choose on the validation days
that follow, leave a gap the length of the label delay, test on later days. Everything the model
decides — LR's C, the tree's regularisation, the calibration of P(fraud) and the alert threshold —
is chosen on the validation window only; the test window is only measured. Training and validation
labels are what the bank knew at the cut-off (the test window's first moment); test labels are
everything known now, and the last `maturity_days` are left out because their fraud is mostly not
reported yet. The fraud model is then evaluated prequentially: for each of the last few weeks, the
same procedure is rerun on what precedes it and tested on the week, with bootstrap intervals.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, SplineTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from bankpipe import ops
from bankpipe.errors import BankpipeError
from bankpipe.ml import features, metrics, registry
from bankpipe.settings import Settings
from bankpipe.warehouse import connect

log = logging.getLogger(__name__)

TARGETS = ("fraud", "status")
STATUS_CLASSES = ("Success", "Pending", "Failed")
# Per target: days between the validation and test windows, and days at the end of the data whose
# labels are not mature yet. Status is known at once; fraud is reported days to weeks later.
TARGET_DEFAULTS: dict[str, dict[str, int]] = {
    "fraud": {"gap_days": 7, "maturity_days": 14},
    "status": {"gap_days": 0, "maturity_days": 0},
}
# Where `bankpipe run --demo` leaves the generator's ground truth (per-scenario metrics read it if present).
DEMO_GROUND_TRUTH = Path("demo") / "ground_truth" / "transactions.parquet"


@dataclass(frozen=True)
class TrainConfig:
    """How to split, search and evaluate; None means the target's default (or the settings')."""

    test_days: int = 14
    # A week, as the handbook's windows: enough positives for Platt's two parameters and the budget.
    validation_days: int = 7
    gap_days: int | None = None
    maturity_days: int | None = None
    # The first days have no 30-day history yet; they would teach the model that "no history" is normal.
    warmup_days: int = 7
    k: int = 100
    random_state: int = 42
    # LR's inverse regularisation: a fixed value, or None to choose from lr_grid on validation.
    lr_c: float | None = None
    lr_grid: tuple[float, ...] = (0.01, 0.1, 1.0)
    tree_max_iter: int = 200
    # The tree's regularisation candidates (min_samples_leaf, l2_regularization), chosen on validation.
    tree_grid: tuple[tuple[int, float], ...] = ((100, 1.0), (400, 10.0))
    # Platt scaling keeps the ranking (AUC, AP, CP@k unchanged) and needs few validation positives.
    calibration: Literal["sigmoid", "isotonic"] = "sigmoid"
    alerts_per_day: int | None = None  # None: Settings.ml_alerts_per_day
    prequential_weeks: int = 4
    # Each prequential fold fits LR on at most this many training rows (all positives kept, negatives
    # sampled): the calibration on the fold's validation window undoes the sampling.
    prequential_max_train_rows: int = 300_000
    bootstrap: int = 200
    ground_truth: Path | None = None  # the generator's transactions.parquet, for per-scenario metrics
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
    """Day windows (end exclusive): train | validation | gap | test, and the label cut-off."""

    train_start: date
    train_end: date
    validation_start: date
    validation_end: date
    test_start: date
    test_end: date
    label_cutoff: datetime  # training and validation labels: fraud known before this moment

    @property
    def test_window(self) -> str:
        return f"{self.test_start}..{self.test_end - timedelta(days=1)}"

    @property
    def validation_window(self) -> str:
        return f"{self.validation_start}..{self.validation_end - timedelta(days=1)}"

    @property
    def validation_days(self) -> int:
        return (self.validation_end - self.validation_start).days

    @property
    def test_days(self) -> int:
        return (self.test_end - self.test_start).days

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
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)  # model kind → test metrics
    chosen: dict[str, Any] = field(default_factory=dict)  # what validation chose (C, tree, threshold)
    prequential: list[dict[str, Any]] = field(default_factory=list)  # one entry per test week
    seconds: float = 0.0

    def headline(self) -> list[str]:
        """Human-readable lines: the three models side by side, the weeks, the promotion decision."""
        lines = [
            f"{self.target} model, validation {self.split.validation_window}, test window {self.split.test_window}:"
        ]
        keys = (
            [
                "roc_auc",
                "average_precision",
                "card_precision_at_100",
                "card_precision_ceiling_at_100",
                "money_recall",
                "precision",
                "recall",
                "alerts_per_day",
            ]
            if self.target == "fraud"
            else ["macro_f1", "accuracy", "roc_auc_ovr"]
        )
        for kind, rep in self.reports.items():
            vals = ", ".join(f"{k}={_fmt(rep.get(k))}" for k in keys if k in rep)
            lines.append(f"  {kind:<8} {vals}")
        if self.chosen:
            lines.append("  chosen on validation: " + ", ".join(f"{k}={_fmt(v)}" for k, v in self.chosen.items()))
        lines += [f"  {line}" for line in prequential_lines(self.prequential)]
        decision = "promoted to champion" if self.promoted else "not promoted"
        vs = f" (champion v{self.previous_champion}: {_fmt(self.champion_metric)})" if self.previous_champion else ""
        lines.append(
            f"  {self.model.name} v{self.model.version}: {self.primary_metric}={_fmt(self.new_metric)}{vs} → {decision}"
        )
        return lines


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def prequential_lines(weeks: list[dict[str, Any]]) -> list[str]:
    """The prequential table as text: one line per test week, each metric with its 95% interval."""
    if not weeks:
        return []
    keys = (
        ("roc_auc", "AUC"),
        ("average_precision", "AP"),
        ("card_precision_at_100", "CP@100"),
        ("money_recall", "money recall"),
    )
    out = ["prequential (LR, bootstrap 95% intervals over accounts):"]
    for w in weeks:
        cells = []
        for key, label in keys:
            value, ci = w["metrics"].get(key), w["intervals"].get(key)
            cells.append(f"{label} {_fmt(value)}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
        out.append(
            f"  week {w['test']['start']}..{w['test']['end']} ({w['positives']} fraud / {w['n']}): " + ", ".join(cells)
        )
    return out


# --- split ----------------------------------------------------------------------------------------


class NotEnoughData(BankpipeError):
    """The warehouse holds too little history (or one class only) to train and test a model."""


def time_split(first_day: date, last_day: date, target: str, cfg: TrainConfig) -> Split:
    """Train / validation / gap / test day windows over [first_day, last_day]; raises when too short."""
    _, maturity = cfg.resolved(target)
    test_end = last_day + timedelta(days=1 - maturity)
    return _split_ending(first_day, test_end, cfg.test_days, target, cfg)


def _split_ending(first_day: date, test_end: date, test_days: int, target: str, cfg: TrainConfig) -> Split:
    gap, maturity = cfg.resolved(target)
    test_start = test_end - timedelta(days=test_days)
    validation_end = test_start - timedelta(days=gap)
    validation_start = validation_end - timedelta(days=cfg.validation_days)
    train_start = first_day + timedelta(days=cfg.warmup_days)
    if validation_start - train_start < timedelta(days=max(cfg.test_days // 2, 1)):
        need = cfg.warmup_days + cfg.test_days // 2 + cfg.validation_days + gap + cfg.test_days + maturity
        raise NotEnoughData(
            f"not enough history to train the {target} model: data up to {test_end - timedelta(days=1)} "
            f"from {first_day}, need at least {need} days (warm-up {cfg.warmup_days} + train + "
            f"validation {cfg.validation_days} + gap {gap} + test {cfg.test_days} + maturity {maturity})"
        )
    cutoff = datetime.combine(test_start, datetime.min.time())
    return Split(train_start, validation_start, validation_start, validation_end, test_start, test_end, cutoff)


# --- models ---------------------------------------------------------------------------------------


def amount_columns(numeric: list[str]) -> list[str]:
    """The inputs that measure this transaction's amount: in IDR and relative to the account's habits/balance."""
    return [c for c in numeric if c == "log_amount_idr" or c.startswith("log_amount_to_")]


def make_lr(numeric: list[str], categorical: list[str], cfg: TrainConfig, c: float | None = None) -> Pipeline:
    """Scaling + one-hot + class-weighted logistic regression (multinomial for more than two classes).

    The amount inputs also enter as a cubic B-spline basis (4 inner knots at quantiles): a linear term
    in log amount cannot express a threshold ("above X" rules, a habit multiple), a spline can. It
    raised AP on the handbook protocol and on a handbook variant (other seed and size), and left
    bankpipe's own demo data within noise (docs/ml.md, "Handbook benchmark").
    """
    amounts = amount_columns(numeric)
    parts: list[tuple[str, Any, list[str]]] = [
        (
            "numeric",
            Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())]),
            numeric,
        ),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
    ]
    if amounts:
        spline = SplineTransformer(n_knots=5, degree=3, knots="quantile", extrapolation="linear", include_bias=False)
        parts.append(
            (
                "amount_spline",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("spline", spline), ("scale", StandardScaler())]
                ),
                amounts,
            )
        )
    pre = ColumnTransformer(parts)
    c = c if c is not None else cfg.lr_c if cfg.lr_c is not None else 1.0
    # lbfgs fits a true multinomial model for 3 classes (scikit-learn ≥ 1.5 needs no multi_class flag).
    lr = LogisticRegression(class_weight="balanced", C=c, max_iter=2000, random_state=cfg.random_state)
    return Pipeline([("features", pre), ("model", lr)])


def make_tree(
    numeric: list[str], categorical: list[str], cfg: TrainConfig, leaf: int = 100, l2: float = 1.0
) -> Pipeline:
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
    # Regularised (the candidates in TrainConfig.tree_grid, chosen on validation): with defaults
    # (lr 0.1, leaves of 20) the rare positives drove leaves to probabilities of exactly 0 and 1.
    hgb = HistGradientBoostingClassifier(
        max_iter=cfg.tree_max_iter,
        learning_rate=0.05,
        min_samples_leaf=leaf,
        l2_regularization=l2,
        categorical_features=mask,
        early_stopping=False,
        random_state=cfg.random_state,
    )
    return Pipeline([("features", pre), ("model", hgb)])


def calibrate(model: Any, x: pd.DataFrame, y: np.ndarray, method: str = "sigmoid") -> CalibratedClassifierCV:
    """The fitted `model` with a calibration map fitted on (x, y) — the validation window — on top.

    Class weights make LR's raw scores far too high to read as P(fraud); the map makes them so
    (Platt scaling by default: monotone, so the ranking and AUC/AP/CP@k do not change).
    """
    with warnings.catch_warnings():
        # A frozen model is not refitted: the folds scikit-learn still draws (and warns about when a
        # class has fewer than five rows) only split identical predictions; one map is fitted on all.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return CalibratedClassifierCV(FrozenEstimator(model), method=method).fit(x, y)


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


def fraud_rules_ranking(df: pd.DataFrame) -> np.ndarray:
    """The rules' alert order: rules broken first, then the larger amount (ties would break the budget)."""
    amount = df["log_amount_idr"].fillna(0.0).to_numpy(dtype=float)
    # log amount < 40 for any real amount, so the tie-break never outweighs one more rule (1/6).
    return fraud_rules_score(df) + np.clip(amount, 0, 40) / 40 * 0.1


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
    """Features from the first training day to the test window's end, with labels (see `load`)."""
    df, split, _ = load(settings, target, cfg)
    return df, split


def load(settings: Settings, target: str, cfg: TrainConfig) -> tuple[pd.DataFrame, Split, pd.DataFrame | None]:
    """Features from the first training day to the test window's end, with labels; and the label history.

    Fraud: `y_test` (known now) and `y_train` (known before the split's cut-off); the third value
    is the label history (`features.fraud_labels_sql()` rows) for other cut-offs. Status: the
    status itself, and None.
    Every row of [train_start, test_end) is kept: the prequential folds reuse them.
    """
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
    df["amount_idr"] = np.expm1(df["log_amount_idr"].astype(float))
    if target == "fraud":
        assert reports is not None
        # Every version of every case with the interval it is in force: what the bank knew at any
        # moment (a case reversed later is fraud only while it stood), see fraud_labels_sql().
        df["y_test"] = labels_known_at(df, reports, None)
        df["y_train"] = labels_known_at(df, reports, split.label_cutoff)
    else:
        df["y_test"] = df["status"]
        df["y_train"] = df["status"]
    df["is_test"] = (df["transaction_date"] >= pd.Timestamp(split.test_start)).to_numpy()
    return df, split, reports


def labels_known_at(df: pd.DataFrame, labels: pd.DataFrame, cutoff: datetime | None) -> pd.Series:
    """Fraud labels of `df` as the bank knew them just before `cutoff` (None: now), from the label history."""
    known = features.fraud_known_at(labels, cutoff)
    return df["transaction_id"].isin(known).astype(int)


def _windows(
    df: pd.DataFrame, split: Split, target: str, labels: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, validation, test) rows of a split; `y` is the label each window may use."""
    day = pd.to_datetime(df["transaction_date"])
    if target == "fraud":
        assert labels is not None
        # Training and validation: as known at the cut-off; test: as known now.
        early = labels_known_at(df, labels, split.label_cutoff).to_numpy()
        y = np.where(day >= pd.Timestamp(split.test_start), df["y_test"].to_numpy(), early)
    else:
        y = df["status"].to_numpy()

    def window(lo: date, hi: date) -> pd.DataFrame:
        mask = ((day >= pd.Timestamp(lo)) & (day < pd.Timestamp(hi))).to_numpy()
        return df[mask].assign(y=y[mask])

    return (
        window(split.train_start, split.train_end),
        window(split.validation_start, split.validation_end),
        window(split.test_start, split.test_end),
    )


def _check_classes(train: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame, target: str, split: Split) -> None:
    """Raise NotEnoughData when a window is empty or training/validation hold one class only."""
    for name, part in (("training", train), ("validation", val), ("test", test)):
        if part.empty:
            raise NotEnoughData(f"cannot train the {target} model: empty {name} window ({split.as_params()})")
    for name, part in (("training", train), ("validation", val)):
        if part["y"].nunique() < 2:
            what = f"fraud known before {split.label_cutoff}" if target == "fraud" else "more than one status"
            raise NotEnoughData(f"cannot train the {target} model: the {name} window has no {what}")


def scenarios(path: Path | None) -> pd.Series | None:
    """transaction_id → fraud scenario from the generator's ground truth, if the file is there."""
    if path is None or not path.exists():
        return None
    truth = pd.read_parquet(path, columns=["transaction_id", "fraud_scenario"])
    truth = truth.dropna(subset=["fraud_scenario"])
    return truth.set_index("transaction_id")["fraud_scenario"].astype(str)


# --- choosing on validation ------------------------------------------------------------------------


def _subsample(train: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most `max_rows` rows: every positive, a random share of the negatives."""
    if len(train) <= max_rows:
        return train
    pos, neg = train[train["y"] == 1], train[train["y"] != 1]
    keep = neg.sample(n=max(max_rows - len(pos), 1), random_state=seed)
    return pd.concat([pos, keep]).sort_index()


def _fit_best(
    candidates: dict[str, Any], train: pd.DataFrame, val: pd.DataFrame, cols: list[str], judge: Any
) -> tuple[str, Any, dict[str, float | None]]:
    """Fit every candidate on train; the best by `judge(model, val)` on validation (first wins ties)."""
    best: tuple[str, Any, float] | None = None
    found: dict[str, float | None] = {}
    for name, model in candidates.items():
        t0 = time.monotonic()
        model.fit(train[cols], train["y"])
        value = judge(model, val)
        found[name] = value
        log.info("fitted %s in %.1fs: validation %s", name, time.monotonic() - t0, _fmt(value))
        if best is None or (value is not None and value > best[2]):
            best = (name, model, value if value is not None else -np.inf)
    assert best is not None
    return best[0], best[1], found


_EMPTY_WARNED: set[tuple[str, ...]] = set()


def _observed(numeric: list[str], train: pd.DataFrame) -> list[str]:
    """The numeric inputs with at least one value in the training window (the others cannot be learnt)."""
    empty = [c for c in numeric if not train[c].notna().any()]
    if empty:
        # E.g. balances and home cities when no master data was known yet at the transactions' time.
        # Every fold and target would say the same: a warning the first time, the rest in the log.
        level = logging.INFO if tuple(empty) in _EMPTY_WARNED else logging.WARNING
        _EMPTY_WARNED.add(tuple(empty))
        log.log(level, "no values in the training window, left out of the models: %s", ", ".join(empty))
    return [c for c in numeric if c not in empty]


def _lr_grid(cfg: TrainConfig) -> tuple[float, ...]:
    return (cfg.lr_c,) if cfg.lr_c is not None else cfg.lr_grid


def _fraud_ap(cols: list[str]) -> Any:
    return lambda model, val: metrics.safe_ap(val["y"].to_numpy(), model.predict_proba(val[cols])[:, 1])


def _fraud_lr(
    train: pd.DataFrame, val: pd.DataFrame, num: list[str], cat: list[str], cfg: TrainConfig
) -> tuple[CalibratedClassifierCV, float, dict[str, float | None]]:
    """LR with C chosen on validation AP, calibrated on validation: (model, C, validation AP per C)."""
    cols = num + cat
    candidates = {f"lr C={c}": make_lr(num, cat, cfg, c) for c in _lr_grid(cfg)}
    name, model, found = _fit_best(candidates, train, val, cols, _fraud_ap(cols))
    c = float(name.split("=", 1)[1])
    return calibrate(model, val[cols], val["y"].to_numpy(), cfg.calibration), c, found


def _ranked(part: pd.DataFrame, score: np.ndarray, threshold: float, k: int) -> metrics.Ranked:
    frame = part[["transaction_date", "account_id", "amount_idr"]].assign(y=part["y"].to_numpy(), score=score)
    return metrics.Ranked(frame, threshold, k)


def _fraud_report(
    test: pd.DataFrame, score: np.ndarray, threshold: float, cfg: TrainConfig, *, intervals: bool = True
) -> dict[str, Any]:
    """Binary metrics at the threshold, money-weighted recall, alerts a day, bootstrap intervals."""
    y = test["y"].to_numpy()
    frame = test[["transaction_date", "account_id"]]
    rep = metrics.binary_report(y, score, threshold, frame, cfg.k)
    ranked = _ranked(test, score, threshold, cfg.k)
    # The point estimates from the same computation as the intervals (scikit-learn's agree to an ulp).
    rep.update(ranked.metrics())
    rep["alerts_per_day"] = float(np.sum(score >= threshold)) / max(ranked.n_days, 1)
    if intervals:
        rep["intervals"] = ranked.bootstrap(cfg.bootstrap, seed=cfg.random_state)
    return rep


def fraud_fold(
    train: pd.DataFrame,
    val: pd.DataFrame,
    test: pd.DataFrame,
    split: Split,
    cfg: TrainConfig,
    alerts_per_day: int,
    *,
    with_tree: bool = True,
    columns: tuple[list[str], list[str]] | None = None,
) -> dict[str, Any]:
    """One train | validation | gap | test evaluation of the fraud models at the same daily alert budget.

    Returns `models` (kind → fitted model: LR calibrated, tree, None for rules), `reports` (kind → test
    metrics), `thresholds` and `validation` (what was chosen and the alerts a day it gives there),
    and the test `scores`. `columns` (numeric, categorical) replaces the model inputs (a comparison).
    """
    num, cat = columns or features.feature_columns("fraud")
    num = _observed(num, train)
    cols = num + cat
    lr, c, lr_found = _fraud_lr(train, val, num, cat, cfg)
    models: dict[str, Any] = {"lr": lr}
    chosen: dict[str, Any] = {"lr_c": c, "validation_ap_by_c": lr_found, "calibration": cfg.calibration}
    val_scores = {"lr": lr.predict_proba(val[cols])[:, 1], "rules": fraud_rules_ranking(val)}
    test_scores = {"lr": lr.predict_proba(test[cols])[:, 1], "rules": fraud_rules_ranking(test)}
    if with_tree:
        trees = {f"tree leaf={leaf} l2={l2}": make_tree(num, cat, cfg, leaf, l2) for leaf, l2 in cfg.tree_grid}
        name, tree, tree_found = _fit_best(trees, train, val, cols, _fraud_ap(cols))
        models["tree"] = tree
        chosen["tree"] = name
        chosen["validation_ap_by_tree"] = tree_found
        val_scores["tree"] = tree.predict_proba(val[cols])[:, 1]
        test_scores["tree"] = tree.predict_proba(test[cols])[:, 1]
    models["rules"] = None
    # The same daily budget for every model: equal alert volume on validation, then measured on test.
    thresholds = {
        kind: metrics.budget_threshold(s, split.validation_days, alerts_per_day) for kind, s in val_scores.items()
    }
    chosen["validation_alerts_per_day"] = {
        kind: float(np.sum(s >= thresholds[kind])) / split.validation_days for kind, s in val_scores.items()
    }
    order = [k for k in ("lr", "tree", "rules") if k in test_scores]
    reports = {kind: _fraud_report(test, test_scores[kind], thresholds[kind], cfg) for kind in order}
    return {
        "columns": cols,
        "models": models,
        "reports": reports,
        "thresholds": thresholds,
        "chosen": chosen,
        "scores": test_scores,
        "train_score": lr.predict_proba(train[cols])[:, 1],
    }


def prequential(
    df: pd.DataFrame,
    labels: pd.DataFrame,
    first_day: date,
    last_test_end: date,
    cfg: TrainConfig,
    alerts_per_day: int,
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """The last `cfg.prequential_weeks` weeks up to `last_test_end`, each tested by LR trained before it.

    Each week reruns the whole procedure (C, calibration and threshold chosen on its own validation
    window, labels as known at the week's first moment). Returns one entry per week and the
    weeks' test predictions (for the per-segment and per-scenario tables).
    """
    weeks, predictions = [], []
    for i in reversed(range(cfg.prequential_weeks)):
        test_end = last_test_end - timedelta(days=7 * i)
        try:
            split = _split_ending(first_day, test_end, 7, "fraud", cfg)
        except NotEnoughData as exc:
            log.warning("prequential week ending %s skipped: %s", test_end, exc)
            continue
        train, val, test = _windows(df, split, "fraud", labels)
        try:
            _check_classes(train, val, test, "fraud", split)
        except NotEnoughData as exc:
            log.warning("prequential week %s skipped: %s", split.test_window, exc)
            continue
        train = _subsample(train, cfg.prequential_max_train_rows, cfg.random_state)
        fold = fraud_fold(train, val, test, split, cfg, alerts_per_day, with_tree=False)
        rep = fold["reports"]["lr"]
        weeks.append(
            {
                "test": {"start": str(split.test_start), "end": str(split.test_end - timedelta(days=1))},
                "validation": {
                    "start": str(split.validation_start),
                    "end": str(split.validation_end - timedelta(days=1)),
                },
                "n": int(rep["n"]),
                "positives": int(rep["positives"]),
                "lr_c": fold["chosen"]["lr_c"],
                "threshold": fold["thresholds"]["lr"],
                "metrics": {k: rep.get(k) for k in EVAL_METRICS},
                "intervals": rep["intervals"],
                "rules": {k: fold["reports"]["rules"].get(k) for k in EVAL_METRICS},
            }
        )
        predictions.append(
            test[["transaction_id", "transaction_date", "account_id", "amount_idr", "segment", "y"]].assign(
                score=fold["scores"]["lr"], alert=fold["scores"]["lr"] >= fold["thresholds"]["lr"]
            )
        )
    pooled = pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame()
    return weeks, pooled


EVAL_METRICS = (
    "roc_auc",
    "average_precision",
    "card_precision_at_100",
    "money_recall",
    "precision",
    "recall",
    "alerts_per_day",
)


def by_group(
    pooled: pd.DataFrame, column: str, cfg: TrainConfig, *, keep_negatives: bool = False
) -> list[dict[str, Any]]:
    """Metrics with intervals per value of `column` over the prequential weeks' pooled predictions.

    Segments split every row; scenarios label positives only, so each scenario is measured as its
    positives against all negatives (`keep_negatives`). Recall at each week's own threshold.
    """
    out = []
    if pooled.empty or column not in pooled:
        return out
    for value in sorted(pooled[column].dropna().unique()):
        mask = pooled[column] == value
        if keep_negatives:
            mask = mask | (pooled["y"] == 0)
        part = pooled[mask]
        ranked = metrics.Ranked(
            part[["transaction_date", "account_id", "amount_idr", "y", "score", "alert"]], 0.5, cfg.k
        )
        point = ranked.metrics()
        positives = int(part["y"].sum())
        alerts = part["alert"].to_numpy()
        point["recall"] = float(np.sum(alerts & (part["y"] == 1))) / positives if positives else None
        if keep_negatives:
            point.pop(f"card_precision_at_{cfg.k}", None)  # other scenarios' fraud is out: CP@k is meaningless
        out.append(
            {
                column: str(value),
                "n": len(part),
                "positives": positives,
                "metrics": point,
                "intervals": {
                    k: v for k, v in ranked.bootstrap(cfg.bootstrap, seed=cfg.random_state).items() if k in point
                },
            }
        )
    return out


def status_input_comparison(settings: Settings, config: TrainConfig | None = None) -> dict[str, dict[str, Any]]:
    """The fraud LR without and with `status` as an input, on the same split and alert budget (measured once).

    Status is the bank's own authorisation outcome, known only after the decision point, so the
    fraud model does not use it; this shows what it was worth (issue 15, docs/ml.md).
    """
    cfg = config or TrainConfig()
    df, split, labels = load(settings, "fraud", cfg)
    train_, val, test = _windows(df, split, "fraud", labels)
    _check_classes(train_, val, test, "fraud", split)
    per_day = cfg.alerts_per_day or settings.ml_alerts_per_day
    num, cat = features.feature_columns("fraud")
    out = {"split": {"validation": split.validation_window, "test": split.test_window, "n_train": len(train_)}}
    with threadpool_limits(cfg.threads):
        for name, cats in (("without status", cat), ("with status", [*cat, "status"])):
            fold = fraud_fold(train_, val, test, split, cfg, per_day, with_tree=False, columns=(num, cats))
            out[name] = {**fold["reports"]["lr"], "lr_c": fold["chosen"]["lr_c"]}
    return out


# --- status ---------------------------------------------------------------------------------------


def _ordered_proba(model: Any, x: pd.DataFrame) -> np.ndarray:
    """Class probabilities in STATUS_CLASSES order (a class missing from training gets 0)."""
    proba = model.predict_proba(x)
    classes = list(getattr(model, "classes_", STATUS_CLASSES))
    out = np.zeros((len(x), len(STATUS_CLASSES)))
    for i, c in enumerate(STATUS_CLASSES):
        if c in classes:
            out[:, i] = proba[:, classes.index(c)]
    return out


def _status_judge(cols: list[str]) -> Any:
    """Validation macro-F1 after the decision offsets that validation itself chooses."""

    def judge(model: Any, val: pd.DataFrame) -> float:
        proba = _ordered_proba(model, val[cols])
        offsets = metrics.class_offsets(val["y"].to_numpy(), proba, STATUS_CLASSES)
        pred = np.asarray(STATUS_CLASSES)[metrics.decide(proba, offsets)]
        return metrics.multiclass_report(val["y"].to_numpy(), pred, None, STATUS_CLASSES)["macro_f1"]

    return judge


def status_fold(train: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame, cfg: TrainConfig) -> dict[str, Any]:
    """LR, tree and rules for status; C, the tree and the per-class decision offsets chosen on validation."""
    num, cat = features.feature_columns("status")
    num = _observed(num, train)
    cols = num + cat
    lrs = {f"lr C={c}": make_lr(num, cat, cfg, c) for c in _lr_grid(cfg)}
    lr_name, lr, lr_found = _fit_best(lrs, train, val, cols, _status_judge(cols))
    # The 3-class tree costs three trees a fit; as a comparison only, it takes the first candidate unsearched.
    leaf, l2 = cfg.tree_grid[0]
    trees = {f"tree leaf={leaf} l2={l2}": make_tree(num, cat, cfg, leaf, l2)}
    tree_name, tree, tree_found = _fit_best(trees, train, val, cols, _status_judge(cols))
    models: dict[str, Any] = {"lr": lr, "tree": tree, "rules": StatusRules().fit(train, train["y"])}
    chosen = {
        "lr_c": float(lr_name.split("=", 1)[1]),
        "validation_macro_f1_by_c": lr_found,
        "tree": tree_name,
        "validation_macro_f1_by_tree": tree_found,
    }
    y_test = test["y"].to_numpy()
    reports: dict[str, dict[str, Any]] = {}
    scores: dict[str, np.ndarray] = {}
    preds: dict[str, np.ndarray] = {}
    for kind in ("lr", "tree", "rules"):
        x_val, x_test = (val, test) if kind == "rules" else (val[cols], test[cols])
        offsets = None
        if kind != "rules":
            # The decision offsets are learnt on the validation window only, for both models alike.
            offsets = metrics.class_offsets(val["y"].to_numpy(), _ordered_proba(models[kind], x_val), STATUS_CLASSES)
        proba = _ordered_proba(models[kind], x_test)
        pred = np.asarray(STATUS_CLASSES)[metrics.decide(proba, offsets)]
        rep = metrics.multiclass_report(y_test, pred, proba, STATUS_CLASSES)
        rep["class_offsets"] = offsets
        # "Not Success" as a binary score, so the status model reports AUC / AP with intervals too.
        scores[kind], preds[kind] = 1.0 - proba[:, 0], pred
        binary = test.assign(y=(y_test != "Success").astype(int))
        ranked = _ranked(binary, scores[kind], 0.5, cfg.k)
        point = ranked.metrics()
        rep["not_success_roc_auc"] = point["roc_auc"]
        rep["not_success_average_precision"] = point["average_precision"]
        rep["intervals"] = {
            f"not_success_{k}": v
            for k, v in ranked.bootstrap(cfg.bootstrap, seed=cfg.random_state).items()
            if k in ("roc_auc", "average_precision")
        }
        reports[kind] = rep
    return {
        "columns": cols,
        "models": models,
        "reports": reports,
        "chosen": chosen,
        "scores": scores,
        "preds": preds,
        "train_score": 1.0 - _ordered_proba(lr, train[cols])[:, 0],
    }


# --- the run --------------------------------------------------------------------------------------


def champion_metric_on(model: Any, info: registry.ModelInfo, test: pd.DataFrame, target: str, k: int) -> float | None:
    """The current champion's primary metric on this run's test window (None if it cannot be scored)."""
    if info.tags.get("feature_version") != features.FEATURE_VERSION:
        log.info("champion v%s uses feature version %s: not comparable", info.version, info.tags.get("feature_version"))
        return None
    cols = json.loads(info.tags.get("features", "[]"))
    try:
        if target == "fraud":
            score = model.predict_proba(test[cols])[:, 1]
            return metrics.safe_ap(test["y"].to_numpy(), score)
        proba = _ordered_proba(model, test[cols])
        pred = np.asarray(STATUS_CLASSES)[metrics.decide(proba, json.loads(info.tags.get("class_offsets", "null")))]
        return metrics.multiclass_report(test["y"].to_numpy(), pred, None, STATUS_CLASSES)["macro_f1"]
    except (KeyError, ValueError) as exc:
        log.warning("champion v%s cannot score this test window (%s): treated as beaten", info.version, exc)
        return None


# The registry tags that carry each version's evaluation (read by report.report_json).
REPORT_METRICS = {
    "fraud": (*EVAL_METRICS, "card_precision_ceiling_at_100", "threshold", "f1", "n", "positives"),
    "status": ("macro_f1", "accuracy", "roc_auc_ovr", "not_success_roc_auc", "not_success_average_precision", "n"),
}


def _rounded(value: Any) -> Any:
    """Floats to 5 decimals (registry tags are size-limited), recursively."""
    if isinstance(value, float):
        return None if np.isnan(value) else round(value, 5)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def run(settings: Settings, target: str = "fraud", config: TrainConfig | None = None) -> TrainResult:
    """Train LR (plus tree and rules for comparison), evaluate, log and register it, promote it if it wins."""
    if target not in TARGETS:
        raise BankpipeError(f"unknown target {target!r}: choose fraud or status")
    cfg = config or TrainConfig()
    started = time.monotonic()
    df, split, labels = load(settings, target, cfg)
    train, val, test = _windows(df, split, target, labels)
    _check_classes(train, val, test, target, split)
    per_day = cfg.alerts_per_day or settings.ml_alerts_per_day
    log.info(
        "training %s on %d transactions (%s..%s), validating on %d (%s), testing on %d (%s)",
        target,
        len(train),
        split.train_start,
        split.train_end - timedelta(days=1),
        len(val),
        split.validation_window,
        len(test),
        split.test_window,
    )
    weeks: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    with threadpool_limits(cfg.threads):
        if target == "fraud":
            fold = fraud_fold(train, val, test, split, cfg, per_day)
            threshold = fold["thresholds"]["lr"]
            fold["chosen"]["alerts_per_day"] = per_day
            fold["chosen"]["threshold"] = threshold
            first_day = split.train_start - timedelta(days=cfg.warmup_days)
            t0 = time.monotonic()
            assert labels is not None
            weeks, pooled = prequential(df, labels, first_day, split.test_end, cfg, per_day)
            truth = scenarios(cfg.ground_truth or settings.state / DEMO_GROUND_TRUTH)
            extra["per_segment"] = by_group(pooled, "segment", cfg)
            if truth is not None and not pooled.empty:
                pooled = pooled.assign(scenario=pooled["transaction_id"].map(truth))
                extra["per_scenario"] = by_group(pooled, "scenario", cfg, keep_negatives=True)
            log.info("prequential evaluation over %d weeks in %.1fs", len(weeks), time.monotonic() - t0)
        else:
            fold = status_fold(train, val, test, cfg)
            threshold = 0.5
    reports, chosen, models, cols = fold["reports"], fold["chosen"], fold["models"], fold["columns"]
    num, cat = features.feature_columns(target)
    primary = registry.PRIMARY_METRIC[target]
    new_metric = reports["lr"].get(primary)

    current = registry.load_champion(settings, target)
    champ_metric = champion_metric_on(current[0], current[1], test, target, cfg.k) if current else None
    promote = registry.should_promote(new_metric, champ_metric)

    predictions = test[["transaction_id", "account_id", "transaction_date"]].assign(
        y=test["y"].to_numpy(), **{f"score_{kind}": s for kind, s in fold["scores"].items()}
    )
    for kind, pred in fold.get("preds", {}).items():
        predictions[f"pred_{kind}"] = pred
    run_dir = _run_dir(settings, target)
    pred_path = run_dir / "test_predictions.parquet"
    predictions.to_parquet(pred_path, index=False)
    metrics_path = run_dir / "metrics.json"
    body = {"split": split.as_params(), "reports": reports, "chosen": chosen, "prequential": weeks, **extra}
    metrics_path.write_text(json.dumps(_rounded(body), indent=2, default=str))
    trained_at = ops.now().strftime("%Y%m%dT%H%M%S")
    lr_report = reports["lr"]
    tags = {
        "target": target,
        "feature_version": features.FEATURE_VERSION,
        "features": json.dumps(cols),
        "threshold": repr(float(threshold)),
        "class_offsets": json.dumps(lr_report.get("class_offsets")),
        "psi_reference": json.dumps(metrics.psi_reference(np.asarray(fold["train_score"]))),
        "test_window": split.test_window,
        "test_start": str(split.test_start),
        "test_end": str(split.test_end - timedelta(days=1)),
        "train_window": f"{split.train_start}..{split.train_end - timedelta(days=1)}",
        "validation_window": split.validation_window,
        "label_cutoff": str(split.label_cutoff),
        "lr_c": repr(chosen["lr_c"]),
        "calibration": cfg.calibration if target == "fraud" else "none",
        "alerts_per_day": str(per_day) if target == "fraud" else "",
        "metrics": json.dumps(_rounded({k: lr_report.get(k) for k in REPORT_METRICS[target]})),
        "intervals": json.dumps(_rounded(lr_report.get("intervals", {}))),
        "primary_metric": primary,
        f"test_{primary}": _fmt(new_metric),
        "trained_at": trained_at,
    }
    preq = json.dumps(_rounded([{k: w[k] for k in ("test", "n", "positives", "metrics", "intervals")} for w in weeks]))
    # Model version tags hold at most 5,000 characters; the full table is in metrics.json either way.
    tags["prequential"] = preq if len(preq) <= 5000 else json.dumps({"artifact": "metrics.json"})
    params = {
        "target": target,
        **split.as_params(),
        **{f"cfg_{k}": v for k, v in asdict(cfg).items()},
        "n_train": len(train),
        "n_validation": len(val),
        "n_test": len(test),
        "feature_version": features.FEATURE_VERSION,
        "numeric_features": ",".join(c for c in num if c in cols),
        "categorical_features": ",".join(cat),
    }
    flat = {
        f"{kind}_{k}": float(v)
        for kind, rep in reports.items()
        for k, v in rep.items()
        if isinstance(v, int | float) and v is not None
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
        chosen=chosen,
        prequential=weeks,
        seconds=time.monotonic() - started,
    )


def _run_dir(settings: Settings, target: str) -> Path:
    path = settings.state / "ml" / "runs" / f"{target}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_champions(settings: Settings, *, retrain: bool = False) -> list[str]:
    """Fraud and status: train when there is no champion (or always, with `retrain`); one line per target.

    A target that cannot be trained is skipped with a warning, not a failure: a small dataset (the
    seed's sample files span two days) or one with a single class (every transaction succeeded, so
    no status model) still runs end to end, and scoring uses the champions that exist.
    """
    said = []
    for target in ("fraud", "status"):
        try:
            result = run(settings, target) if retrain else ensure_champion(settings, target)
        except NotEnoughData as exc:
            log.warning("%s model skipped: %s", target, exc)
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
