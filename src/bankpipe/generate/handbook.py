"""The Fraud Detection Handbook's transaction simulator as a generator profile (`generate --profile handbook`).

Written from the published description in Le Borgne et al., "Reproducible Machine Learning for Credit
Card Fraud Detection — Practical Handbook", chapter 3 ("Transaction data simulator"), vectorised:

- customers and terminals uniform on a 100 x 100 grid; a customer's mean amount U(5, 100), standard
  deviation mean / 2, mean transactions a day U(0, 4); a customer uses the terminals within radius r;
- per customer and day a Poisson number of transactions at int(N(43200, 20000)) seconds, those outside
  (0, 86400) dropped; amount N(mean, std), a negative draw replaced by U(0, 2 mean), rounded to cents;
  the terminal uniform among the available ones;
- fraud: (1) every amount > 220 is fraud; (2) from each day but the last, 2 random terminals are
  compromised and all their transactions of that day and the next 27 are fraud; (3) from each day but
  the last, 3 random customers are compromised and a third of their transactions of that day and the
  next 13 are multiplied by 5 and are fraud (a later scenario overwrites an earlier one's label);
- a fraud's label is known 7 days after the transaction.

Mapped to the seed formats: a card holder is a customer (CUST-…) with one Savings account (ACC-…); a
terminal is a merchant customer with one Checking account, the `akun_tujuan` of its transactions. A
transaction is a `Payment`, channel `edc`, status `Success`, in IDR: handbook amounts (dollar-like
units) times `idr_per_unit` (15,000: a 5–100 unit habit becomes IDR 75,000–1,500,000; the fraud
threshold 220 becomes IDR 3,300,000). `location_id` is the grid region (10 x 10 cells of 10 x 10
units) of the terminal, a customer's `location_id` the region they live in; each region is one of the
100 most populous shipped cities, laid out north to south and west to east so that neighbouring
regions are neighbouring cities. `fraud_case.csv` holds every fraud whose label (transaction time + 7
days) is known before the period ends, confirmed. Segments, banks and balances carry no signal: every
customer is Standard at BANK-001, balances are drawn independently of behaviour. The simulator is
kept as published, so a normal draw can round to an amount of 0.00 (23 of 1.77M transactions at the
defaults): silver rejects those (`non_positive_amount`), as it should.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bankpipe.errors import BankpipeError
from bankpipe.generate import reference as ref
from bankpipe.generate.batch import write_batch, write_fraud_cases, write_source_times
from bankpipe.generate.config import EXTENSIONS, DefectConfig
from bankpipe.generate.core import BATCH_FILES, GenerateSummary
from bankpipe.generate.fraud import Labels
from bankpipe.generate.ids import IdWidths, format_ids
from bankpipe.generate.master import Master, _email_rank
from bankpipe.generate.stream import Lookups, StreamPlan, plan_stream, write_atomic, write_stream
from bankpipe.generate.transactions import DAY, EDC, PAYMENT, SUCCESS, Tx
from bankpipe.generate.truth import transactions_table, write_json, write_parquet

log = logging.getLogger(__name__)

SCENARIOS: tuple[str, ...] = ("none", "large_amount", "compromised_terminal", "compromised_card")
LARGE, TERMINAL, CARD = 1, 2, 3
SAVINGS, CHECKING = 0, 1  # indices into reference.ACCOUNT_TYPES
GRID = 100.0
REGIONS_PER_SIDE = 10

# Independent random streams per component (as core.rng_for does for the bank profile).
_STREAMS = {"customers": 1, "terminals": 2, "transactions": 3, "terminal_fraud": 4, "card_fraud": 5, "names": 6}

README = """# Ground truth of a handbook-profile run (never read by the pipeline)

- transactions.parquet — one row per transaction, the default profile's columns plus the handbook's
  own: scenario (none | large_amount | compromised_terminal | compromised_card, also in
  fraud_scenario), customer_index / terminal_index (0-based handbook ids), amount_units (handbook
  amount after scenario 3), tx_time_days.
- customers.parquet, terminals.parquet — the profile tables (grid position, habits, account id).
- fraud_cases.parquet — every fraud label with reported_at = transaction time + 7 days, in_fraud_case
  when known before the period ends (so present in fraud_case.csv).
- summary.json — settings, counts, the compromised terminals and cards per day.
"""


class HandbookConfigError(BankpipeError):
    """A handbook-profile setting is out of range; the message names it."""


@dataclass(frozen=True)
class HandbookConfig:
    """The simulator's parameters (the handbook's defaults) and where the files go."""

    customers: int = 5_000
    terminals: int = 10_000
    days: int = 183
    start_date: date = date(2018, 4, 1)
    radius: float = 5.0
    seed: int = 42
    out: Path = Path("generated")
    stream_out: Path | None = None
    stream_files: int | None = None
    records_per_file: int | None = None
    idr_per_unit: int = 15_000
    # Scenario knobs.
    large_amount_threshold: float = 220.0
    compromised_terminals_per_day: int = 2
    terminal_compromise_days: int = 28
    compromised_cards_per_day: int = 3
    card_compromise_days: int = 14
    card_fraud_share: float = 1 / 3
    card_amount_factor: float = 5.0
    label_delay_days: int = 7
    clean: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.stream_out is not None:
            object.__setattr__(self, "stream_out", Path(self.stream_out))
        if isinstance(self.start_date, str):
            object.__setattr__(self, "start_date", date.fromisoformat(self.start_date))
        checks = [
            (self.customers >= 1, f"customers must be >= 1 (got {self.customers})"),
            (self.terminals >= 1, f"terminals must be >= 1 (got {self.terminals})"),
            (1 <= self.days <= 3660, f"days must be 1..3660 (got {self.days})"),
            (self.radius > 0, f"radius must be > 0 (got {self.radius})"),
            (self.idr_per_unit >= 1, "idr_per_unit must be >= 1"),
            (self.compromised_terminals_per_day <= self.terminals, "more compromised terminals a day than terminals"),
            (self.compromised_cards_per_day <= self.customers, "more compromised cards a day than customers"),
            (0.0 <= self.card_fraud_share <= 1.0, "card_fraud_share must be within 0..1"),
            (self.label_delay_days >= 0, "label_delay_days must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise HandbookConfigError(message)

    @property
    def batch_dir(self) -> Path:
        return self.out / "batch_source"

    @property
    def stream_dir(self) -> Path:
        return self.stream_out if self.stream_out is not None else self.out / "stream_source"

    @property
    def truth_dir(self) -> Path:
        return self.out / "ground_truth"

    def with_(self, **changes: Any) -> HandbookConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("out", "stream_out", "clean"):  # where files go is not what was generated
            d.pop(key)
        d["start_date"] = self.start_date.isoformat()
        d["profile"] = "handbook"
        return d


def _rng(seed: int, component: str) -> np.random.Generator:
    return np.random.default_rng([seed, 1_000 + _STREAMS[component]])


@dataclass
class Simulation:
    """The handbook's tables as numpy columns; transactions in time (= id) order."""

    cust_xy: np.ndarray  # (C, 2)
    mean_amount: np.ndarray
    std_amount: np.ndarray
    mean_nb_tx_per_day: np.ndarray
    term_xy: np.ndarray  # (T, 2)
    n_available: np.ndarray  # terminals within the radius, per customer
    ts: np.ndarray  # int64 seconds since start_date 00:00
    customer: np.ndarray  # int32
    terminal: np.ndarray  # int32
    amount_cents: np.ndarray  # int64, handbook units * 100, after scenario 3
    scenario: np.ndarray  # int8 index into SCENARIOS
    compromised_terminals: list[tuple[int, list[int]]]  # (day, terminals)
    compromised_cards: list[tuple[int, list[int]]]  # (day, customers)

    @property
    def is_fraud(self) -> np.ndarray:
        return self.scenario > 0

    @property
    def day(self) -> np.ndarray:
        return self.ts // DAY


def _terminals_within(cust_xy: np.ndarray, term_xy: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """CSR (offsets, terminal indices ascending) of the terminals strictly within r of each customer."""
    offsets = [np.zeros(1, np.int64)]
    parts = []
    total = 0
    step = max(1, 2_000_000 // max(len(term_xy), 1))  # bounded memory for the pairwise distances
    for lo in range(0, len(cust_xy), step):
        c = cust_xy[lo : lo + step]
        d2 = (c[:, None, 0] - term_xy[None, :, 0]) ** 2 + (c[:, None, 1] - term_xy[None, :, 1]) ** 2
        rows, cols = np.nonzero(d2 < r * r)
        parts.append(cols.astype(np.int32))
        counts = np.bincount(rows, minlength=len(c))
        offsets.append(total + np.cumsum(counts))
        total += len(cols)
    return np.concatenate(offsets), np.concatenate(parts) if parts else np.zeros(0, np.int32)


def simulate(cfg: HandbookConfig) -> Simulation:
    """Profiles, transactions and the three fraud scenarios; the same seed gives the same arrays."""
    crng = _rng(cfg.seed, "customers")
    n_c, n_t, n_d = cfg.customers, cfg.terminals, cfg.days
    cust_xy = crng.uniform(0, GRID, (n_c, 2))
    mean_amount = crng.uniform(5, 100, n_c)
    std_amount = mean_amount / 2
    mean_nb = crng.uniform(0, 4, n_c)
    term_xy = _rng(cfg.seed, "terminals").uniform(0, GRID, (n_t, 2))
    offsets, available = _terminals_within(cust_xy, term_xy, cfg.radius)
    n_available = np.diff(offsets)

    trng = _rng(cfg.seed, "transactions")
    per_day = trng.poisson(np.repeat(mean_nb, n_d)).astype(np.int64)  # (customer, day) row-major
    cell = np.repeat(np.arange(n_c * n_d, dtype=np.int64), per_day)
    customer = (cell // n_d).astype(np.int32)
    day = cell % n_d
    secs = trng.normal(DAY / 2, 20_000, len(cell)).astype(np.int64)  # int() truncates toward zero
    amount = trng.normal(mean_amount[customer], std_amount[customer])
    redraw = trng.uniform(0, 2 * mean_amount[customer])
    pick = trng.random(len(cell))
    # The handbook keeps times strictly inside the day, and customers with a terminal to use.
    keep = (secs > 0) & (secs < DAY) & (n_available[customer] > 0)
    customer, day, secs, amount, redraw, pick = (a[keep] for a in (customer, day, secs, amount, redraw, pick))
    amount = np.where(amount < 0, redraw, amount)
    amount_cents = np.round(amount * 100).astype(np.int64)
    slot = offsets[customer] + np.floor(pick * n_available[customer]).astype(np.int64)
    terminal = available[slot]
    ts = day * DAY + secs
    order = np.argsort(ts, kind="stable")  # ties keep the customer-major order they were drawn in
    ts, customer, terminal, amount_cents = ts[order], customer[order], terminal[order], amount_cents[order]
    day = ts // DAY

    scenario = np.zeros(len(ts), np.int8)
    # (1) large amounts, judged on the amount before scenario 3 inflates some.
    scenario[amount_cents > round(cfg.large_amount_threshold * 100)] = LARGE

    last_day = int(day.max()) if len(day) else 0
    # (2) compromised terminals: a difference array per terminal and day, so overlapping windows of
    # one terminal count once.
    frng = _rng(cfg.seed, "terminal_fraud")
    comp_terminals = []
    window = cfg.terminal_compromise_days
    diff = np.zeros((n_t, n_d + window + 1), np.int16)
    for d in range(last_day):
        picked = np.sort(frng.choice(n_t, cfg.compromised_terminals_per_day, replace=False))
        comp_terminals.append((d, picked.tolist()))
        diff[picked, d] += 1
        diff[picked, d + window] -= 1
    compromised = np.cumsum(diff, axis=1) > 0
    scenario[compromised[terminal, day]] = TERMINAL

    # (3) compromised cards, day by day: a transaction picked twice (overlapping windows of the same
    # card) is inflated twice, as in the handbook.
    grng = _rng(cfg.seed, "card_fraud")
    by_customer = np.argsort(customer, kind="stable")  # each customer's rows in time order
    starts = np.searchsorted(customer[by_customer], np.arange(n_c + 1))
    comp_cards = []
    factor = cfg.card_amount_factor
    for d in range(last_day):
        picked = np.sort(grng.choice(n_c, cfg.compromised_cards_per_day, replace=False))
        comp_cards.append((d, picked.tolist()))
        rows = np.concatenate([by_customer[starts[c] : starts[c + 1]] for c in picked])
        rows = np.sort(rows[(day[rows] >= d) & (day[rows] < d + cfg.card_compromise_days)])
        k = int(len(rows) * cfg.card_fraud_share + 1e-9)  # int(n / 3) for the default share
        if k:
            chosen = grng.choice(rows, k, replace=False)
            amount_cents[chosen] = np.round(amount_cents[chosen] * factor).astype(np.int64)
            scenario[chosen] = CARD
    return Simulation(
        cust_xy=cust_xy,
        mean_amount=mean_amount,
        std_amount=std_amount,
        mean_nb_tx_per_day=mean_nb,
        term_xy=term_xy,
        n_available=n_available,
        ts=ts,
        customer=customer,
        terminal=terminal,
        amount_cents=amount_cents,
        scenario=scenario,
        compromised_terminals=comp_terminals,
        compromised_cards=comp_cards,
    )


def region_cities() -> np.ndarray:
    """City row per grid region (row-major, REGIONS_PER_SIDE^2): neighbouring regions, neighbouring cities."""
    cities = ref.cities()
    n = REGIONS_PER_SIDE * REGIONS_PER_SIDE
    if len(cities) < n:
        raise HandbookConfigError(f"the handbook profile needs {n} cities, the reference has {len(cities)}")
    top = np.argsort(-cities.population, kind="stable")[:n]
    by_lat = top[np.argsort(-cities.latitude[top], kind="stable")]  # north first
    bands = by_lat.reshape(REGIONS_PER_SIDE, REGIONS_PER_SIDE)
    lon = cities.longitude[bands]
    return np.take_along_axis(bands, np.argsort(lon, axis=1, kind="stable"), axis=1).ravel()


def region_of(xy: np.ndarray) -> np.ndarray:
    """Grid region (row-major index) of each point."""
    cell = np.minimum((xy / (GRID / REGIONS_PER_SIDE)).astype(np.int64), REGIONS_PER_SIDE - 1)
    return cell[:, 1] * REGIONS_PER_SIDE + cell[:, 0]


def build_master(cfg: HandbookConfig, sim: Simulation) -> Master:
    """Card holders first (CUST/ACC number = handbook customer id + 1), then one merchant per terminal."""
    n_c, n_t = cfg.customers, cfg.terminals
    n = n_c + n_t
    rng = _rng(cfg.seed, "names")
    firsts, lasts = ref.names()
    first = rng.integers(0, len(firsts), n).astype(np.int32)
    last = rng.integers(0, len(lasts), n).astype(np.int32)
    cities = region_cities()
    location = cities[region_of(np.concatenate([sim.cust_xy, sim.term_xy]))].astype(np.int32)
    acc_type = np.r_[np.full(n_c, SAVINGS), np.full(n_t, CHECKING)].astype(np.int8)
    # Balances carry no signal in the handbook: drawn independently of every habit.
    median = np.r_[np.full(n_c, 5e6), np.full(n_t, 50e6)]
    saldo_cents = np.round(median * rng.lognormal(0.0, 0.8, n) * 100).astype(np.int64)
    widths = IdWidths.for_counts(
        locations=len(ref.cities()), banks=len(ref.BANKS), customers=n, accounts=n, transactions=len(sim.ts)
    )
    return Master(
        widths=widths,
        cities=ref.cities(),
        cust_first=first,
        cust_last=last,
        cust_email_rank=_email_rank(first, last),
        cust_segment=np.zeros(n, np.int8),  # Standard
        cust_location=location,
        cust_bank=np.zeros(n, np.int8),  # BANK-001
        acc_customer=np.arange(n, dtype=np.int32),
        acc_type=acc_type,
        acc_saldo_cents=saldo_cents,
    )


def to_tx(cfg: HandbookConfig, sim: Simulation, master: Master) -> Tx:
    """The simulated transactions as the bank profile's columns (so its writers render them)."""
    n = len(sim.ts)
    tx = Tx.empty(n)
    tx.ts[:] = sim.ts
    tx.account[:] = sim.customer
    tx.dest[:] = cfg.customers + sim.terminal
    tx.ttype[:] = PAYMENT
    tx.channel[:] = EDC
    tx.location[:] = master.cust_location[cfg.customers + sim.terminal]
    tx.amount_idr[:] = sim.amount_cents * cfg.idr_per_unit
    tx.amount[:] = tx.amount_idr
    tx.status[:] = SUCCESS
    tx.fraud[:] = sim.scenario
    # First payment of a card at a terminal (within the period): the bank profile's new-counterparty flag.
    order = np.lexsort((sim.ts, sim.terminal, sim.customer))
    key = sim.customer[order].astype(np.int64) * cfg.terminals + sim.terminal[order]
    first = np.r_[True, key[1:] != key[:-1]] if n else np.zeros(0, bool)
    tx.new_cp[order] = first
    return tx


def labels_of(cfg: HandbookConfig, sim: Simulation) -> Labels:
    """Every fraud, confirmed, reported `label_delay_days` after the transaction."""
    rows = np.flatnonzero(sim.is_fraud).astype(np.int64)
    return Labels(rows, np.ones(len(rows), bool), sim.ts[rows] + cfg.label_delay_days * DAY)


def _records_per_file(cfg: HandbookConfig, n: int) -> int:
    if cfg.records_per_file is not None:
        return cfg.records_per_file
    if cfg.stream_files is not None:
        return max(1, math.ceil(max(n, 1) / cfg.stream_files))
    return min(20_000, max(20, math.ceil(n / 200)))  # the bank profile's automatic size


def _clean(cfg: HandbookConfig) -> None:
    for name in BATCH_FILES:
        (cfg.batch_dir / name).unlink(missing_ok=True)
    if cfg.stream_dir.is_dir():
        for path in cfg.stream_dir.glob("transaction_*.json"):
            path.unlink()
    if cfg.truth_dir.is_dir():
        for path in cfg.truth_dir.glob("*.parquet"):
            path.unlink()


def generate(cfg: HandbookConfig, progress: Callable[[str, int, int], None] | None = None) -> GenerateSummary:
    """Simulate and write batch files, stream files and ground truth; the same seed gives the same bytes."""
    t0 = time.perf_counter()
    report = progress or (lambda stage, done, total: None)
    if cfg.clean:
        _clean(cfg)
    for d in (cfg.batch_dir, cfg.stream_dir, cfg.truth_dir):
        d.mkdir(parents=True, exist_ok=True)
    report("simulation", 0, 1)
    sim = simulate(cfg)
    master = build_master(cfg, sim)
    tx = to_tx(cfg, sim, master)
    labels = labels_of(cfg, sim)
    end_ts = cfg.days * DAY
    report("simulation", 1, 1)

    report("batch files", 0, 1)
    batch_rows = write_batch(master, cfg.batch_dir)
    # The source rows' own timeline (created before the period), applied when --to-postgres loads them.
    write_source_times(master, cfg.start_date, cfg.days, cfg.batch_dir)
    n_cases = write_fraud_cases(labels, master, cfg.start_date, end_ts, cfg.batch_dir)
    report("batch files", 1, 1)

    plan = plan_stream(
        tx,
        master,
        DefectConfig.none(),
        _records_per_file(cfg, len(tx)),
        cfg.start_date,
        np.random.default_rng([cfg.seed, 0]),  # no defects: nothing is drawn from it
        file_defects=False,
    )
    report("stream files", 0, len(tx))
    written = write_stream(
        tx,
        plan,
        master,
        cfg.start_date,
        cfg.stream_dir,
        EXTENSIONS,
        lookups=Lookups(cfg.start_date),
        progress=lambda n: report("stream files", n, len(tx)),
    )
    report("ground truth", 0, 1)
    _write_truth(cfg, sim, master, tx, plan, labels, end_ts)
    report("ground truth", 1, 1)
    counts = {SCENARIOS[s]: int((sim.scenario == s).sum()) for s in range(1, len(SCENARIOS))}
    summary = GenerateSummary(
        out=cfg.out,
        batch_dir=cfg.batch_dir,
        stream_dir=cfg.stream_dir,
        truth_dir=cfg.truth_dir,
        customers=master.n_customers,
        accounts=master.n_accounts,
        locations=batch_rows["location.txt"],
        banks=batch_rows["bank_info.txt"],
        transactions=len(tx),
        records_written=len(plan.order),
        stream_files=len(written),
        fraud_transactions=int(sim.is_fraud.sum()),
        fraud_by_scenario=counts,
        fraud_cases=n_cases,
        defects={},
        id_widths=master.widths.to_dict(),
        seconds=time.perf_counter() - t0,
    )
    _write_summary(cfg, sim, summary)
    log.info(
        "handbook profile: %d transactions (%d fraudulent, %d fraud cases) in %.1f s",
        summary.transactions,
        summary.fraud_transactions,
        n_cases,
        summary.seconds,
    )
    return summary


def _write_truth(
    cfg: HandbookConfig, sim: Simulation, master: Master, tx: Tx, plan: StreamPlan, labels: Labels, end_ts: int
) -> None:
    w = master.widths
    names = pa.array(list(SCENARIOS), pa.string())
    scenario = pa.DictionaryArray.from_arrays(pa.array(sim.scenario.astype(np.int32)), names)
    table = transactions_table(tx, master, plan, labels, cfg.start_date, end_ts, 0, len(tx))
    # The bank profile's scenario names do not apply: the handbook's replace them.
    table = table.set_column(
        table.schema.get_field_index("fraud_scenario"),
        "fraud_scenario",
        pa.DictionaryArray.from_arrays(pa.array(sim.scenario.astype(np.int32), mask=sim.scenario == 0), names),
    )
    table = table.drop_columns([c for c in ("fraud_incident",) if c in table.column_names])
    table = (
        table.append_column("scenario", scenario)
        .append_column("customer_index", pa.array(sim.customer))
        .append_column("terminal_index", pa.array(sim.terminal))
        .append_column("amount_units", pa.array(sim.amount_cents / 100))
        .append_column("tx_time_days", pa.array(sim.day))
    )
    write_parquet(cfg.truth_dir / "transactions.parquet", table)
    n_c = cfg.customers
    write_parquet(
        cfg.truth_dir / "customers.parquet",
        pa.table(
            {
                "customer_index": pa.array(np.arange(n_c)),
                "customer_id": format_ids("customer", np.arange(1, n_c + 1), w.customer),
                "account_id": format_ids("account", np.arange(1, n_c + 1), w.account),
                "x": sim.cust_xy[:, 0],
                "y": sim.cust_xy[:, 1],
                "mean_amount": sim.mean_amount,
                "std_amount": sim.std_amount,
                "mean_nb_tx_per_day": sim.mean_nb_tx_per_day,
                "n_terminals_within_radius": sim.n_available,
            }
        ),
    )
    t_num = np.arange(n_c + 1, n_c + cfg.terminals + 1)
    write_parquet(
        cfg.truth_dir / "terminals.parquet",
        pa.table(
            {
                "terminal_index": pa.array(np.arange(cfg.terminals)),
                "account_id": format_ids("account", t_num, w.account),
                "x": sim.term_xy[:, 0],
                "y": sim.term_xy[:, 1],
            }
        ),
    )
    base = np.datetime64(cfg.start_date.isoformat(), "s").astype(np.int64)
    write_parquet(
        cfg.truth_dir / "fraud_cases.parquet",
        pa.table(
            {
                "transaction_id": format_ids("transaction", labels.rows + 1, w.transaction),
                "confirmed_fraud": pa.array(labels.confirmed),
                "reported_at": pa.array(labels.reported_ts + base, pa.int64()).view(pa.timestamp("s")),
                "scenario": pa.DictionaryArray.from_arrays(pa.array(sim.scenario[labels.rows].astype(np.int32)), names),
                "in_fraud_case": pa.array(labels.reported_ts < end_ts),
            }
        ),
    )
    write_atomic(cfg.truth_dir / "README.md", README.encode())


def _write_summary(cfg: HandbookConfig, sim: Simulation, summary: GenerateSummary) -> None:
    write_json(
        cfg.truth_dir / "summary.json",
        {
            "settings": cfg.to_dict(),
            "counts": {
                "customers": cfg.customers,
                "terminals": cfg.terminals,
                "transactions": summary.transactions,
                "stream_files": summary.stream_files,
                "fraud_transactions": summary.fraud_transactions,
                "fraud_cases_in_file": summary.fraud_cases,
            },
            "fraud_by_scenario": summary.fraud_by_scenario,
            "id_widths": summary.id_widths,
            "compromised_terminals": [{"day": d, "terminal_index": t} for d, t in sim.compromised_terminals],
            "compromised_cards": [{"day": d, "customer_index": c} for d, c in sim.compromised_cards],
        },
    )
