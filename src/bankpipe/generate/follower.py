"""`--follow`: keep writing stream files (write-then-rename) that continue a generated dataset in time."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, time
from pathlib import Path

import numpy as np

from bankpipe.generate.config import FraudConfig, GenerateConfig
from bankpipe.generate.core import build_world, rng_for
from bankpipe.generate.fraud import Labels, card_testing_bursts, plan_counts, plant_large_amounts, takeover_bursts
from bankpipe.generate.ids import id_width
from bankpipe.generate.master import Master, Profiles
from bankpipe.generate.stream import Lookups, plan_stream, ts_text, write_atomic, write_stream
from bankpipe.generate.transactions import DAY, HOUR_WEIGHTS, Tx, assign_status, plant_lookalikes, simulate
from bankpipe.generate.truth import defects_table, transactions_table, write_parquet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowSummary:
    """Files written by one `follow()` call and where the simulated clock stopped."""

    files: list[str]
    records: int
    next_transaction: int
    clock: str


@dataclass
class _State:
    next_file: int
    next_id: int  # first transaction id number of the next file
    clock: int  # simulated seconds since start_date 00:00
    last_name_ts: int

    @classmethod
    def load(cls, path: Path, config: GenerateConfig) -> _State:
        if path.is_file():
            return cls(**json.loads(path.read_text()))
        # Continue right after the generated period and its ids, named after every file already
        # there (late and duplicate files carry names past the period's end).
        last = config.days * DAY - 1
        for existing in config.stream_dir.glob("transaction_*.json"):
            try:
                stamp = datetime.strptime(existing.name, "transaction_%Y%m%d_%H%M%S.json")
            except ValueError:
                continue
            since = stamp - datetime.combine(config.start_date, time())
            last = max(last, int(since.total_seconds()))
        return cls(0, config.transactions + 1, config.days * DAY, last)

    def save(self, path: Path) -> None:
        write_atomic(path, (json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n").encode())


def _extracted_balances(config: GenerateConfig, master: Master) -> np.ndarray:
    """The balances the generated account.json holds (the period's closing ones), else the drawn ones.

    Regenerating the whole period to learn them would cost as much as `generate`; the file is there.
    """
    path = config.batch_dir / "account.json"
    try:
        records = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return master.acc_saldo_cents
    if len(records) != master.n_accounts:
        return master.acc_saldo_cents
    return np.round(np.array([float(r["saldo"]) for r in records]) * 100).astype(np.int64)


def _window_times(n: int, t0: int, span: int, rng: np.random.Generator) -> np.ndarray:
    """n sorted times in [t0, t0 + span) following the hour-of-day profile (rejection sampling)."""
    accept = HOUR_WEIGHTS / HOUR_WEIGHTS.max()
    out: list[np.ndarray] = []
    have = 0
    while have < n:
        t = t0 + rng.integers(0, max(span, 1), 3 * n + 16)
        t = t[rng.random(len(t)) < accept[(t % DAY) // 3600]]
        out.append(t)
        have += len(t)
    return np.sort(np.concatenate(out)[:n])


def _one_file(
    config: GenerateConfig, master: Master, prof: Profiles, state: _State, n: int, span: int, lookups: Lookups
) -> tuple[str, int]:
    rng = rng_for(config.seed, "follow", state.next_file)
    # Compromised points need a multi-day window: a follow file is too short, the other three fit.
    fraud_cfg: FraudConfig = replace(config.fraud, compromised_point=0.0)
    day = int(state.clock // DAY)
    testing = fraud_cfg.card_testing_first_day(config.days) <= day
    counts = plan_counts(n, fraud_cfg, card_testing_active=testing)
    n_bursts = counts["account_takeover"] + counts["card_testing"]
    ts = _window_times(n - n_bursts, state.clock, span, rng)
    foreign = config.foreign_currency_share if "mata_uang" in config.extensions else 0.0
    start = config.start_date
    normal = simulate(master, prof, ts, start, rng, foreign)
    takeover = takeover_bursts(master, prof, counts["account_takeover"], day, 1, start, fraud_cfg, rng)
    incident = int(takeover.incident.max()) + 1 if len(takeover) else 0
    cards = card_testing_bursts(master, prof, counts["card_testing"], day, 1, start, rng, incident)
    bursts = Tx.concat([takeover, cards])
    bursts.ts = np.clip(bursts.ts, state.clock, state.clock + span - 1)
    tx = Tx.concat([normal, bursts])
    tx = tx.take(np.argsort(tx.ts, kind="stable"))
    # Trips last days: a follow file is too short to start one; the other look-alikes fit.
    plant_lookalikes(tx, master, prof, 0.0, fraud_cfg.one_off_large, fraud_cfg.night_new_payee, start, day, 1, rng)
    incident = int(tx.incident.max()) + 1 if len(tx) else 0
    plant_large_amounts(tx, prof, counts["large_amount"], rng, incident, start, fraud_cfg.large_near_habit_share)
    assign_status(tx, master, start, rng)
    offset = state.next_id - 1
    plan = plan_stream(
        tx,
        master,
        config.defects,
        max(len(tx), 1),
        config.start_date,
        rng,
        id_offset=offset,
        file_defects=False,
        min_name_ts=state.last_name_ts + 1,
    )
    written = write_stream(
        tx, plan, master, config.start_date, config.stream_dir, config.extensions, id_offset=offset, lookups=lookups
    )
    truth = config.truth_dir / "follow"
    truth.mkdir(parents=True, exist_ok=True)
    stem = plan.files[0].name.removesuffix(".json")
    no_labels = Labels(np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.int64))
    write_parquet(
        truth / f"{stem}.parquet",
        transactions_table(tx, master, plan, no_labels, config.start_date, 0, 0, len(tx), offset),
    )
    if plan.defects:
        write_parquet(truth / f"{stem}.defects.parquet", defects_table(plan))
    state.last_name_ts = plan.files[0].name_ts
    return written[0][0], len(plan.order)


def follow(
    config: GenerateConfig,
    *,
    interval_s: float = 1.0,
    max_files: int | None = None,
    stop: threading.Event | None = None,
    on_file: Callable[[str, int], None] | None = None,
) -> FollowSummary:
    """Write a stream file every `interval_s` seconds until `max_files`, `stop` is set, or Ctrl-C.

    Records continue the generated dataset: ids after its last one, simulated time after its end at the
    same volume per day. Resumes where the previous call stopped (state in <out>/ground_truth/follow/).
    """
    stop = stop or threading.Event()
    master, prof = build_world(config)
    master = replace(master, acc_saldo_cents=_extracted_balances(config, master))
    state_path = config.truth_dir / "follow" / "state.json"
    state_path.parent.mkdir(parents=True, exist_ok=True)
    config.stream_dir.mkdir(parents=True, exist_ok=True)
    state = _State.load(state_path, config)
    n = config.resolved_records_per_file()
    per_second = (config.transactions or 50_000) / (config.days * DAY)
    span = max(1, round(n / per_second))
    lookups = Lookups(config.start_date)
    files: list[str] = []
    records = 0
    try:
        while max_files is None or len(files) < max_files:
            # Ids past the run's headroom need a wider field; say so once rather than wrap.
            need = id_width("transaction", state.next_id + n)
            if need > master.widths.transaction:
                log.warning("transaction ids outgrow width %d; widening to %d", master.widths.transaction, need)
                master = replace(master, widths=replace(master.widths, transaction=need))
            name, count = _one_file(config, master, prof, state, n, span, lookups)
            state.next_file += 1
            state.next_id += n
            state.clock += span
            state.save(state_path)
            files.append(name)
            records += count
            log.info("follow: wrote %s (%d records)", name, count)
            if on_file is not None:
                on_file(name, count)
            if (max_files is None or len(files) < max_files) and stop.wait(interval_s):
                break
    except KeyboardInterrupt:
        log.info("follow: interrupted after %d files", len(files))
    return FollowSummary(files, records, state.next_id, ts_text(state.clock, config.start_date))
