"""Model metrics as pure functions: ROC AUC, AP, Card-Precision@k per day, thresholds, PSI."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, confusion_matrix, f1_score, precision_recall_curve, roc_auc_score


def safe_auc(y: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray) -> float | None:
    """ROC AUC, or None when only one class is present (a quiet day has no fraud)."""
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, score))


def safe_ap(y: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray) -> float | None:
    """Average precision, or None without any positive."""
    y = np.asarray(y)
    if y.sum() == 0:
        return None
    return float(average_precision_score(y, score))


def card_precision_at_k(frame: pd.DataFrame, k: int = 100) -> float | None:
    """Mean over days of the share of fraudulent accounts among the day's k highest-scored accounts.

    The Fraud Detection Handbook's Card Precision@k with accounts for cards: `frame` holds
    `transaction_date`, `account_id`, `score` and `y` per transaction; an account's daily score is
    its highest, and it counts as fraudulent that day when any of its transactions is. Days where
    fewer than k accounts transacted still divide by k (as the handbook does).
    """
    if frame.empty:
        return None
    daily = frame.groupby(["transaction_date", "account_id"], sort=False).agg(score=("score", "max"), y=("y", "max"))
    precisions = []
    for _, day in daily.groupby(level=0, sort=True):
        top = day.nlargest(k, "score")
        precisions.append(float(top["y"].sum()) / k)
    return float(np.mean(precisions)) if precisions else None


def card_precision_ceiling(frame: pd.DataFrame, k: int = 100) -> float | None:
    """CP@k of a perfect ranking: mean over days of min(fraudulent accounts that day, k) / k.

    `frame` holds `transaction_date`, `account_id` and `y`; with few fraudulent accounts a day, even
    a perfect model cannot fill its k alerts, so CP@k is only comparable next to this bound.
    """
    if frame.empty:
        return None
    accounts = frame.groupby(["transaction_date", "account_id"], sort=False)["y"].max()
    per_day = accounts.groupby(level=0, sort=True).sum()
    return float((per_day.clip(upper=k) / k).mean())


def best_f1_threshold(y: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray) -> float:
    """The score threshold with the highest F1 (0.5 when there is no positive to learn it from)."""
    y = np.asarray(y)
    if y.sum() == 0:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, score)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    # precision_recall_curve gives one more (precision, recall) pair than thresholds.
    return float(thresholds[int(np.argmax(f1[:-1]))])


def binary_report(
    y: np.ndarray, score: np.ndarray, threshold: float, frame: pd.DataFrame | None = None, k: int = 100
) -> dict[str, Any]:
    """Headline binary metrics: AUC, AP, CP@k, confusion matrix and F1 at the threshold."""
    pred = (score >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    out: dict[str, Any] = {
        "roc_auc": safe_auc(y, score),
        "average_precision": safe_ap(y, score),
        "threshold": float(threshold),
        "tp": int(tp),
        "fp": int(fp),
        "tn": int(tn),
        "fn": int(fn),
        "precision": float(tp / (tp + fp)) if tp + fp else None,
        "recall": float(tp / (tp + fn)) if tp + fn else None,
        "f1": float(f1_score(y, pred, zero_division=0)),
        "n": len(y),
        "positives": int(np.sum(y)),
    }
    if frame is not None:
        out[f"card_precision_at_{k}"] = card_precision_at_k(frame.assign(score=score, y=y), k)
        out[f"card_precision_ceiling_at_{k}"] = card_precision_ceiling(frame.assign(y=y), k)
    return out


def multiclass_report(
    y: Sequence[str], pred: Sequence[str], proba: np.ndarray | None, classes: Sequence[str]
) -> dict[str, Any]:
    """Macro-F1, accuracy, one-vs-rest AUC and the confusion matrix (rows true, columns predicted)."""
    y_arr, pred_arr = np.asarray(y), np.asarray(pred)
    out: dict[str, Any] = {
        "macro_f1": float(f1_score(y_arr, pred_arr, labels=list(classes), average="macro", zero_division=0)),
        "accuracy": float(np.mean(y_arr == pred_arr)) if len(y_arr) else None,
        "classes": list(classes),
        "confusion_matrix": confusion_matrix(y_arr, pred_arr, labels=list(classes)).tolist(),
        "n": len(y_arr),
    }
    if proba is not None and len(np.unique(y_arr)) == len(classes):
        # roc_auc_score wants the labels sorted, with the probability columns in the same order.
        order = np.argsort(np.asarray(classes))
        labels = [classes[i] for i in order]
        out["roc_auc_ovr"] = float(roc_auc_score(y_arr, proba[:, order], multi_class="ovr", labels=labels))
    else:
        out["roc_auc_ovr"] = None
    return out


def psi_reference(scores: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Quantile bin edges of the training window's scores and the share in each bin (the PSI baseline)."""
    qs = np.quantile(scores, np.linspace(0, 1, bins + 1)[1:-1]) if len(scores) else np.array([])
    edges = sorted(set(float(q) for q in qs))
    expected = _bin_shares(scores, edges)
    return {"edges": edges, "expected": expected}


def _bin_shares(scores: np.ndarray, edges: list[float]) -> list[float]:
    idx = np.searchsorted(np.asarray(edges), scores, side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float)
    return (counts / max(counts.sum(), 1.0)).tolist()


def psi(scores: np.ndarray, reference: dict[str, list[float]], eps: float = 1e-4) -> float | None:
    """Population stability index of `scores` against a `psi_reference`; < 0.1 stable, > 0.25 shifted."""
    if len(scores) == 0 or not reference.get("expected"):
        return None
    actual = _bin_shares(np.asarray(scores), reference["edges"])
    total = 0.0
    for e, a in zip(reference["expected"], actual, strict=True):
        e, a = max(e, eps), max(a, eps)
        total += (a - e) * math.log(a / e)
    return float(total)


def _macro_f1_codes(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(float)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    return float(np.mean(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)))


def class_offsets(
    y: Sequence[str] | np.ndarray,
    proba: np.ndarray,
    classes: Sequence[str],
    grid: Sequence[float] = tuple(np.arange(-3.0, 1.01, 0.25)),
    max_rows: int = 200_000,
) -> list[float]:
    """Log-probability offsets per class (the first fixed at 0) whose arg-max has the best macro-F1.

    Class weights make a multinomial model's arg-max over-predict rare classes; shifting the
    decision, not the model, fixes that. A fixed subsample keeps the grid search to seconds.
    """
    codes = {c: i for i, c in enumerate(classes)}
    y_codes = np.asarray([codes.get(v, -1) for v in np.asarray(y)])
    keep = y_codes >= 0
    y_codes, logp = y_codes[keep], np.log(np.clip(proba[keep], 1e-12, 1.0))
    if len(y_codes) > max_rows:
        idx = np.random.default_rng(0).choice(len(y_codes), max_rows, replace=False)
        y_codes, logp = y_codes[idx], logp[idx]
    k = len(classes)
    best, best_offsets = -1.0, [0.0] * k
    for combo in itertools.product(grid, repeat=k - 1):
        offsets = np.array((0.0, *combo))
        f1 = _macro_f1_codes(y_codes, np.argmax(logp + offsets, axis=1), k)
        if f1 > best + 1e-12:
            best, best_offsets = f1, [float(o) for o in offsets]
    return best_offsets


def decide(proba: np.ndarray, offsets: Sequence[float] | None = None) -> np.ndarray:
    """Class index per row: arg-max of log-probability plus the class offsets."""
    if offsets is None:
        return np.argmax(proba, axis=1)
    return np.argmax(np.log(np.clip(proba, 1e-12, 1.0)) + np.asarray(offsets), axis=1)


# --- alert budget, money-weighted recall, bootstrap intervals --------------------------------------


def budget_threshold(score: np.ndarray, n_days: int, per_day: int) -> float:
    """The lowest score threshold that raises at most `per_day` alerts a day on average over `n_days`.

    Alerts are the rows with `score >= threshold`. With ties at the boundary the budget wins: the
    tied group is left out rather than exceed it. Fewer rows than the budget: every row alerts.
    """
    score = np.asarray(score, dtype=float)
    budget = max(int(per_day) * max(int(n_days), 1), 1)
    if len(score) == 0:
        return 1.0
    if len(score) <= budget:
        return float(score.min())
    desc = np.sort(score)[::-1]
    t = desc[budget - 1]
    if np.sum(score >= t) > budget:
        above = desc[desc > t]
        # Every row above the tie raises an alert: the smallest such score is the threshold.
        return float(above.min()) if len(above) else float(np.nextafter(t, np.inf))
    return float(t)


class Ranked:
    """A test window sorted once by score, so that metrics under bootstrap weights cost O(n) each.

    `frame` holds `transaction_date`, `account_id`, `y`, `score` and `amount_idr`. Weights are per
    account (`weights[account_code]`): a resampled account brings all its transactions and, for
    CP@k, fills as many of its day's top-k slots as it was drawn.
    """

    def __init__(self, frame: pd.DataFrame, threshold: float, k: int = 100) -> None:
        f = frame.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
        self.k, self.threshold = k, threshold
        self.accounts, self.account_code = np.unique(f["account_id"].to_numpy(), return_inverse=True)
        self.y = f["y"].to_numpy(dtype=float)
        score = f["score"].to_numpy(dtype=float)
        # The last row of each run of equal scores: ties share one point on the curves.
        self.group_end = np.r_[np.flatnonzero(np.diff(score) != 0), len(score) - 1] if len(score) else np.array([])
        # An `alert` column (pooled weeks, each with its own threshold) overrides the threshold.
        self.alert = f["alert"].to_numpy(dtype=float) if "alert" in f else (score >= threshold).astype(float)
        self.amount = f["amount_idr"].to_numpy(dtype=float)
        self.days = pd.to_datetime(f["transaction_date"]).dt.normalize().to_numpy()
        # Account-days for CP@k: the account's best score that day and whether any of its rows is fraud.
        ad = (
            pd.DataFrame({"day": self.days, "acc": self.account_code, "score": score, "y": self.y})
            .groupby(["day", "acc"], sort=False)
            .agg(score=("score", "max"), y=("y", "max"))
            .reset_index()
            .sort_values(["day", "score"], ascending=[True, False], kind="stable")
        )
        self.ad_day = ad["day"].to_numpy()
        self.ad_acc = ad["acc"].to_numpy()
        self.ad_y = ad["y"].to_numpy()
        self.n_days = len(np.unique(self.ad_day))

    def metrics(self, account_weights: np.ndarray | None = None) -> dict[str, float | None]:
        """ROC AUC, AP, CP@k and money-weighted recall at the threshold, under per-account weights."""
        w = np.ones(len(self.y)) if account_weights is None else account_weights[self.account_code]
        pos, neg = w * self.y, w * (1 - self.y)
        tp, fp = np.cumsum(pos)[self.group_end], np.cumsum(neg)[self.group_end]
        P, N = (tp[-1], fp[-1]) if len(tp) else (0.0, 0.0)
        out: dict[str, float | None] = {"roc_auc": None, "average_precision": None}
        if P > 0 and N > 0:
            tpr, fpr = np.r_[0.0, tp / P], np.r_[0.0, fp / N]
            # Clipped: the sums can land an ulp above 1 on a perfect ranking.
            out["roc_auc"] = float(min(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2), 1.0))
        if P > 0:
            # As scikit-learn: sum over thresholds of (recall step) × precision at that threshold.
            precision = tp / np.maximum(tp + fp, 1e-300)
            out["average_precision"] = float(min(np.sum(np.diff(np.r_[0.0, tp / P]) * precision), 1.0))
        out[f"card_precision_at_{self.k}"] = self._card_precision(account_weights)
        fraud_amount = float(np.sum(pos * self.amount))
        out["money_recall"] = float(np.sum(pos * self.amount * self.alert)) / fraud_amount if fraud_amount else None
        return out

    def _card_precision(self, account_weights: np.ndarray | None) -> float | None:
        if not self.n_days:
            return None
        w = np.ones(len(self.ad_acc)) if account_weights is None else account_weights[self.ad_acc].astype(float)
        cum = pd.Series(w).groupby(self.ad_day).cumsum().to_numpy()
        # Slots of the day's top k this account-day fills: all its copies, or what is left of k.
        take = np.clip(self.k - (cum - w), 0, w)
        per_day = pd.Series(take * self.ad_y).groupby(self.ad_day).sum() / self.k
        return float(per_day.mean())

    def bootstrap(self, n_boot: int = 200, seed: int = 0, level: float = 0.95) -> dict[str, list[float]]:
        """Percentile intervals over `n_boot` resamples of accounts (Poisson weights, one draw per account)."""
        rng = np.random.default_rng(seed)
        draws: dict[str, list[float]] = {}
        for _ in range(n_boot):
            weights = rng.poisson(1.0, len(self.accounts)).astype(float)
            for key, value in self.metrics(weights).items():
                if value is not None:
                    draws.setdefault(key, []).append(value)
        lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
        # A metric defined in fewer than half the resamples (almost no fraud) gets no interval.
        return {
            key: [float(np.percentile(v, lo)), float(np.percentile(v, hi))]
            for key, v in draws.items()
            if len(v) >= n_boot / 2
        }
