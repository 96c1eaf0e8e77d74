"""Planted fraud (in the spirit of the Fraud Detection Handbook's simulator) and the late-arriving labels."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import numpy as np

from bankpipe.generate.config import FraudConfig
from bankpipe.generate.master import Master, Profiles
from bankpipe.generate.sampling import weighted_sample
from bankpipe.generate.transactions import (
    ATM,
    DAY,
    EDC,
    INTERNET,
    MOBILE,
    PAYMENT,
    SUCCESS,
    TRANSFER,
    Tx,
)

log = logging.getLogger(__name__)

SCENARIOS: tuple[str, ...] = ("none", "large_amount", "account_takeover", "compromised_point")
LARGE, TAKEOVER, COMPROMISED = 1, 2, 3
# Reporting delay (days, log-normal median and spread) per scenario: a drained account is noticed
# fast; each victim of a compromised point reports the unauthorised withdrawal or card payment on
# its own within days, so a point's fraud becomes known while the point is still compromised.
_DELAY = {LARGE: (3.0, 0.7), TAKEOVER: (1.5, 0.6), COMPROMISED: (2.5, 0.6)}
_FALSE_DELAY = (5.0, 0.6)
# How long a point stays compromised (days, inclusive bounds): longer than the reporting delay, as
# in the Fraud Detection Handbook's simulator (28 days), so its later fraud is learnable.
COMPROMISED_DAYS = (14, 28)
# Victims per compromised point (inclusive bounds): a skimmer harvests a limited number of cards, so
# the scenario's fraud is spread over many points at a time (the handbook compromises two terminals
# a day) instead of a busy city's ATMs taking the whole budget in one incident.
COMPROMISED_VICTIMS = (20, 60)
# Points tried at most (< 256: a point's slot is one byte); a run too big for that many points at
# the victim cap gets a higher cap.
_MAX_POINTS = 200


def plan_counts(n_total: int, cfg: FraudConfig) -> dict[str, int]:
    """Fraudulent transactions per scenario for a run of n_total transactions."""
    k = round(cfg.rate * n_total)
    mix = cfg.mix()
    large = round(k * mix["large_amount"])
    takeover = min(round(k * mix["account_takeover"]), k - large)
    return {"large_amount": large, "account_takeover": takeover, "compromised_point": k - large - takeover}


def takeover_bursts(
    master: Master, prof: Profiles, k: int, first_day: int, n_days: int, rng: np.random.Generator, incident0: int = 0
) -> Tx:
    """k transfers in night bursts of 3–8 from taken-over accounts to mule accounts they never paid before."""
    tx = Tx.empty(k)
    if k == 0 or master.n_accounts == 0:
        return tx
    sizes = rng.integers(3, 9, k // 3 + 1)
    ends = np.cumsum(sizes)
    n_bursts = int(np.searchsorted(ends, k) + 1)
    sizes = sizes[:n_bursts].copy()
    sizes[-1] -= int(ends[n_bursts - 1] - k)
    burst = np.repeat(np.arange(n_bursts), sizes)

    # Fraudsters go for well-funded everyday accounts.
    eligible = (master.acc_type <= 1) & ~prof.is_mule
    weights = np.where(eligible, master.acc_saldo_cents.astype(np.float64), 0.0)
    victims = weighted_sample(weights, n_bursts, rng)
    if len(victims) < n_bursts:
        victims = rng.choice(np.flatnonzero(eligible) if eligible.any() else np.arange(master.n_accounts), n_bursts)
    else:
        victims = rng.permutation(victims)
    acc = victims[burst].astype(np.int32)

    start = (first_day + rng.integers(0, n_days, n_bursts)) * DAY + rng.integers(0, 5 * 3600, n_bursts)
    gaps = rng.integers(30, 900, k)
    first_of_burst = np.r_[True, burst[1:] != burst[:-1]]
    gaps[first_of_burst] = 0
    csum = np.cumsum(gaps)
    offset = csum - np.repeat(csum[first_of_burst], sizes)
    tx.ts = (start[burst] + offset).astype(np.int64)
    tx.account = acc
    tx.dest = prof.mule_pool[rng.integers(0, len(prof.mule_pool), k)].astype(np.int32)
    tx.ttype[:] = TRANSFER
    tx.channel = np.where(rng.random(k) < 0.7, MOBILE, INTERNET).astype(np.int8)
    # The attacker sits elsewhere: any city but the victim's home, not weighted by population.
    home = master.cust_location[master.acc_customer[acc]]
    n_cities = len(master.cities)
    tx.location = ((home + rng.integers(1, max(n_cities, 2), k)) % max(n_cities, 1)).astype(np.int16)
    drain = master.acc_saldo_cents[acc] * rng.uniform(0.05, 0.3, k)
    tx.amount_idr = np.clip(np.round(drain, -2), 500_000_00, 500_000_000_00).astype(np.int64)
    tx.amount = tx.amount_idr.copy()
    tx.new_cp[:] = True
    tx.fraud[:] = TAKEOVER
    tx.incident = (incident0 + burst).astype(np.int64)
    return tx


def plant_large_amounts(tx: Tx, prof: Profiles, k: int, rng: np.random.Generator, incident0: int) -> int:
    """Turn k legitimate IDR transfers/payments into amounts 10–50x the account's habit; returns planted."""
    eligible = (tx.fraud == 0) & (tx.currency == 0) & ((tx.ttype == TRANSFER) | (tx.ttype == PAYMENT))
    candidates = np.flatnonzero(eligible)
    rows = np.sort(rng.choice(candidates, min(k, len(candidates)), replace=False)) if k else candidates[:0]
    habit = np.exp(prof.mu[tx.account[rows]])
    tx.amount_idr[rows] = np.round(habit * rng.uniform(10, 50, len(rows)) * 100).astype(np.int64)
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
        chosen = rng.choice(in_window, m, replace=False)
        incident = incident0 + len(points)
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
