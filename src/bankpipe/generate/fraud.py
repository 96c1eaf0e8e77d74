"""Planted fraud scenarios with randomised attributes, and the late-arriving labels.

No scenario is a fixed rule: each attribute a rule could key on (night, new payee, another city,
amount far above habit) holds for a share of a scenario's cases only, and legitimate look-alikes
(`transactions.plant_lookalikes`) have it too. The shares are design choices (config.FraudConfig).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import numpy as np

from bankpipe.generate.config import FraudConfig
from bankpipe.generate.master import Master, Profiles
from bankpipe.generate.sampling import inverse_cdf_table, weighted_sample
from bankpipe.generate.transactions import (
    ATM,
    DAY,
    EDC,
    HOUR_WEIGHTS,
    INTERNET,
    MOBILE,
    PAYMENT,
    SUCCESS,
    TRANSFER,
    WITHDRAWAL,
    Tx,
    habit_log,
    new_counterparty,
)

log = logging.getLogger(__name__)

SCENARIOS: tuple[str, ...] = ("none", "large_amount", "account_takeover", "compromised_point", "card_testing")
LARGE, TAKEOVER, COMPROMISED, CARD_TESTING = 1, 2, 3, 4
# Reporting delay (days, log-normal median and spread) per scenario: a drained account is noticed
# fast; each victim of a compromised point reports the unauthorised withdrawal or card payment on
# its own within days, so a point's fraud becomes known while the point is still compromised.
_DELAY = {LARGE: (3.0, 0.7), TAKEOVER: (1.5, 0.6), COMPROMISED: (2.5, 0.6), CARD_TESTING: (2.0, 0.6)}
_FALSE_DELAY = (5.0, 0.6)
# How long a point stays compromised (days, inclusive bounds): a skimmer stays in place for weeks,
# longer than its victims take to report (as in the Fraud Detection Handbook's simulator, 28 days).
COMPROMISED_DAYS = (14, 28)
# Victims per compromised point (inclusive bounds): a skimmer harvests a limited number of cards, so
# the scenario's fraud is spread over many points at a time (the handbook compromises two terminals
# a day) instead of a busy city's ATMs taking the whole budget in one incident.
COMPROMISED_VICTIMS = (20, 60)
# Daytime hours (WIB) of takeovers and card testing that are not at night: the bank's usual rhythm.
_DAY_HOURS = np.where(np.arange(24) >= 7, HOUR_WEIGHTS, 0.0)
_DAY_HOUR_TABLE = inverse_cdf_table(_DAY_HOURS)
_HOUR_TABLE = inverse_cdf_table(HOUR_WEIGHTS)
# Points tried at most (< 256: a point's slot is one byte); a run too big for that many points at
# the victim cap gets a higher cap.
_MAX_POINTS = 200


def plan_counts(n_total: int, cfg: FraudConfig, card_testing_active: bool = True) -> dict[str, int]:
    """Fraudulent transactions per scenario for a run of n_total transactions.

    Without card testing in the window (it starts late in the period), its share goes to the others.
    """
    k = round(cfg.rate * n_total)
    mix = cfg.mix()
    if not card_testing_active:
        rest = 1.0 - mix["card_testing"]
        mix = {s: (0.0 if s == "card_testing" else (v / rest if rest > 0 else 0.0)) for s, v in mix.items()}
    large = round(k * mix["large_amount"])
    takeover = min(round(k * mix["account_takeover"]), k - large)
    testing = min(round(k * mix["card_testing"]), k - large - takeover)
    return {
        "large_amount": large,
        "account_takeover": takeover,
        "compromised_point": k - large - takeover - testing,
        "card_testing": testing,
    }


def _burst_layout(k: int, low: int, high: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split k transactions into bursts of low..high (the last one shorter): (sizes, burst of each row)."""
    sizes = rng.integers(low, high + 1, k // low + 1)
    ends = np.cumsum(sizes)
    n_bursts = int(np.searchsorted(ends, k) + 1)
    sizes = sizes[:n_bursts].copy()
    sizes[-1] -= int(ends[n_bursts - 1] - k)
    return sizes, np.repeat(np.arange(n_bursts), sizes)


def _burst_starts(n: int, first_day: int, n_days: int, night_share: float, rng: np.random.Generator) -> np.ndarray:
    """Start second of each burst: a share at night (00–05), the rest at the day's usual hours."""
    day = first_day + rng.integers(0, max(n_days, 1), n)
    night = rng.random(n) < night_share
    hour = np.where(night, rng.integers(0, 5, n), _DAY_HOUR_TABLE[rng.integers(0, len(_DAY_HOUR_TABLE), n)])
    return day * DAY + hour * 3600 + rng.integers(0, 3600, n)


def _offsets(sizes: np.ndarray, burst: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """Seconds after its burst's start of every row, from the gaps before each row (first one ignored)."""
    first_of_burst = np.r_[True, burst[1:] != burst[:-1]] if len(burst) else np.zeros(0, bool)
    gaps = gaps.copy()
    gaps[first_of_burst] = 0
    csum = np.cumsum(gaps)
    return csum - np.repeat(csum[first_of_burst], sizes)


def _elsewhere(home: np.ndarray, n_cities: int, rng: np.random.Generator) -> np.ndarray:
    """Any city but `home`, not weighted by population."""
    return ((home + rng.integers(1, max(n_cities, 2), len(home))) % max(n_cities, 1)).astype(np.int16)


def takeover_bursts(
    master: Master,
    prof: Profiles,
    k: int,
    first_day: int,
    n_days: int,
    start: date,
    cfg: FraudConfig,
    rng: np.random.Generator,
    incident0: int = 0,
) -> Tx:
    """k transfers in bursts of 1–8 out of taken-over accounts, attributes drawn per burst.

    At night or in daytime, to a mule or to a payee the victim already had, from another city or
    the victim's own, draining part of the balance or moving amounts near the victim's habit.
    """
    tx = Tx.empty(k)
    if k == 0 or master.n_accounts == 0:
        return tx
    sizes, burst = _burst_layout(k, 1, 8, rng)
    n_bursts = len(sizes)

    # Fraudsters go for well-funded everyday accounts.
    eligible = (master.acc_type <= 1) & ~prof.is_mule
    weights = np.where(eligible, master.acc_saldo_cents.astype(np.float64), 0.0)
    victims = weighted_sample(weights, n_bursts, rng)
    if len(victims) < n_bursts:
        victims = rng.choice(np.flatnonzero(eligible) if eligible.any() else np.arange(master.n_accounts), n_bursts)
    else:
        victims = rng.permutation(victims)
    acc = victims[burst].astype(np.int32)

    start_s = _burst_starts(n_bursts, first_day, n_days, cfg.takeover_night_share, rng)
    offset = _offsets(sizes, burst, rng.integers(30, 900, k))
    tx.ts = (start_s[burst] + offset).astype(np.int64)
    tx.account = acc
    # Where the money goes: mostly mule accounts; for a share of bursts a payee the victim already
    # had (its regular counterparties include mules' family and employers, and a saved payee
    # whose account a mule controls looks like any other).
    known = (rng.random(n_bursts) < cfg.takeover_known_payee_share)[burst]
    slot = (rng.random(k) * prof.n_counterparties[acc]).astype(np.int64)
    dest = prof.mule_pool[rng.integers(0, len(prof.mule_pool), k)].astype(np.int32)
    dest[known] = prof.counterparties[acc[known], slot[known]]
    tx.dest = dest
    tx.new_cp = new_counterparty(prof, acc, dest, np.ones(k, bool))
    tx.ttype[:] = TRANSFER
    tx.channel = np.where(rng.random(k) < 0.7, MOBILE, INTERNET).astype(np.int8)
    home = prof.home[acc]
    at_home = (rng.random(n_bursts) < cfg.takeover_home_share)[burst]
    tx.location = np.where(at_home, home, _elsewhere(home, len(master.cities), rng)).astype(np.int16)
    drain = np.clip(np.round(master.acc_saldo_cents[acc] * rng.uniform(0.05, 0.3, k), -2), 500_000_00, 500_000_000_00)
    near = (rng.random(n_bursts) < cfg.takeover_near_habit_share)[burst]
    habit = np.exp(habit_log(prof, acc, tx.ts, start)) * rng.uniform(0.7, 3.0, k)
    tx.amount_idr = np.where(near, np.round(habit * 100, -2), drain).astype(np.int64)
    tx.amount = tx.amount_idr.copy()
    tx.fraud[:] = TAKEOVER
    tx.incident = (incident0 + burst).astype(np.int32)
    return tx


def card_testing_bursts(
    master: Master,
    prof: Profiles,
    k: int,
    first_day: int,
    n_days: int,
    start: date,
    rng: np.random.Generator,
    incident0: int = 0,
) -> Tx:
    """k card payments in bursts: 3–10 small online payments at different merchants, then a large one.

    The pattern only exists from `first_day` on (a new attack the bank has not seen before); times
    follow the day's usual rhythm.
    """
    tx = Tx.empty(k)
    if k == 0 or master.n_accounts == 0 or n_days <= 0:
        return tx
    sizes, burst = _burst_layout(k, 4, 11, rng)
    n_bursts = len(sizes)
    eligible = np.flatnonzero((master.acc_type <= 1) & ~prof.is_mule)
    pool = eligible if len(eligible) else np.arange(master.n_accounts)
    acc = pool[rng.integers(0, len(pool), n_bursts)][burst].astype(np.int32)
    last = np.r_[burst[1:] != burst[:-1], True]
    start_s = (
        (first_day + rng.integers(0, n_days, n_bursts)) * DAY
        + _HOUR_TABLE[rng.integers(0, len(_HOUR_TABLE), n_bursts)] * 3600
        + rng.integers(0, 3600, n_bursts)
    )
    # Tests come seconds apart; the real purchase minutes to hours after the last test.
    gaps = np.where(last, rng.integers(600, 4 * 3600, k), rng.integers(15, 240, k))
    tx.ts = (start_s[burst] + _offsets(sizes, burst, gaps)).astype(np.int64)
    tx.account = acc
    tx.dest = prof.merchant_pool[rng.integers(0, len(prof.merchant_pool), k)].astype(np.int32)
    tx.ttype[:] = PAYMENT
    tx.channel = np.where(rng.random(k) < 0.75, INTERNET, MOBILE).astype(np.int8)
    home = prof.home[acc]
    at_home = (rng.random(n_bursts) < 0.5)[burst]
    tx.location = np.where(at_home, home, _elsewhere(home, len(master.cities), rng)).astype(np.int16)
    small = rng.integers(10, 76, k) * 1_000_00
    large = np.round(np.exp(habit_log(prof, acc, tx.ts, start)) * np.exp(rng.uniform(np.log(2), np.log(20), k)), -3)
    tx.amount_idr = np.where(last, large * 100, small).astype(np.int64)
    tx.amount = tx.amount_idr.copy()
    tx.fraud[:] = CARD_TESTING
    tx.incident = (incident0 + burst).astype(np.int32)
    return tx


def plant_large_amounts(
    tx: Tx,
    prof: Profiles,
    k: int,
    rng: np.random.Generator,
    incident0: int,
    start: date,
    near_habit_share: float = 0.35,
) -> int:
    """Turn k legitimate IDR transfers/payments into amounts above the habit; returns planted.

    A share is only 2–5x the account's (drifting) habit, the rest 5–50x (log-uniform): one-off
    legitimate purchases (3–30x) overlap both.
    """
    eligible = (
        (tx.fraud == 0) & (tx.pattern == 0) & (tx.currency == 0) & ((tx.ttype == TRANSFER) | (tx.ttype == PAYMENT))
    )
    candidates = np.flatnonzero(eligible)
    rows = np.sort(rng.choice(candidates, min(k, len(candidates)), replace=False)) if k else candidates[:0]
    habit = np.exp(habit_log(prof, tx.account[rows], tx.ts[rows], start))
    near = rng.random(len(rows)) < near_habit_share
    factor = np.where(near, rng.uniform(2, 5, len(rows)), np.exp(rng.uniform(np.log(5), np.log(50), len(rows))))
    tx.amount_idr[rows] = np.round(habit * factor * 100).astype(np.int64)
    tx.amount[rows] = tx.amount_idr[rows]
    tx.fraud[rows] = LARGE
    tx.incident[rows] = incident0 + np.arange(len(rows))
    return len(rows)


@dataclass(frozen=True)
class CompromisedPoint:
    """A terminal location and channel where, for some days, many transactions were fraudulent."""

    location: int  # city row
    channel: int
    first_day: int
    last_day: int  # inclusive
    transactions: int
    fraudulent: int
    incident: int


def plant_compromised(
    tx: Tx, k: int, share: float, first_day: int, n_days: int, rng: np.random.Generator, incident0: int
) -> list[CompromisedPoint]:
    """Mark `share` (at most 20–60 victims) of the ATM/EDC transactions at city+channel points as fraud, 14–28 days."""
    points: list[CompromisedPoint] = []
    if k <= 0 or len(tx) == 0:
        return points
    eligible = (tx.fraud == 0) & (tx.currency == 0) & ((tx.channel == ATM) | (tx.channel == EDC))
    rows = np.flatnonzero(eligible)
    if len(rows) == 0:
        log.warning("no ATM/EDC transactions: compromised-point fraud not planted")
        return points
    key = tx.location[rows].astype(np.int32) * 8 + tx.channel[rows]
    counts = np.bincount(key).astype(np.float64)
    # Points in a uniformly random order, whatever their traffic: a point is all of a city's ATMs
    # (or EDC terminals), and at a busy city's the few victims of one skimmer would be a few percent
    # of its transactions — invisible at this granularity, unlike the handbook's single terminals.
    order = rng.permutation(len(counts))
    candidates = order[counts[order] > 0][:_MAX_POINTS]
    # The candidates' rows grouped once (a radix sort on a one-byte slot; stable, so time order is
    # kept inside a point) instead of one scan of every ATM/EDC row per point.
    slot = np.full(len(counts), _MAX_POINTS, np.uint8)
    slot[candidates] = np.arange(len(candidates))
    at_slot = slot[key]
    candidate_rows = np.flatnonzero(at_slot < _MAX_POINTS)
    by_point = rows[candidate_rows[np.argsort(at_slot[candidate_rows], kind="stable")]]
    bounds = np.r_[0, np.cumsum(np.bincount(at_slot[candidate_rows], minlength=len(candidates)))]
    mean_victims = sum(COMPROMISED_VICTIMS) / 2
    scale = max(1.0, k / (mean_victims * _MAX_POINTS / 2))
    done = 0
    for i, c in enumerate(candidates):
        if done >= k:
            break
        point_rows = by_point[bounds[i] : bounds[i + 1]]
        length = min(int(rng.integers(COMPROMISED_DAYS[0], COMPROMISED_DAYS[1] + 1)), n_days)
        lo = first_day + int(rng.integers(0, max(1, n_days - length + 1)))
        day = tx.ts[point_rows] // DAY
        in_window = point_rows[(day >= lo) & (day < lo + length)]
        if len(in_window) == 0:
            continue
        cap = round(scale * int(rng.integers(COMPROMISED_VICTIMS[0], COMPROMISED_VICTIMS[1] + 1)))
        m = min(k - done, cap, max(1, round(share * len(in_window))))
        chosen = np.sort(rng.choice(in_window, m, replace=False))
        incident = incident0 + len(points)
        # The cloned cards are emptied at the fraudster's pace, not the victim's: amounts vary.
        amount = tx.amount_idr[chosen] * np.exp(rng.normal(0.3, 0.6, m))
        cash = tx.ttype[chosen] == WITHDRAWAL
        amount[cash] = np.clip(np.round(amount[cash] / 50_000_00) * 50_000_00, 50_000_00, 10_000_000_00)
        tx.amount_idr[chosen] = np.maximum(np.round(amount, -2), 10_000_00).astype(np.int64)
        tx.amount[chosen] = tx.amount_idr[chosen]
        tx.pattern[chosen] = 0
        tx.fraud[chosen] = COMPROMISED
        tx.incident[chosen] = incident
        done += m
        points.append(CompromisedPoint(int(c // 8), int(c % 8), lo, lo + length - 1, len(in_window), m, incident))
    if done < k:
        log.warning("compromised-point fraud: planted %d of %d (too few ATM/EDC transactions)", done, k)
    return points


@dataclass
class Labels:
    """Fraud reports as the bank's case system would record them (including ones after the run's end)."""

    rows: np.ndarray  # tx row
    confirmed: np.ndarray  # bool
    reported_ts: np.ndarray  # int64 seconds since start_date 00:00 WIB


def fraud_labels(tx: Tx, cfg: FraudConfig, rng: np.random.Generator) -> Labels:
    """Reports after a scenario-dependent delay, plus false reports.

    A large amount or a takeover burst is one incident reported once, after its last transaction;
    each victim of a compromised point reports its own transaction, as a card holder would.
    """
    fraud_rows = np.flatnonzero(tx.fraud > 0)
    rows_out: list[np.ndarray] = []
    conf_out: list[np.ndarray] = []
    ts_out: list[np.ndarray] = []
    if len(fraud_rows):
        # A report unit: the incident, or the transaction itself for a compromised point (a unit
        # key past every incident id, so both kinds share one vectorised pass).
        per_row = tx.fraud[fraud_rows] == COMPROMISED
        unit_key = np.where(per_row, int(tx.incident[fraud_rows].max()) + 1 + fraud_rows, tx.incident[fraud_rows])
        uniq, inv = np.unique(unit_key, return_inverse=True)
        last_ts = np.full(len(uniq), np.iinfo(np.int64).min)
        np.maximum.at(last_ts, inv, tx.ts[fraud_rows])
        scen = np.zeros(len(uniq), np.int8)
        scen[inv] = tx.fraud[fraud_rows]
        median = np.array([_DELAY.get(int(s), (3.0, 0.7))[0] for s in range(len(SCENARIOS))])[scen]
        spread = np.array([_DELAY.get(int(s), (3.0, 0.7))[1] for s in range(len(SCENARIOS))])[scen]
        delay = median * np.exp(spread * rng.standard_normal(len(uniq)))
        reported = rng.random(len(uniq)) < cfg.report_share
        rep_ts = last_ts + 2 * 3600 + np.round(delay * DAY).astype(np.int64)
        keep = reported[inv]
        rows_out.append(fraud_rows[keep])
        conf_out.append(np.ones(int(keep.sum()), bool))
        ts_out.append(rep_ts[inv][keep])
    n_true = sum(len(r) for r in rows_out)
    n_false = round(cfg.false_report_share * n_true)
    if n_false:
        # Disputes of legitimate, successful, bigger payments and transfers.
        eligible = (tx.fraud == 0) & (tx.status == SUCCESS) & ((tx.ttype == TRANSFER) | (tx.ttype == PAYMENT))
        weights = np.where(eligible, tx.amount_idr.astype(np.float64), 0.0)
        rows = weighted_sample(weights, n_false, rng)
        delay = _FALSE_DELAY[0] * np.exp(_FALSE_DELAY[1] * rng.standard_normal(len(rows)))
        rows_out.append(rows)
        conf_out.append(np.zeros(len(rows), bool))
        ts_out.append(tx.ts[rows] + 3600 + np.round(delay * DAY).astype(np.int64))
    if not rows_out:
        return Labels(np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.int64))
    rows = np.concatenate(rows_out)
    ts = np.concatenate(ts_out)
    order = np.lexsort((rows, ts))
    return Labels(rows[order], np.concatenate(conf_out)[order], ts[order])


def reported_at_text(reported_ts: np.ndarray, start: date) -> list[str]:
    """`YYYY-MM-DD HH:MM:SS+07:00` (the bank works in WIB) for each timestamp."""
    base = np.datetime64(start.isoformat(), "s")
    stamps = np.datetime_as_string(base + reported_ts.astype("timedelta64[s]"), unit="s")
    return [s.replace("T", " ") + "+07:00" for s in stamps]
