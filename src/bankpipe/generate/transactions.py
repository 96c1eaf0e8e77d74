"""Vectorised transaction simulation: calendar rhythm, habits, counterparties, channels, currencies, status."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, fields
from datetime import date, timedelta

import numpy as np

from bankpipe.generate import reference as ref
from bankpipe.generate.master import Master, Profiles
from bankpipe.generate.sampling import TABLE_SIZE, conditional_tables, inverse_cdf_table, weighted_sample

TRANSFER, PAYMENT, WITHDRAWAL, DEPOSIT = range(4)
MOBILE, INTERNET, ATM, BRANCH, EDC, QRIS = range(6)
SUCCESS, PENDING, FAILED = range(3)
DAY = 86_400
# Legitimate transactions that look like a fraud rule would flag them (ground truth `legit_pattern`).
LEGIT_PATTERNS: tuple[str, ...] = ("none", "travel", "one_off_large", "night_new_payee", "mule_inflow")
TRAVEL, ONE_OFF_LARGE, NIGHT_NEW_PAYEE, MULE_INFLOW = 1, 2, 3, 4
# Seasonal spending (log amount): year-end holidays and the weeks before Idul Fitri (THR bonuses,
# mudik). Lebaran moves through the Gregorian year; dates as announced by the Indonesian government.
_YEAR_END_BUMP = 0.18
_LEBARAN_BUMP = 0.25
_LEBARAN = tuple(
    date.fromisoformat(d)
    for d in ("2023-04-22", "2024-04-10", "2025-03-31", "2026-03-20", "2027-03-10", "2028-02-27", "2029-02-14")
)

# Transaction type mix per account type (rows: Savings, Checking, Deposit, Loan; columns: TX_TYPES).
_TYPE_P = np.array(
    [
        [0.30, 0.30, 0.25, 0.15],
        [0.38, 0.37, 0.10, 0.15],
        [0.15, 0.05, 0.30, 0.50],
        [0.05, 0.70, 0.15, 0.10],
    ]
)
# Log amount shift per transaction type (salary credits and savings deposits are larger).
_TYPE_AMOUNT = np.log(np.array([1.0, 0.5, 0.8, 1.5]))
# Channel mix per transaction type (columns: CHANNELS).
_CHANNEL_P = np.array(
    [
        [0.60, 0.22, 0.08, 0.10, 0.00, 0.00],
        [0.22, 0.13, 0.00, 0.02, 0.33, 0.30],
        [0.00, 0.00, 0.85, 0.15, 0.00, 0.00],
        [0.35, 0.10, 0.25, 0.30, 0.00, 0.00],
    ]
)
# Which channels the per-account "digital" taste scales up (+1) or down (-1).
_DIGITAL_EXP = np.array([1.0, 1.0, 0.0, -1.0, 0.0, 1.0])
_PHYSICAL = np.array([False, False, True, True, True, True])
# Hour-of-day profile (WIB): quiet nights, a morning ramp, lunch and evening peaks.
HOUR_WEIGHTS = np.array(
    [
        0.6,
        0.35,
        0.25,
        0.2,
        0.3,
        0.8,
        1.8,
        3.2,
        4.5,
        5.5,
        6.0,
        6.2,
        6.5,
        6.0,
        5.6,
        5.5,
        5.8,
        6.2,
        6.3,
        6.6,
        6.8,
        6.0,
        4.2,
        2.0,
    ]
)
# Weekday factor, Monday first: Friday busiest, Sunday quietest.
_WEEKDAY = np.array([1.0, 0.97, 0.97, 1.0, 1.12, 0.9, 0.75])
# Fixed-date national holidays: New Year, Independence Day, Christmas.
_HOLIDAYS = {(1, 1): 0.7, (8, 17): 0.8, (12, 25): 0.75}
# Status model: channel terms for failure (machines and terminals fail more) and for pending.
_CH_FAIL = np.array([0.0, 0.3, 1.1, -0.6, 0.9, 0.4], np.float32)
_CH_PEND = np.array([0.0, 0.5, -0.8, 1.1, 0.2, -0.2], np.float32)


@dataclass
class Tx:
    """Transactions as parallel numpy columns (one row per transaction)."""

    ts: np.ndarray  # int64 seconds since start_date 00:00 WIB
    account: np.ndarray  # int32 account row (for orphans: the row whose behaviour it borrowed)
    dest: np.ndarray  # int32 account row of akun_tujuan
    ttype: np.ndarray  # int8 index into TX_TYPES
    channel: np.ndarray  # int8 index into CHANNELS
    location: np.ndarray  # int16 city row where it happened
    currency: np.ndarray  # int8 index into CURRENCIES
    amount_idr: np.ndarray  # int64 IDR cents
    amount: np.ndarray  # int64 cents of `currency` (whole units * 100 for JPY)
    new_cp: np.ndarray  # bool, a transfer to an account that is not a regular counterparty
    fraud: np.ndarray  # int8 index into fraud.SCENARIOS (0 = legitimate)
    status: np.ndarray  # int8 index into STATUSES
    orphan: np.ndarray  # int32 account id number written instead (0 = the real account)
    incident: np.ndarray  # int32 fraud incident (one burst, one compromised point, ...); -1 = none
    pattern: np.ndarray  # int8 index into LEGIT_PATTERNS: a legitimate look-alike of a fraud rule (0 = none)

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, idx: np.ndarray) -> Tx:
        """Rows `idx` of every column."""
        return Tx(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def view(self, lo: int, hi: int) -> Tx:
        """Rows [lo, hi) as views (writes go to this Tx)."""
        return Tx(**{f.name: getattr(self, f.name)[lo:hi] for f in fields(self)})

    def put(self, idx: np.ndarray, other: Tx) -> None:
        """Overwrite rows `idx` with the rows of `other`."""
        for f in fields(self):
            getattr(self, f.name)[idx] = getattr(other, f.name)

    @classmethod
    def concat(cls, parts: list[Tx]) -> Tx:
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    @classmethod
    def empty(cls, n: int) -> Tx:
        """n rows of zeros (callers fill every column)."""
        return cls(
            ts=np.zeros(n, np.int64),
            account=np.zeros(n, np.int32),
            dest=np.zeros(n, np.int32),
            ttype=np.zeros(n, np.int8),
            channel=np.zeros(n, np.int8),
            location=np.zeros(n, np.int16),
            currency=np.zeros(n, np.int8),
            amount_idr=np.zeros(n, np.int64),
            amount=np.zeros(n, np.int64),
            new_cp=np.zeros(n, bool),
            fraud=np.zeros(n, np.int8),
            status=np.zeros(n, np.int8),
            orphan=np.zeros(n, np.int32),
            incident=np.full(n, -1, np.int32),
            pattern=np.zeros(n, np.int8),
        )


def day_dates(start: date, n_days: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n_days)]


def is_payday(d: date) -> bool:
    """Salaries land on the 25th (civil servants and most firms) or the last day of the month."""
    last = calendar.monthrange(d.year, d.month)[1]
    return d.day in (25, 26) or d.day == last or d.day == 1


def day_weights(start: date, n_days: int, rng: np.random.Generator) -> np.ndarray:
    """Relative volume per day: weekday rhythm, payday peaks, holidays, a little day-to-day noise."""
    w = np.empty(n_days)
    for i, d in enumerate(day_dates(start, n_days)):
        f = _WEEKDAY[d.weekday()] * _HOLIDAYS.get((d.month, d.day), 1.0)
        if d.day == 25 or d.day == calendar.monthrange(d.year, d.month)[1]:
            f *= 1.45
        elif is_payday(d):
            f *= 1.2
        w[i] = f
    return w * rng.lognormal(0.0, 0.05, n_days)


def sample_times(n: int, start: date, first_day: int, n_days: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted seconds since start 00:00 for n transactions over days [first_day, first_day + n_days)."""
    day_table = inverse_cdf_table(day_weights(start + timedelta(days=first_day), n_days, rng))
    hour_table = inverse_cdf_table(HOUR_WEIGHTS)
    ts = (day_table[rng.integers(0, TABLE_SIZE, n)].astype(np.int64) + first_day) * DAY
    ts += hour_table[rng.integers(0, TABLE_SIZE, n)] * 3600
    ts += rng.integers(0, 3600, n)
    ts.sort()
    return ts


def day_kind(ts: np.ndarray, start: date) -> np.ndarray:
    """Per row: bit 0 weekend, bit 1 payday."""
    day = ts // DAY
    lo, hi = (int(day.min()), int(day.max()) + 1) if len(day) else (0, 1)
    dates = day_dates(start + timedelta(days=lo), hi - lo)
    lut = np.array([(d.weekday() >= 5) + 2 * is_payday(d) for d in dates], np.int8)
    return lut[day - lo]


def _type_probs() -> np.ndarray:
    """Type mix per (account type, day kind): weekends shift transfers to payments, paydays add deposits."""
    rows = []
    for acc_type in range(4):
        for kind in range(4):
            p = _TYPE_P[acc_type].copy()
            if kind & 1:
                p[PAYMENT] *= 1.3
                p[TRANSFER] *= 0.8
            if kind & 2:
                p[DEPOSIT] *= 3.0
            rows.append(p / p.sum())
    return np.array(rows)


# Digital taste is bucketed so that the channel draw is one table gather per row.
DIGITAL_BUCKETS = np.exp(np.linspace(-1.2, 1.2, 9))


def _channel_probs() -> np.ndarray:
    rows = []
    for ttype in range(4):
        for d in DIGITAL_BUCKETS:
            p = _CHANNEL_P[ttype] * d**_DIGITAL_EXP
            rows.append(p / p.sum())
    return np.array(rows)


_TYPE_TABLES = conditional_tables(_type_probs())
_CHANNEL_TABLES = conditional_tables(_channel_probs())
_FOREIGN_TYPE = np.array([0.6, 1.0, 0.4, 0.2])
_TRAVEL = np.where(_PHYSICAL, 0.12, 0.03)


def simulate(
    master: Master,
    prof: Profiles,
    ts: np.ndarray,
    start: date,
    rng: np.random.Generator,
    foreign_share: float,
    out: Tx | None = None,
) -> Tx:
    """Legitimate transactions at the given (sorted) times, written into `out` (views are fine) or a new Tx.

    Status is drawn later by `assign_status`, once fraud is planted.
    """
    n = len(ts)
    tx = Tx.empty(n) if out is None else out
    if n == 0 or master.n_accounts == 0:
        return tx
    tx.ts[:] = ts
    # Busy accounts transact more: draw every row's account from the activity weights, then
    # shuffle so that accounts are not correlated with the (sorted) times.
    counts = rng.multinomial(n, prof.activity / prof.activity.sum())
    acc = np.repeat(np.arange(master.n_accounts, dtype=np.int32), counts)
    rng.shuffle(acc)
    tx.account[:] = acc

    kind = day_kind(ts, start)
    combo = master.acc_type[acc].astype(np.int16) * 4 + kind
    ttype = _TYPE_TABLES[combo, rng.integers(0, _TYPE_TABLES.shape[1], n)]
    tx.ttype[:] = ttype

    # Amount: the account's lognormal habit (drifting, with seasonal bumps), shifted by type; salary
    # credits on payday are bigger.
    log_amt = habit_log(prof, acc, ts, start) + prof.sigma[acc] * rng.standard_normal(n) + _TYPE_AMOUNT[ttype]
    salary = ((kind & 2) > 0) & (ttype == DEPOSIT)
    log_amt[salary] += np.log(2.5)
    amount = np.clip(np.exp(log_amt), 10_000, 5e9)

    combo = ttype.astype(np.int16) * len(DIGITAL_BUCKETS) + prof.digital_bucket[acc]
    channel = _CHANNEL_TABLES[combo, rng.integers(0, _CHANNEL_TABLES.shape[1], n)]
    tx.channel[:] = channel
    # Cash machines pay out in 50k notes, up to a daily limit.
    atm_cash = np.flatnonzero((channel == ATM) & (ttype == WITHDRAWAL))
    amount[atm_cash] = np.clip(np.round(amount[atm_cash] / 50_000) * 50_000, 50_000, 10_000_000)
    tx.amount_idr[:] = np.round(amount * 100)

    # Counterparties: a stable set per account for transfers (skewed to the first ones), the
    # favourite merchants for payments, the account itself for cash in/out.
    dest = acc.copy()
    tr = np.flatnonzero(ttype == TRANSFER)
    a = acc[tr]
    n_cp = prof.n_counterparties[a]
    slot = np.minimum((n_cp * rng.random(len(tr)) ** 1.7).astype(np.int64), n_cp - 1)
    to = prof.counterparties[a, slot]
    fresh = rng.random(len(tr)) >= 0.9
    other = rng.integers(0, master.n_accounts, int(fresh.sum())).astype(np.int32)
    bad = prof.is_mule[other] | (other == a[fresh])
    other[bad] = prof.counterparties[a[fresh][bad], 0]
    to[fresh] = other
    dest[tr] = to
    tx.new_cp[tr[fresh]] = new_counterparty(prof, a[fresh], other, np.ones(len(other), bool))
    pay = np.flatnonzero(ttype == PAYMENT)
    fav = rng.random(len(pay)) < 0.75
    merchant = prof.merchant_pool[rng.integers(0, len(prof.merchant_pool), len(pay))]
    merchant[fav] = prof.merchants[acc[pay[fav]], rng.integers(0, prof.merchants.shape[1], int(fav.sum()))]
    dest[pay] = merchant
    tx.dest[:] = dest

    # Where: mostly the home city; cards and branches travel more than phones.
    location = prof.home[acc]
    away = np.flatnonzero(rng.random(n) < _TRAVEL[channel])
    location[away] = prof.city_table[rng.integers(0, len(prof.city_table), len(away))]
    tx.location[:] = location

    # Foreign currency: exactly the configured share, concentrated on accounts with the habit.
    if foreign_share > 0:
        rows = weighted_sample(prof.foreign_affinity[acc] * _FOREIGN_TYPE[ttype], round(foreign_share * n), rng)
        tx.currency[rows] = _FOREIGN_TABLE[rng.integers(0, len(_FOREIGN_TABLE), len(rows))]
    tx.amount[:] = to_currency_cents(tx.amount_idr, tx.currency)
    return tx


_FOREIGN_TABLE = inverse_cdf_table(ref.FOREIGN_WEIGHTS).astype(np.int8)


def season(start: date, first_day: int, n_days: int) -> np.ndarray:
    """Seasonal log-amount shift per day: smooth bumps over the year-end holidays and before Lebaran."""
    first = start + timedelta(days=first_day)
    days = first.toordinal() + np.arange(n_days, dtype=np.float64)
    out = np.zeros(n_days)
    for year in range(first.year - 1, (first + timedelta(days=n_days)).year + 1):
        peak = date(year, 12, 24).toordinal()
        out += _YEAR_END_BUMP * np.exp(-0.5 * ((days - peak) / 9.0) ** 2)
    for lebaran in _LEBARAN:
        # Spending builds up over the three weeks before the holiday and stops with it.
        before = lebaran.toordinal() - days
        out += _LEBARAN_BUMP * np.where((before >= 0) & (before <= 21), 1 - before / 21, 0.0)
    return out


def habit_log(prof: Profiles, acc: np.ndarray, ts: np.ndarray, start: date) -> np.ndarray:
    """Each row's account habit (log median IDR) at its time: base, trend since the start, season."""
    day = ts // DAY
    lo = int(day.min()) if len(day) else 0
    hi = int(day.max()) + 1 if len(day) else 1
    lut = season(start, lo, hi - lo).astype(np.float32)
    return prof.mu[acc] + prof.trend[acc] * (day / np.float32(30)).astype(np.float32) + lut[day - lo]


def plant_lookalikes(
    tx: Tx,
    master: Master,
    prof: Profiles,
    travel_accounts: float,
    one_off_large: float,
    night_new_payee: float,
    start: date,
    first_day: int,
    n_days: int,
    rng: np.random.Generator,
) -> None:
    """Legitimate cases that each fraud rule would flag: trips away, one-off big buys, new payees at night.

    Only legitimate rows change (call before fraud is planted on existing rows); mule inflows (set up
    in the profiles) are only marked.
    """
    n = len(tx)
    if n == 0 or master.n_accounts == 0:
        return
    legit = tx.fraud == 0
    # Travel: some accounts spend 2–7 days mostly in one other city (any channel: a phone travels too).
    n_trips = min(master.n_accounts, round(travel_accounts * master.n_accounts * n_days / 30))
    if n_trips and len(master.cities) > 1:
        who = rng.choice(master.n_accounts, n_trips, replace=False)
        trip_city = np.full(master.n_accounts, -1, np.int32)
        city = prof.city_table[rng.integers(0, len(prof.city_table), n_trips)].astype(np.int32)
        same = city == prof.home[who]
        city[same] = (city[same] + 1 + rng.integers(0, len(master.cities) - 1, int(same.sum()))) % len(master.cities)
        trip_city[who] = city
        length = rng.integers(2, 8, n_trips)
        first = np.zeros(master.n_accounts, np.int64)
        last = np.full(master.n_accounts, -1, np.int64)
        first[who] = first_day + rng.integers(0, max(1, n_days - 1), n_trips)
        last[who] = first[who] + length - 1
        rows = np.flatnonzero((trip_city[tx.account] >= 0) & legit & (tx.ttype != DEPOSIT))
        day = tx.ts[rows] // DAY
        acc = tx.account[rows]
        rows = rows[(day >= first[acc]) & (day <= last[acc]) & (rng.random(len(rows)) < 0.85)]
        tx.location[rows] = trip_city[tx.account[rows]]
        tx.pattern[rows] = TRAVEL
    # One-off big purchases or transfers (a laptop, a deposit on a flat): 3–30x the habit.
    pay = np.flatnonzero(legit & (tx.currency == 0) & ((tx.ttype == PAYMENT) | (tx.ttype == TRANSFER)))
    rows = np.sort(rng.choice(pay, min(len(pay), round(one_off_large * n)), replace=False))
    habit = np.exp(habit_log(prof, tx.account[rows], tx.ts[rows], start))
    factor = np.exp(rng.uniform(np.log(3), np.log(30), len(rows)))
    tx.amount_idr[rows] = np.round(habit * factor * 100).astype(np.int64)
    tx.amount[rows] = tx.amount_idr[rows]
    tx.pattern[rows] = ONE_OFF_LARGE
    # New payees at night: people pay a new seller or a friend late, as a takeover does.
    hour = (tx.ts % DAY) // 3600
    night = np.flatnonzero(legit & (tx.ttype == TRANSFER) & (hour < 6) & ~tx.new_cp & (tx.pattern == 0))
    rows = night[rng.random(len(night)) < night_new_payee]
    other = rng.integers(0, master.n_accounts, len(rows)).astype(np.int32)
    ok = ~prof.is_mule[other] & (other != tx.account[rows])
    rows, other = rows[ok], other[ok]
    fresh = new_counterparty(prof, tx.account[rows], other, np.ones(len(rows), bool))
    rows, other = rows[fresh], other[fresh]
    tx.dest[rows] = other
    tx.new_cp[rows] = True
    tx.pattern[rows] = NIGHT_NEW_PAYEE
    mark_mule_inflows(tx, prof)


def mark_mule_inflows(tx: Tx, prof: Profiles) -> None:
    """Mark legitimate transfers into mule accounts (family and employers pay mules too)."""
    rows = np.flatnonzero((tx.fraud == 0) & (tx.ttype == TRANSFER) & prof.is_mule[tx.dest] & (tx.pattern == 0))
    tx.pattern[rows] = MULE_INFLOW


@dataclass
class Balances:
    """Balances that follow the transactions: per account at the start and end, per row at the start of its day."""

    opening: np.ndarray  # int64 cents per account
    closing: np.ndarray  # int64 cents per account
    before: np.ndarray | None  # int64 cents: the paying account's balance at the start of the row's day


# Most (account, day) cells the balance run holds at once; longer runs are run in buckets of days.
_MAX_CELLS = 20_000_000


def balances(
    tx: Tx,
    floor: np.ndarray,
    counted: np.ndarray | None = None,
    cover: float | np.ndarray = 1.0,
    minimum: int | None = None,
    per_row: bool = True,
) -> Balances:
    """Run every account's balance through the rows day by day; `counted` rows move money (default all).

    Money leaves the paying account (a deposit adds to it) and reaches the receiving account of a
    transfer or payment. Balances are end-of-day ones, as a core banking system's daily run keeps
    them (a payment is judged against the balance its day started with). The opening balance is
    `floor` plus `cover` times what the account needs so that no end-of-day balance is below
    `floor`: with cover 1 the lowest point is the drawn balance, with less an account can run short
    before money comes in. With `minimum`, the opening is raised where needed so that no end-of-day
    balance is below it. Closing = opening + the net flow of the counted rows, exactly. `before`
    only when `per_row`.
    """
    n, n_acc = len(tx), len(floor)
    amount = (tx.amount_idr if counted is None else np.where(counted, tx.amount_idr, 0)).astype(np.float64)
    moves = ((tx.ttype == TRANSFER) | (tx.ttype == PAYMENT)) & (tx.dest != tx.account)
    received = np.where(moves, amount, 0.0)
    np.negative(amount, out=amount, where=tx.ttype != DEPOSIT)  # now: what the paying side gains
    day = tx.ts // DAY if n else np.zeros(0, np.int64)
    per = max(1, -(-(n_acc * (int(day.max()) + 1 if n else 1)) // _MAX_CELLS))
    bucket = day // per if per > 1 else day
    n_buckets = int(bucket.max()) + 1 if n else 1
    cells = n_acc * n_buckets
    cell = tx.account.astype(np.int64) * n_buckets + bucket
    # Sums of int64 cents in float64 stay exact below 2**53 cents (90 trillion IDR per account-day).
    flow = np.bincount(cell, amount, cells)
    flow += np.bincount(tx.dest.astype(np.int64) * n_buckets + bucket, received, cells)
    flow = flow.reshape(n_acc, n_buckets)
    end_of_day = np.cumsum(flow, axis=1)
    low = np.minimum(end_of_day.min(axis=1), 0.0).round().astype(np.int64)
    opening = floor - np.round(low * cover).astype(np.int64)
    if minimum is not None:
        opening = np.maximum(opening, minimum - low)
    closing = opening + end_of_day[:, -1].round().astype(np.int64)
    before = None
    if per_row:
        end_of_day -= flow  # now: net flow before each day
        before = opening[tx.account] + end_of_day.ravel()[cell].round().astype(np.int64)
    return Balances(opening, closing, before)


def new_counterparty(prof: Profiles, acc: np.ndarray, dest: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Whether dest is outside the account's regular counterparties, checked only where `candidates`."""
    out = np.zeros(len(acc), bool)
    rows = np.flatnonzero(candidates)
    if len(rows):
        a, d = acc[rows], dest[rows]
        slots = np.arange(prof.counterparties.shape[1]) < prof.n_counterparties[a][:, None]
        out[rows] = ~((prof.counterparties[a] == d[:, None]) & slots).any(axis=1)
    return out


def to_currency_cents(amount_idr_cents: np.ndarray, currency: np.ndarray) -> np.ndarray:
    """IDR cents to cents of each row's currency at the reference rate (whole units for JPY)."""
    out = amount_idr_cents.copy()
    rows = np.flatnonzero(currency != 0)
    cur = currency[rows]
    cents = np.round(amount_idr_cents[rows] / ref.IDR_PER_UNIT[cur])
    whole = np.isin(cur, [ref.CURRENCIES.index(c) for c in ref.WHOLE_UNIT_CURRENCIES])
    cents[whole] = np.round(cents[whole] / 100) * 100
    out[rows] = np.maximum(cents, 1).astype(np.int64)
    return out


# Status model terms by hour of day: failures at night (maintenance windows, fewer staff), pending
# after the clearing cut-off.
_HOURS = np.arange(24)
_FAIL_HOUR = (-4.9 + 1.4 * (_HOURS < 5)).astype(np.float32)
_PEND_HOUR = (-4.6 + 1.2 * ((_HOURS < 5) | (_HOURS >= 21))).astype(np.float32)
_FAIL_RATIO = np.array([0.0, 1.6, 3.6], np.float32)  # amount vs balance: <= 0.5, (0.5, 1], > 1


def assign_status(
    tx: Tx, master: Master, start: date, rng: np.random.Generator, balance: np.ndarray | None = None
) -> None:
    """Draw Success/Pending/Failed from a model of the transaction's features (not a coin flip).

    `balance` is the paying account's balance before each row (default: the master data's).
    """
    n = len(tx)
    if n == 0:
        return
    bank = master.cust_bank[master.acc_customer]
    # Failed: insufficient funds, machines at night, terminals, foreign cards, fraud rules blocking.
    # Pending: interbank clearing, weekends and after cut-off, manual review of big or foreign ones.
    for lo in range(0, n, 1_000_000):
        t = tx.view(lo, min(lo + 1_000_000, n))
        hour = (t.ts % DAY) // 3600
        saldo = master.acc_saldo_cents[t.account] if balance is None else balance[lo : lo + len(t)]
        ratio = t.amount_idr / np.maximum(saldo, 1).astype(np.float32)
        ratio_level = (ratio > 0.5).astype(np.int8) + (ratio > 1.0)
        ratio_level[t.ttype == DEPOSIT] = 0
        foreign = t.currency != 0
        f = _FAIL_HOUR[hour] + _CH_FAIL[t.channel] + _FAIL_RATIO[ratio_level]
        f += np.float32(0.8) * foreign + np.float32(1.2) * (t.fraud > 0)
        interbank = (t.ttype == TRANSFER) & (bank[t.account] != bank[t.dest])
        p = _PEND_HOUR[hour] + _CH_PEND[t.channel] + np.float32(0.7) * ((day_kind(t.ts, start) & 1) > 0)
        p += np.float32(1.9) * interbank + np.float32(1.8) * (t.amount_idr >= 100_000_000 * 100)
        p += np.float32(1.5) * foreign + np.float32(0.5) * t.new_cp
        ef, ep = np.exp(f), np.exp(p)
        u = rng.random(len(t), np.float32) * (1 + ef + ep)
        t.status[:] = np.where(u < 1, SUCCESS, np.where(u < 1 + ep, PENDING, FAILED))
