"""Pure ML pieces on tiny hand-built inputs: metrics, PSI, promotion rule, time split, rules baseline."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from bankpipe.errors import BankpipeError
from bankpipe.ml import metrics, registry, train


def test_card_precision_takes_each_accounts_best_score_per_day() -> None:
    frame = pd.DataFrame(
        {
            "transaction_date": ["d1"] * 5 + ["d2"] * 3,
            "account_id": ["A", "A", "B", "C", "D", "A", "B", "C"],
            "score": [0.9, 0.1, 0.8, 0.7, 0.1, 0.2, 0.9, 0.3],
            "y": [0, 1, 0, 1, 1, 0, 1, 0],
        }
    )
    # d1 top-2 accounts: A (0.9; fraudulent through its other transaction) and B (0.8, legit) → 1/2.
    # d2 top-2: B (fraud), C (legit) → 1/2.
    assert metrics.card_precision_at_k(frame, k=2) == pytest.approx(0.5)
    # k larger than the accounts of a day still divides by k, as the handbook does.
    assert metrics.card_precision_at_k(frame, k=4) == pytest.approx(((3 / 4) + (1 / 4)) / 2)
    assert metrics.card_precision_at_k(frame.iloc[:0], k=2) is None
    # A perfect ranking: d1 has 3 fraudulent accounts (A, C, D), d2 one (B).
    assert metrics.card_precision_ceiling(frame, k=2) == pytest.approx((2 / 2 + 1 / 2) / 2)
    assert metrics.card_precision_ceiling(frame, k=4) == pytest.approx((3 / 4 + 1 / 4) / 2)
    assert metrics.card_precision_ceiling(frame.iloc[:0], k=2) is None


def test_binary_report_on_a_hand_built_case() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    rep = metrics.binary_report(y, s, threshold=0.5)
    assert rep["roc_auc"] == pytest.approx(8 / 9)  # one of nine pos/neg pairs misordered (0.35 < 0.4)
    assert rep["average_precision"] == pytest.approx((1 + 1 + 3 / 4) / 3)
    assert (rep["tp"], rep["fp"], rep["fn"], rep["tn"]) == (2, 0, 1, 3)
    assert rep["precision"] == 1.0 and rep["recall"] == pytest.approx(2 / 3)


def test_metrics_without_both_classes_are_none() -> None:
    assert metrics.safe_auc([0, 0, 0], [0.1, 0.2, 0.3]) is None
    assert metrics.safe_ap([0, 0], [0.1, 0.2]) is None


def test_best_f1_threshold_separates_a_separable_case() -> None:
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.9])
    assert metrics.best_f1_threshold(y, s) == pytest.approx(0.7)
    assert metrics.best_f1_threshold(np.zeros(3), s[:3]) == 0.5


def test_multiclass_report_macro_f1_and_confusion() -> None:
    classes = ("Success", "Pending", "Failed")
    y = ["Success", "Success", "Pending", "Failed"]
    pred = ["Success", "Pending", "Pending", "Success"]
    rep = metrics.multiclass_report(y, pred, None, classes)
    # F1 per class: Success 0.5, Pending 2/3, Failed 0.
    assert rep["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert rep["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_psi_is_zero_for_the_same_distribution_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    ref_scores = rng.uniform(0, 1, 10_000)
    ref = metrics.psi_reference(ref_scores)
    assert len(ref["edges"]) == 9 and sum(ref["expected"]) == pytest.approx(1.0)
    assert metrics.psi(ref_scores, ref) == pytest.approx(0.0, abs=1e-9)
    assert metrics.psi(rng.uniform(0, 1, 5_000), ref) < 0.02
    assert metrics.psi(rng.uniform(0.5, 1, 5_000), ref) > 0.25
    assert metrics.psi(np.array([]), ref) is None


@pytest.mark.parametrize(
    ("new", "champion", "promote"),
    [
        (0.6, None, True),
        (0.61, 0.6, True),
        (0.6, 0.6, False),
        (0.5, 0.6, False),
        (None, 0.6, False),
        (None, None, False),
    ],
)
def test_promotion_rule(new: float | None, champion: float | None, promote: bool) -> None:
    assert registry.should_promote(new, champion) is promote


def test_time_split_leaves_the_label_delay_gap_and_the_immature_tail_out() -> None:
    cfg = train.TrainConfig(test_days=14, warmup_days=7)
    s = train.time_split(date(2025, 12, 1), date(2026, 3, 30), "fraud", cfg)  # gap 7, maturity 14
    assert s.test_end == date(2026, 3, 17)  # the last 14 days' labels are not mature
    assert s.test_start == date(2026, 3, 3)
    assert s.validation_end == date(2026, 2, 24)  # 7-day gap (the label delay) before the test window
    assert s.validation_start == date(2026, 2, 17) == s.train_end  # 7 validation days after training
    assert s.train_start == date(2025, 12, 8)
    assert s.label_cutoff.date() == s.test_start
    status = train.time_split(date(2025, 12, 1), date(2026, 3, 30), "status", cfg)
    assert status.test_end == date(2026, 3, 31) and status.validation_end == status.test_start


def test_time_split_refuses_too_little_history() -> None:
    with pytest.raises(BankpipeError, match="not enough history"):
        train.time_split(date(2025, 12, 1), date(2025, 12, 20), "fraud", train.TrainConfig())


def test_fraud_rules_score_counts_broken_rules() -> None:
    df = pd.DataFrame(
        {
            "log_amount_to_avg_30d": [np.log1p(10), np.nan],
            "txn_count_1h": [3, 0],
            "is_night": [1, 0],
            "transaction_type": ["Transfer", "Payment"],
            "is_new_counterparty": [1, 1],
            "is_far_from_home": [0, 0],
            "point_risk_30d": [0.0, 0.2],
        }
    )
    assert train.fraud_rules_score(df).tolist() == pytest.approx([4 / 6, 1 / 6])


def test_status_rules_predict_the_groups_most_frequent_status() -> None:
    df = pd.DataFrame({"transaction_type": ["Transfer"] * 3 + ["Payment"] * 2, "channel": ["atm"] * 5})
    y = pd.Series(["Failed", "Failed", "Success", "Success", "Pending"])
    rules = train.StatusRules().fit(df, y)
    new = pd.DataFrame({"transaction_type": ["Transfer", "Deposit"], "channel": ["atm", "atm"]})
    assert rules.predict(new).tolist() == ["Failed", "Success"]  # unseen group → overall prior
    assert rules.predict_proba(new)[0].tolist() == pytest.approx([1 / 3, 0, 2 / 3])


def test_class_offsets_move_the_decision_towards_macro_f1() -> None:
    classes = ("Success", "Pending", "Failed")
    # A model that ranks well but over-predicts Failed: P(Failed) is inflated for everyone.
    y = np.array(["Success"] * 80 + ["Pending"] * 10 + ["Failed"] * 10)
    proba = np.tile([0.40, 0.05, 0.55], (100, 1))
    proba[80:90] = [0.10, 0.50, 0.40]
    proba[90:] = [0.05, 0.05, 0.90]
    plain = metrics.multiclass_report(y, np.asarray(classes)[metrics.decide(proba)], None, classes)["macro_f1"]
    offsets = metrics.class_offsets(y, proba, classes)
    tuned = np.asarray(classes)[metrics.decide(proba, offsets)]
    assert offsets[0] == 0.0
    assert metrics.multiclass_report(y, tuned, None, classes)["macro_f1"] == pytest.approx(1.0)
    assert plain < 0.7
