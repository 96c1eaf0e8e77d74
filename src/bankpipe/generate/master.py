"""Master data (locations, banks, customers, accounts) and each account's behaviour profile, as numpy columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bankpipe.generate import reference as ref
from bankpipe.generate.ids import IdWidths, capacity
from bankpipe.generate.sampling import inverse_cdf_table

# Balance medians per account type (IDR, Standard segment); Loan is the outstanding principal.
_BALANCE_MEDIAN = np.array([6e6, 20e6, 80e6, 120e6])
# Median transaction amount per account type (IDR, Standard segment).
_AMOUNT_MEDIAN = np.array([350e3, 1.2e6, 3e6, 2e6])
# How busy an account type is relative to Savings.
_ACTIVITY = np.array([1.0, 1.6, 0.08, 0.15])
MAX_COUNTERPARTIES = 6
# Common drift of the log amount habit per 30 days (+2 %): prices and incomes rise slowly.
MEAN_TREND = 0.02
FAVOURITE_MERCHANTS = 3


@dataclass
class Master:
    """Master data, 0-based row indices everywhere; an entity's id number is index + 1."""

    widths: IdWidths
    cities: ref.Cities
    cust_first: np.ndarray  # index into names()[0]
    cust_last: np.ndarray
    cust_email_rank: np.ndarray  # namesake counter in the email (0 = none)
    cust_segment: np.ndarray  # index into SEGMENTS
    cust_location: np.ndarray  # city row
    cust_bank: np.ndarray  # index into BANKS
    acc_customer: np.ndarray  # customer row
    acc_type: np.ndarray  # index into ACCOUNT_TYPES
    acc_saldo_cents: np.ndarray  # int64, IDR cents
    # When each customer joined and each account was opened, as a fraction of the bank's history
    # before the period (0 = its beginning, 1 = the period's start); None where a profile has no such notion.
    cust_joined: np.ndarray | None = None
    acc_opened: np.ndarray | None = None

    @property
    def n_customers(self) -> int:
        return len(self.cust_segment)

    @property
    def n_accounts(self) -> int:
        return len(self.acc_type)


@dataclass
class Profiles:
    """Per-account habits that drive the transactions (kept out of the files; part of the ground truth)."""

    activity: np.ndarray  # relative transaction rate
    mu: np.ndarray  # log median amount, IDR
    sigma: np.ndarray  # log-amount spread
    digital_bucket: np.ndarray  # index into transactions.DIGITAL_BUCKETS: high prefers mobile/internet
    foreign_affinity: np.ndarray  # relative chance of a foreign-currency transaction
    counterparties: np.ndarray  # (n_accounts, MAX_COUNTERPARTIES) account rows
    n_counterparties: np.ndarray
    merchants: np.ndarray  # (n_accounts, FAVOURITE_MERCHANTS) account rows
    merchant_pool: np.ndarray
    mule_pool: np.ndarray
    is_mule: np.ndarray
    home: np.ndarray  # int16 city row of the account holder
    city_table: np.ndarray  # inverse-CDF table of cities by population (where people travel to)
    trend: np.ndarray  # drift of the log amount habit per 30 days (habits move over the period)


def _email_rank(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Namesake counter per customer (0 for the first one), so that first.last[n]@example.com is unique."""
    _, lasts = ref.names()
    key = first.astype(np.int64) * len(lasts) + last
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.r_[True, sorted_key[1:] != sorted_key[:-1]] if len(key) else np.zeros(0, bool)
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(key)), 0))
    rank = np.empty(len(key), dtype=np.int64)
    rank[order] = np.arange(len(key)) - group_start
    return rank


def build_master(customers: int, accounts_per_customer: int, transactions: int, rng: np.random.Generator) -> Master:
    """Customers spread over real cities by population, 1..max accounts each with balances by type."""
    cities = ref.cities()
    firsts, lasts = ref.names()
    n = customers
    cust_first = rng.integers(0, len(firsts), n).astype(np.int32)
    cust_last = rng.integers(0, len(lasts), n).astype(np.int32)
    cust_segment = rng.choice(len(ref.SEGMENTS), n, p=ref.SEGMENT_WEIGHTS).astype(np.int8)
    city_p = cities.population / cities.population.sum()
    cust_location = rng.choice(len(cities), n, p=city_p).astype(np.int32)
    bank_w = np.array([b.weight for b in ref.BANKS])
    cust_bank = rng.choice(len(ref.BANKS), n, p=bank_w / bank_w.sum()).astype(np.int8)

    # Accounts per customer: mostly one, fewer with more (geometric weights up to the maximum).
    k_w = 0.55 * 0.5 ** np.arange(accounts_per_customer)
    n_acc_per = rng.choice(np.arange(1, accounts_per_customer + 1), n, p=k_w / k_w.sum())
    acc_customer = np.repeat(np.arange(n, dtype=np.int32), n_acc_per)
    nth = np.arange(len(acc_customer)) - np.repeat(np.cumsum(n_acc_per) - n_acc_per, n_acc_per)
    first_type = rng.choice(2, len(acc_customer), p=[0.75, 0.25])
    later_type = rng.choice(4, len(acc_customer), p=[0.25, 0.25, 0.3, 0.2])
    acc_type = np.where(nth == 0, first_type, later_type).astype(np.int8)
    # Account ids follow opening order: customers joined in id order, later accounts opened later.
    cust_joined = np.sort(rng.random(n))
    joined = cust_joined[acc_customer]
    opened = np.where(nth == 0, joined, joined + (1 - joined) * rng.random(len(acc_customer)))
    order = np.argsort(opened, kind="stable")
    acc_customer, acc_type, opened = acc_customer[order], acc_type[order], opened[order]

    wealth = ref.SEGMENT_WEALTH[cust_segment[acc_customer]] ** 0.8
    saldo = _BALANCE_MEDIAN[acc_type] * wealth * rng.lognormal(0.0, 0.9, len(acc_type))
    saldo_cents = np.clip(np.round(saldo * 100), 10_000_00, 50_000_000_000_00).astype(np.int64)

    widths = IdWidths.for_counts(
        locations=len(cities), banks=len(ref.BANKS), customers=n, accounts=len(acc_type), transactions=transactions
    )
    return Master(
        widths=widths,
        cities=cities,
        cust_first=cust_first,
        cust_last=cust_last,
        cust_email_rank=_email_rank(cust_first, cust_last),
        cust_segment=cust_segment,
        cust_location=cust_location,
        cust_bank=cust_bank,
        acc_customer=acc_customer,
        acc_type=acc_type,
        acc_saldo_cents=saldo_cents,
        cust_joined=cust_joined,
        acc_opened=opened,
    )


def orphan_numbers(master: Master, count: int) -> np.ndarray:
    """Account id numbers for transactions whose account is missing from the batch files."""
    # Taken from the top of the run's id space: they fit the width and stay clear of the ids
    # `--mutate` hands out next (max + 1, upwards).
    top = capacity(master.n_accounts)
    return top - np.arange(count, dtype=np.int64)


def build_profiles(master: Master, rng: np.random.Generator) -> Profiles:
    """Activity, amount habit (lognormal per account), channel taste, counterparties, merchants, mules."""
    n = master.n_accounts
    seg = master.cust_segment[master.acc_customer]
    wealth = ref.SEGMENT_WEALTH[seg]
    activity = _ACTIVITY[master.acc_type] * (1 + 0.1 * seg) * rng.lognormal(0.0, 0.8, n)
    mu = np.log(_AMOUNT_MEDIAN[master.acc_type] * wealth**0.6) + rng.normal(0.0, 0.5, n)
    sigma = rng.uniform(0.35, 0.8, n)
    # Taste for digital channels, in 9 buckets from branch-goers to app-only (log-uniform-ish spread).
    digital_bucket = np.clip(np.round(rng.normal(4.0, 2.0, n)), 0, 8).astype(np.int8)
    # Travellers and online shoppers abroad are few, richer segments more often.
    foreign_affinity = np.where(rng.random(n) < 0.08 + 0.04 * seg, rng.lognormal(0.0, 0.5, n), 0.01)

    # Merchants: a slice of Checking accounts receives card/QR payments; mules: a few Savings
    # accounts that fraudsters use to receive stolen money (never anyone's regular counterparty).
    checking = np.flatnonzero(master.acc_type == 1)
    n_merchants = max(5, n // 50)
    merchant_pool = (
        rng.choice(checking, min(n_merchants, len(checking)), replace=False) if len(checking) else np.arange(min(5, n))
    )
    is_merchant = np.zeros(n, dtype=bool)
    is_merchant[merchant_pool] = True
    savings = np.flatnonzero((master.acc_type == 0) & ~is_merchant)
    n_mules = max(3, n // 300)
    mule_pool = rng.choice(savings, min(n_mules, len(savings)), replace=False) if len(savings) else merchant_pool[:1]
    is_mule = np.zeros(n, dtype=bool)
    is_mule[mule_pool] = True

    # Regular counterparties: family, landlord, colleagues — accounts that are not mules.
    regular = np.flatnonzero(~is_mule)
    if len(regular) == 0:  # a toy bank of one or two accounts: everyone is everyone's counterparty
        regular = np.arange(n)
    counterparties = regular[rng.integers(0, len(regular), (n, MAX_COUNTERPARTIES))].astype(np.int32)
    # Nobody is their own counterparty: move such slots to the next regular account.
    own = counterparties == np.arange(n, dtype=np.int32)[:, None]
    if own.any() and len(regular) > 1:
        nxt = (np.searchsorted(regular, counterparties[own]) + 1) % len(regular)
        counterparties[own] = regular[nxt]
    n_counterparties = rng.integers(1, MAX_COUNTERPARTIES + 1, n).astype(np.int8)
    merchants = merchant_pool[rng.integers(0, len(merchant_pool), (n, FAVOURITE_MERCHANTS))].astype(np.int32)
    _add_mule_senders(counterparties, n_counterparties, mule_pool, regular, rng)
    # Habits drift: a common slow rise (prices, incomes) and each account's own direction.
    trend = (MEAN_TREND + rng.normal(0.0, 0.08, n)).astype(np.float32)
    return Profiles(
        activity=activity,
        mu=mu,
        sigma=sigma,
        digital_bucket=digital_bucket,
        foreign_affinity=foreign_affinity,
        counterparties=counterparties,
        n_counterparties=n_counterparties,
        merchants=merchants,
        merchant_pool=np.sort(merchant_pool),
        mule_pool=np.sort(mule_pool),
        is_mule=is_mule,
        home=master.cust_location[master.acc_customer].astype(np.int16),
        city_table=inverse_cdf_table(master.cities.population).astype(np.int16),
        trend=trend,
    )


def _add_mule_senders(
    counterparties: np.ndarray,
    n_counterparties: np.ndarray,
    mule_pool: np.ndarray,
    regular: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Give every mule 2–5 legitimate senders (family, an employer) that pay it as a regular counterparty.

    A mule is an ordinary person's account too: money that is not fraud comes in, so "receives
    transfers" is no rule for a mule. The sender's slot is drawn among its used ones.
    """
    senders_each = rng.integers(2, 6, len(mule_pool))
    mules = np.repeat(mule_pool, senders_each)
    if len(mules) == 0 or len(regular) == 0:
        return
    senders = regular[rng.integers(0, len(regular), len(mules))]
    slot = (rng.random(len(mules)) * n_counterparties[senders]).astype(np.int64)
    # The first sender (a parent, the employer) pays the mule most often: its first slot.
    slot[np.r_[0, np.cumsum(senders_each)[:-1]]] = 0
    counterparties[senders, slot] = mules
