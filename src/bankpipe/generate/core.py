"""`generate()`: master data, transactions with planted fraud and defects, labels, and the ground truth."""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import numpy as np

from bankpipe.generate import reference as ref
from bankpipe.generate.batch import write_batch, write_fraud_cases, write_source_times
from bankpipe.generate.config import GenerateConfig
from bankpipe.generate.fraud import (
    SCENARIOS,
    CompromisedPoint,
    Labels,
    card_testing_bursts,
    fraud_labels,
    plan_counts,
    plant_compromised,
    plant_large_amounts,
    takeover_bursts,
)
from bankpipe.generate.master import Master, Profiles, build_master, build_profiles
from bankpipe.generate.stream import Lookups, StreamPlan, plan_stream, workers, write_stream
from bankpipe.generate.transactions import (
    DAY,
    FAILED,
    LEGIT_PATTERNS,
    Balances,
    Tx,
    assign_status,
    balances,
    plant_lookalikes,
    sample_times,
    simulate,
)
from bankpipe.generate.truth import (
    accounts_table,
    defects_table,
    files_table,
    fraud_cases_table,
    points_json,
    write_json,
    write_parquet,
    write_readme,
    write_transactions,
)

log = logging.getLogger(__name__)

# Independent random streams per component: changing, say, a defect rate leaves the master data and
# the transactions as they were.
_STREAMS = {
    "master": 1,
    "profiles": 2,
    "times": 3,
    "transactions": 4,
    "fraud": 5,
    "status": 6,
    "labels": 7,
    "defects": 8,
    "mutate": 9,
    "follow": 10,
    "lookalikes": 11,
}
_SIM_CHUNK = 1_000_000

# progress(stage, done, total): a stage's units done so far out of its total.
ProgressFn = Callable[[str, int, int], None]

BATCH_FILES = ("location.txt", "bank_info.txt", "customer.csv", "account.json", "fraud_case.csv")


def rng_for(seed: int, stream: str, *extra: int) -> np.random.Generator:
    """The random generator of one component of a seeded run."""
    return np.random.default_rng([seed, _STREAMS[stream], *extra])


@dataclass(frozen=True)
class GenerateSummary:
    """What a run wrote (counts, folders, id widths); `seconds` is the only non-deterministic field."""

    out: Path
    batch_dir: Path
    stream_dir: Path
    truth_dir: Path
    customers: int
    accounts: int
    locations: int
    banks: int
    transactions: int
    records_written: int
    stream_files: int
    fraud_transactions: int
    fraud_by_scenario: dict[str, int]
    fraud_cases: int
    defects: dict[str, int]
    id_widths: dict[str, int]
    seconds: float = field(default=0.0, compare=False)

    def __str__(self) -> str:
        defects = sum(self.defects.values())
        return (
            f"{self.transactions:,} transactions in {self.stream_files:,} stream files, {self.customers:,} customers, "
            f"{self.accounts:,} accounts; {self.fraud_transactions:,} fraudulent ({self.fraud_cases:,} reported), "
            f"{defects:,} planted defects"
        )


def build_world(config: GenerateConfig) -> tuple[Master, Profiles]:
    """Master data and account profiles, deterministic from the seed (shared by generate, follow)."""
    master = build_master(
        config.customers, config.accounts_per_customer, config.transactions, rng_for(config.seed, "master")
    )
    return master, build_profiles(master, rng_for(config.seed, "profiles"))


def simulate_period(
    config: GenerateConfig, master: Master, prof: Profiles
) -> tuple[Tx, list[CompromisedPoint], Balances]:
    """All transactions of the period in id (time) order, fraud planted, status drawn, balances run."""
    foreign = config.foreign_currency_share if "mata_uang" in config.extensions else 0.0
    fraud = config.fraud
    testing_from = fraud.card_testing_first_day(config.days)
    counts = plan_counts(config.transactions, fraud, card_testing_active=testing_from < config.days)
    frng = rng_for(config.seed, "fraud")
    start = config.start_date
    takeover = takeover_bursts(master, prof, counts["account_takeover"], 0, config.days, start, fraud, frng)
    n_incidents = int(takeover.incident.max()) + 1 if len(takeover) else 0
    testing = card_testing_bursts(
        master, prof, counts["card_testing"], testing_from, config.days - testing_from, start, frng, n_incidents
    )
    bursts = Tx.concat([takeover, testing])
    bursts = bursts.take(np.argsort(bursts.ts, kind="stable"))
    ts = sample_times(config.transactions - len(bursts), start, 0, config.days, rng_for(config.seed, "times"))
    # Slot the fraud bursts into the sorted times, so that no full re-sort is needed afterwards.
    at = np.searchsorted(ts, bursts.ts, side="right")
    ts = np.insert(ts, at, bursts.ts)
    slots = at + np.arange(len(bursts))
    tx = Tx.empty(len(ts))

    def chunk(i: int) -> None:
        lo, hi = i * _SIM_CHUNK, min((i + 1) * _SIM_CHUNK, len(ts))
        # One random stream per chunk: the result does not depend on which thread ran it.
        rng = rng_for(config.seed, "transactions", i)
        simulate(master, prof, ts[lo:hi], start, rng, foreign, out=tx.view(lo, hi))

    with ThreadPoolExecutor(max_workers=workers()) as pool:
        list(pool.map(chunk, range(-(-len(ts) // _SIM_CHUNK))))
    tx.put(slots, bursts)
    plant_lookalikes(
        tx,
        master,
        prof,
        fraud.travel_accounts,
        fraud.one_off_large,
        fraud.night_new_payee,
        start,
        0,
        config.days,
        rng_for(config.seed, "lookalikes"),
    )
    n_incidents = int(tx.incident.max()) + 1 if len(tx) else 0
    n_incidents += plant_large_amounts(
        tx, prof, counts["large_amount"], frng, n_incidents, start, fraud.large_near_habit_share
    )
    points = plant_compromised(
        tx, counts["compromised_point"], fraud.compromised_fraud_share, 0, config.days, frng, n_incidents
    )
    # Balances follow the transactions. The status draw sees the balance before each payment, with
    # money arriving a little late for some accounts (they can run short: insufficient funds); the
    # recorded balances are those of the money that moved (failed transactions move none).
    srng = rng_for(config.seed, "status")
    running = balances(tx, master.acc_saldo_cents, cover=srng.uniform(0.4, 1.0, master.n_accounts))
    assign_status(tx, master, start, srng, balance=running.before)
    # Rp 10,000: the minimum balance Indonesian savings accounts keep (the drawn balances' lower bound too).
    return (
        tx,
        points,
        balances(tx, running.opening, counted=tx.status != FAILED, cover=0.0, minimum=10_000_00, per_row=False),
    )


def _clean(config: GenerateConfig) -> None:
    for name in BATCH_FILES:
        (config.batch_dir / name).unlink(missing_ok=True)
    if config.stream_dir.is_dir():
        for path in config.stream_dir.glob("transaction_*.json"):
            path.unlink()
    if config.truth_dir.is_dir():
        for path in config.truth_dir.glob("*.parquet"):
            path.unlink()
        # A fresh dataset restarts --follow too; the mutation history of the database stays.
        shutil.rmtree(config.truth_dir / "follow", ignore_errors=True)


def generate(config: GenerateConfig, progress: ProgressFn | None = None) -> GenerateSummary:
    """Write batch files, stream files and ground truth for `config`; the same seed gives the same bytes."""
    t0 = time.perf_counter()
    report = progress or (lambda stage, done, total: None)
    if config.clean:
        _clean(config)
    elif config.stream_dir.is_dir() and any(config.stream_dir.glob("transaction_*.json")):
        log.warning("%s already holds stream files; same-named ones are overwritten", config.stream_dir)
    for d in (config.batch_dir, config.stream_dir, config.truth_dir):
        d.mkdir(parents=True, exist_ok=True)

    report("master data", 0, 1)
    master, prof = build_world(config)
    report("transactions", 0, 1)
    tx, points, money = simulate_period(config, master, prof)
    # The batch files are extracted at the end of the period: they hold the closing balances.
    batch_rows = write_batch(replace(master, acc_saldo_cents=money.closing), config.batch_dir)
    write_source_times(master, config.start_date, config.days, config.batch_dir)
    report("master data", 1, 1)
    log.info(
        "master data: %d customers, %d accounts, %d locations, %d banks",
        master.n_customers,
        master.n_accounts,
        batch_rows["location.txt"],
        batch_rows["bank_info.txt"],
    )
    labels = fraud_labels(tx, config.fraud, rng_for(config.seed, "labels"))
    end_ts = config.days * DAY
    n_cases = write_fraud_cases(labels, master, config.start_date, end_ts, config.batch_dir)
    report("transactions", 1, 1)

    rpf = config.resolved_records_per_file()
    plan = plan_stream(tx, master, config.defects, rpf, config.start_date, rng_for(config.seed, "defects"))
    n_positions = len(plan.order)
    report("stream files", 0, n_positions)
    done = 0

    def advance(records: int) -> None:
        nonlocal done
        done += records
        report("stream files", done, n_positions)

    # The big ground-truth table is written by a background thread while the stream files render.
    with ThreadPoolExecutor(max_workers=1) as background:
        truth_table = background.submit(
            write_transactions,
            config.truth_dir / "transactions.parquet",
            tx,
            master,
            plan,
            labels,
            config.start_date,
            config.days * DAY,
        )
        written = write_stream(
            tx,
            plan,
            master,
            config.start_date,
            config.stream_dir,
            config.extensions,
            lookups=Lookups(config.start_date),
            progress=advance,
        )
        report("ground truth", 0, 1)
        truth_table.result()
    summary = _write_truth(config, master, prof, tx, plan, labels, points, dict(written), n_cases, money)
    report("ground truth", 1, 1)
    summary = replace(summary, seconds=time.perf_counter() - t0)
    log.info(
        "generated %d transactions in %d stream files (%d fraudulent, %d fraud cases) in %.1f s",
        summary.transactions,
        summary.stream_files,
        summary.fraud_transactions,
        summary.fraud_cases,
        summary.seconds,
    )
    return summary


def _write_truth(
    config: GenerateConfig,
    master: Master,
    prof: Profiles,
    tx: Tx,
    plan: StreamPlan,
    labels: Labels,
    points: list[CompromisedPoint],
    sizes: dict[str, int],
    n_cases: int,
    money: Balances,
) -> GenerateSummary:
    truth = config.truth_dir
    end_ts = config.days * DAY
    start = config.start_date
    write_parquet(truth / "defects.parquet", defects_table(plan))
    write_parquet(truth / "files.parquet", files_table(plan, tx, master, start, sizes))
    write_parquet(truth / "fraud_cases.parquet", fraud_cases_table(labels, tx, master, start, end_ts))
    write_parquet(truth / "accounts.parquet", accounts_table(master, prof, money))
    write_readme(truth)

    fraud_counts = Counter(SCENARIOS[int(s)] for s in tx.fraud[tx.fraud > 0]) if len(tx) else Counter()
    by_pattern = np.bincount(tx.pattern, minlength=len(LEGIT_PATTERNS))
    patterns = {name: int(by_pattern[i]) for i, name in enumerate(LEGIT_PATTERNS)}
    defect_counts = Counter(str(d["defect"]) for d in plan.defects if d["copy_of"] is None)
    # File-level defects are counted per file, not per affected record.
    defect_counts["truncated_file"] = sum(1 for f in plan.files if f.kind == "truncated")
    defect_counts = Counter({k: v for k, v in defect_counts.items() if v})
    summary = GenerateSummary(
        out=config.out,
        batch_dir=config.batch_dir,
        stream_dir=config.stream_dir,
        truth_dir=truth,
        customers=master.n_customers,
        accounts=master.n_accounts,
        locations=len(master.cities),
        banks=len(ref.BANKS),
        transactions=len(tx),
        records_written=len(plan.order),
        stream_files=len(sizes),
        fraud_transactions=int((tx.fraud > 0).sum()),
        fraud_by_scenario={k: fraud_counts.get(k, 0) for k in SCENARIOS[1:]},
        fraud_cases=n_cases,
        defects=dict(sorted(defect_counts.items())),
        id_widths=master.widths.to_dict(),
    )
    settings = config.to_dict()
    # Output folders are where the caller put them, not what was generated: keep the summary (and so
    # the bytes of a seeded run) independent of them.
    for key in ("out", "stream_out", "clean"):
        settings.pop(key, None)
    write_json(
        truth / "summary.json",
        {
            "settings": settings,
            "counts": {
                "customers": summary.customers,
                "accounts": summary.accounts,
                "locations": summary.locations,
                "banks": summary.banks,
                "transactions": summary.transactions,
                "records_written": summary.records_written,
                "stream_files": summary.stream_files,
                "fraud_transactions": summary.fraud_transactions,
                "fraud_cases_in_file": n_cases,
                "fraud_reports_planned": len(labels.rows),
                "foreign_currency_transactions": int((tx.currency > 0).sum()) if len(tx) else 0,
            },
            "fraud_by_scenario": summary.fraud_by_scenario,
            "legit_lookalikes": {k: patterns.get(k, 0) for k in LEGIT_PATTERNS[1:]},
            "card_testing_from": str(start + timedelta(days=config.fraud.card_testing_first_day(config.days))),
            "defects": summary.defects,
            "id_widths": summary.id_widths,
            "compromised_points": points_json(points, master, start),
            "mule_accounts": [int(a) + 1 for a in prof.mule_pool],
        },
    )
    return summary
