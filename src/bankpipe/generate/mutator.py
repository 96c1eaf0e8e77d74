"""`--mutate`: one day of changes to the source database's master data, recorded in the ground truth.

Balances follow the transactions: every account that `--follow` moved money for since the last
mutation gets its net flow (ground_truth/follow/*.parquet, non-failed transactions); a share of
accounts also gets what is posted outside the transaction feed (admin fees, interest, instalments).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from bankpipe.errors import BankpipeError, SourceError
from bankpipe.generate import reference as ref
from bankpipe.generate.core import rng_for
from bankpipe.generate.ids import parse_id
from bankpipe.generate.stream import write_atomic
from bankpipe.settings import Settings

log = logging.getLogger(__name__)

_BALANCE_MEDIAN = {"Savings": 6e6, "Checking": 20e6, "Deposit": 80e6, "Loan": 120e6}


@dataclass(frozen=True)
class MutationRates:
    """Share of rows touched in one simulated day (each at least one row)."""

    new_customers: float = 0.002
    segment_changes: float = 0.01
    balance_updates: float = 0.05  # postings outside the transaction feed
    closed_accounts: float = 0.001
    deleted_customers: float = 0.0005


@dataclass(frozen=True)
class MutationSummary:
    """Keys changed per table (`customer`, `account`) and the ground-truth file that lists them."""

    day: int
    path: Path
    inserted: dict[str, list[str]]
    updated: dict[str, list[str]]
    deleted: dict[str, list[str]]

    def counts(self) -> dict[str, dict[str, int]]:
        """{table: {"inserted": n, "updated": n, "deleted": n}}."""
        tables = sorted({*self.inserted, *self.updated, *self.deleted})
        return {
            t: {
                "inserted": len(self.inserted.get(t, [])),
                "updated": len(self.updated.get(t, [])),
                "deleted": len(self.deleted.get(t, [])),
            }
            for t in tables
        }


def _next_ids(ids: list[str], count: int, entity: str) -> list[str]:
    """`count` new ids after the highest one, in the width the table already uses."""
    parsed = [parse_id(i) for i in ids]
    prefix, top, width = parsed[0][0], max(p[1] for p in parsed), max(p[2] for p in parsed)
    new = [f"{prefix}-{top + i + 1:0{width}d}" for i in range(count)]
    if len(str(top + count)) > width:
        raise BankpipeError(
            f"new {entity} ids would need more than {width} digits ({new[-1]}): regenerate with room to grow"
        )
    return new


def _n(rate: float, total: int) -> int:
    return max(1, round(rate * total)) if total else 0


def mutate(settings: Settings, seed: int, out: Path, rates: MutationRates | None = None) -> MutationSummary:
    """Apply one day of inserts, updates and deletes to customer/account; write the keys to the ground truth.

    Deterministic for a given seed, database content and mutation day (the count of earlier mutation files).
    """
    from bankpipe.source import connect

    rates = rates or MutationRates()
    truth = Path(out) / "ground_truth" / "mutations"
    truth.mkdir(parents=True, exist_ok=True)
    day = len(list(truth.glob("mutation_*.json"))) + 1
    rng = rng_for(seed, "mutate", day)
    with connect(settings, use="write") as conn:
        customers = conn.execute("select id, segmen, location_id, bank_id, email from customer order by id").fetchall()
        accounts = conn.execute("select id, customer_id, tipe_akun, saldo from account order by id").fetchall()
        locations = [r[0] for r in conn.execute("select id from location order by id").fetchall()]
        banks = [r[0] for r in conn.execute("select bank_id from bank_info order by bank_id").fetchall()]
        if not customers or not accounts or not locations or not banks:
            raise SourceError(
                "the source has no master data to mutate: load it first (bankpipe generate --to-postgres)"
            )
        applied = _applied_follow_files(truth)
        follow_files, flows = _follow_flows(Path(out) / "ground_truth" / "follow", applied)
        plan = _plan(customers, accounts, locations, banks, rates, rng, flows)
        with conn.transaction():
            cur = conn.cursor()
            cur.executemany(
                "insert into customer (id, nama_depan, nama_belakang, email, segmen, location_id, bank_id) "
                "values (%s, %s, %s, %s, %s, %s, %s)",
                plan["new_customers"],
            )
            cur.executemany(
                "insert into account (id, customer_id, tipe_akun, saldo) values (%s, %s, %s, %s)", plan["new_accounts"]
            )
            cur.executemany(
                "update customer set segmen = %s where id = %s", [(new, k) for k, (_, new) in plan["segments"].items()]
            )
            cur.executemany(
                "update account set saldo = %s where id = %s", [(new, k) for k, (_, new) in plan["balances"].items()]
            )
            cur.execute("delete from account where id = any(%s)", (plan["deleted_accounts"],))
            cur.execute("delete from customer where id = any(%s)", (plan["deleted_customers"],))
    summary = MutationSummary(
        day=day,
        path=truth / f"mutation_{day:04d}.json",
        inserted={"customer": [r[0] for r in plan["new_customers"]], "account": [r[0] for r in plan["new_accounts"]]},
        updated={"customer": sorted(plan["segments"]), "account": sorted(plan["balances"])},
        deleted={"customer": plan["deleted_customers"], "account": plan["deleted_accounts"]},
    )
    record: dict[str, Any] = {
        "day": day,
        "seed": seed,
        "follow_files": follow_files,
        "tables": {
            t: {"inserted": summary.inserted[t], "updated": summary.updated[t], "deleted": summary.deleted[t]}
            for t in ("customer", "account")
        },
        "changes": {
            "customer": {k: {"segmen": list(v)} for k, v in sorted(plan["segments"].items())},
            "account": {k: {"saldo": [str(v[0]), str(v[1])]} for k, v in sorted(plan["balances"].items())},
        },
    }
    write_atomic(summary.path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    log.info("mutation day %d: %s", day, summary.counts())
    return summary


def _applied_follow_files(truth: Path) -> set[str]:
    """Follow files whose flows an earlier mutation already applied."""
    done: set[str] = set()
    for path in truth.glob("mutation_*.json"):
        try:
            done.update(json.loads(path.read_text()).get("follow_files", []))
        except ValueError:
            continue
    return done


def _follow_flows(folder: Path, applied: set[str]) -> tuple[list[str], dict[str, int]]:
    """(files applied now, net flow in IDR cents per account id) of the follow files not applied yet."""
    import pyarrow.parquet as pq

    files = sorted(p for p in folder.glob("transaction_*.parquet") if not p.name.endswith(".defects.parquet"))
    files = [p for p in files if p.name not in applied]
    flows: dict[str, int] = {}
    columns = ["account_id", "akun_tujuan", "amount_idr", "tipe_transaksi", "status", "is_orphan"]
    for path in files:
        t = pq.read_table(path, columns=columns).to_pydict()
        for acc, dest, amount, kind, status, orphan in zip(*(t[c] for c in columns), strict=True):
            if status == "Failed" or orphan:
                continue
            cents = round(amount * 100)
            flows[acc] = flows.get(acc, 0) + (cents if kind == "Deposit" else -cents)
            if kind in ("Transfer", "Payment") and dest != acc:
                flows[dest] = flows.get(dest, 0) + cents
    return [p.name for p in files], flows


# Postings outside the transaction feed, per account type: a monthly admin fee (IDR), interest on a
# time deposit, a loan instalment that lowers the outstanding principal.
_ADMIN_FEE = {"Savings": Decimal("12500.00"), "Checking": Decimal("20000.00")}
_RATE = {"Deposit": Decimal("1.003"), "Loan": Decimal("0.98")}


def _plan(
    customers: list[tuple[Any, ...]],
    accounts: list[tuple[Any, ...]],
    locations: list[str],
    banks: list[str],
    rates: MutationRates,
    rng: np.random.Generator,
    flows: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Choose the day's changes; every key appears in at most one of inserted/updated/deleted."""
    cust_ids = [r[0] for r in customers]
    acc_ids = [r[0] for r in accounts]
    firsts, lasts = ref.names()
    emails = {r[4] for r in customers}

    # Deletions first, so that nothing deleted is also updated. The highest ids are never deleted:
    # new ids continue from them, and a deleted key must not come back as a different entity.
    top_acc = max(acc_ids, key=lambda i: parse_id(i)[1])
    top_cust = max(cust_ids, key=lambda i: parse_id(i)[1])
    protected = {top_cust, next(r[1] for r in accounts if r[0] == top_acc)}
    deletable = [c for c in cust_ids if c not in protected]
    n_del_c = min(_n(rates.deleted_customers, len(customers)), len(deletable))
    del_cust = sorted(deletable[i] for i in rng.choice(len(deletable), n_del_c, replace=False))
    gone = set(del_cust)
    del_acc = {r[0] for r in accounts if r[1] in gone}
    survivors = [r for r in accounts if r[0] not in del_acc and r[0] != top_acc]
    n_close = min(_n(rates.closed_accounts, len(accounts)), len(survivors))
    closing = {survivors[i][0] for i in rng.choice(len(survivors), n_close, replace=False)}
    del_acc |= closing

    live_cust = [r for r in customers if r[0] not in gone]
    n_seg = min(_n(rates.segment_changes, len(customers)), len(live_cust))
    segments: dict[str, tuple[str, str]] = {}
    for i in rng.choice(len(live_cust), n_seg, replace=False):
        cid, old = live_cust[i][0], live_cust[i][1]
        pos = ref.SEGMENTS.index(old) if old in ref.SEGMENTS else 0
        # Mostly upgrades (customers grow), sometimes a downgrade; never the same segment.
        step = 1 if (rng.random() < 0.7 or pos == 0) and pos < len(ref.SEGMENTS) - 1 else -1
        segments[cid] = (old, ref.SEGMENTS[pos + step])

    live_acc = [r for r in accounts if r[0] not in del_acc]
    balances: dict[str, tuple[Decimal, Decimal]] = {}
    # The money that moved since the last mutation (never below zero: the follow files' status
    # draw knew only the extracted balance).
    for aid, _cust, _tipe, saldo in live_acc:
        flow = (flows or {}).get(aid, 0)
        if flow:
            old = Decimal(saldo or 0)
            balances[aid] = (old, max(old + Decimal(flow) / 100, Decimal("0.00")).quantize(Decimal("0.01")))
    n_bal = min(_n(rates.balance_updates, len(accounts)), len(live_acc))
    for i in rng.choice(len(live_acc), n_bal, replace=False):
        aid, tipe = live_acc[i][0], live_acc[i][2]
        old, current = balances.get(aid, (Decimal(live_acc[i][3] or 0),) * 2)
        if tipe in _RATE:
            new = (current * _RATE[tipe]).quantize(Decimal("0.01"))
        else:
            new = max(current - _ADMIN_FEE.get(tipe, Decimal("10000.00")), Decimal("0.00"))
        if new == old:
            new += Decimal("1.00")
        balances[aid] = (old, new)

    n_new = _n(rates.new_customers, len(customers))
    new_cust_ids = _next_ids(cust_ids, n_new, "customer")
    new_customers = []
    n_acc_each = rng.choice([1, 2, 3], n_new, p=[0.55, 0.3, 0.15])
    new_acc_ids = _next_ids(acc_ids, int(n_acc_each.sum()), "account")
    new_accounts = []
    at = 0
    for cid, k in zip(new_cust_ids, n_acc_each, strict=True):
        first, last = firsts[int(rng.integers(len(firsts)))], lasts[int(rng.integers(len(lasts)))]
        email = f"{first.lower()}.{last.lower()}@example.com"
        suffix = 1
        while email in emails:
            email = f"{first.lower()}.{last.lower()}{suffix}@example.com"
            suffix += 1
        emails.add(email)
        segment = ref.SEGMENTS[int(rng.choice(len(ref.SEGMENTS), p=ref.SEGMENT_WEIGHTS))]
        loc = locations[int(rng.integers(len(locations)))]
        bank = banks[int(rng.integers(len(banks)))]
        new_customers.append((cid, first, last, email, segment, loc, bank))
        wealth = float(ref.SEGMENT_WEALTH[ref.SEGMENTS.index(segment)]) ** 0.8
        for j in range(int(k)):
            tipe = "Savings" if j == 0 else ref.ACCOUNT_TYPES[int(rng.integers(len(ref.ACCOUNT_TYPES)))]
            saldo = Decimal(str(round(_BALANCE_MEDIAN[tipe] * wealth * float(rng.lognormal(0.0, 0.9)), 2)))
            new_accounts.append((new_acc_ids[at], cid, tipe, saldo))
            at += 1
    return {
        "new_customers": new_customers,
        "new_accounts": new_accounts,
        "segments": segments,
        "balances": balances,
        "deleted_customers": del_cust,
        "deleted_accounts": sorted(del_acc),
    }
