"""Ground truth (parquet + JSON) that the pipeline never reads: labels, planted defects, files, scenarios."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bankpipe.generate import reference as ref
from bankpipe.generate.fraud import SCENARIOS, CompromisedPoint, Labels
from bankpipe.generate.ids import format_id, format_ids
from bankpipe.generate.master import Master, Profiles
from bankpipe.generate.stream import StreamPlan, write_atomic
from bankpipe.generate.transactions import LEGIT_PATTERNS, Balances, Tx

_ROW_GROUP = 1_000_000

README = """# Ground truth (never read by the pipeline)

- transactions.parquet — one row per generated transaction (clean values; account_id is what the file
  says, an unknown id for orphans; customers via accounts.parquet): is_fraud, fraud_scenario,
  fraud_incident, legit_pattern (a legitimate look-alike of a fraud rule: travel, one_off_large,
  night_new_payee, mule_inflow), reported_at / confirmed_fraud (the planned report, also when after the period),
  in_fraud_case (reported within the period, so present in fraud_case.csv), file (where it was first sent).
- defects.parquet — one row per planted defect: file, position (0-based index in the file's array;
  null for file-level defects), record_id, defect, field, detail; copy_of names the original file
  when the row is the same defective record inside a duplicate file.
- files.parquet — one row per stream file written: kind regular|late|truncated|duplicate.
- fraud_cases.parquet — every planned report, true and false, with in_fraud_case.
- accounts.parquet — per-account behaviour behind the data (habit and its drift, mule/merchant roles),
  saldo_opening / saldo_closing (balances follow the transactions; account.json holds the closing one).
- summary.json — settings, counts, id widths, compromised points, look-alike counts, card_testing_from
  (the first day of the scenario that starts part-way through the period).
- mutations/ — what each `bankpipe generate --mutate` changed in the source database.
- source_times.parquet — created_at/updated_at of every master row as the bank's systems would hold them,
  tied to the batch files by sha256; the one file read back, by the source loader (`--to-postgres`,
  `bankpipe source load-files`), never by the pipeline's stages.
"""


def _categories(values: tuple[str | None, ...] | list[str], idx: np.ndarray) -> pa.Array:
    """A dictionary-encoded string column (cheap to build and to write)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(idx, np.int32)), pa.array(list(values), pa.string()))


def _id_categories(entity: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Ids that repeat (accounts) as a dictionary column: much cheaper to write than plain strings."""
    present = np.zeros(int(numbers.max()) + 1 if len(numbers) else 1, bool)
    present[numbers] = True  # a counting pass instead of np.unique's sort
    unique = np.flatnonzero(present)
    inverse = (np.cumsum(present) - 1).astype(np.int32)[numbers]
    return pa.DictionaryArray.from_arrays(pa.array(inverse), format_ids(entity, unique, width))


def _timestamps(ts: np.ndarray, start: date, mask: np.ndarray | None = None) -> pa.Array:
    base = int(np.datetime64(start.isoformat(), "s").astype(np.int64))
    return pa.array(ts.astype(np.int64) + base, pa.int64(), mask=mask).view(pa.timestamp("s"))


def transactions_table(
    tx: Tx,
    master: Master,
    plan: StreamPlan,
    labels: Labels,
    start: date,
    end_ts: int,
    lo: int,
    hi: int,
    id_offset: int = 0,
) -> pa.Table:
    """Ground truth for tx rows [lo, hi)."""
    rows = np.arange(lo, hi)
    w = master.widths
    orphan = tx.orphan[rows] > 0
    acc_num = np.where(orphan, tx.orphan[rows], tx.account[rows].astype(np.int64) + 1)
    # First position of every row (the original, not a duplicate copy) -> its file.
    first_pos = np.empty(len(tx), np.int64)
    first_pos[plan.order[~plan.is_copy]] = np.flatnonzero(~plan.is_copy)
    file_idx = plan.file_index(first_pos[rows])
    rep_ts = np.full(len(rows), -1, np.int64)
    confirmed = np.zeros(len(rows), bool)
    has_report = np.zeros(len(rows), bool)
    sel = (labels.rows >= lo) & (labels.rows < hi)
    rep_ts[labels.rows[sel] - lo] = labels.reported_ts[sel]
    confirmed[labels.rows[sel] - lo] = labels.confirmed[sel]
    has_report[labels.rows[sel] - lo] = True
    scen = tx.fraud[rows]
    locations = [format_id("location", i + 1, w.location) for i in range(len(master.cities))]
    return pa.table(
        {
            "transaction_id": format_ids("transaction", rows + id_offset + 1, w.transaction),
            "ts": _timestamps(tx.ts[rows], start),
            "account_id": _id_categories("account", acc_num, w.account),
            "jumlah_transaksi": pa.array(tx.amount[rows] / 100),
            "mata_uang": _categories(ref.CURRENCIES, tx.currency[rows]),
            "amount_idr": pa.array(tx.amount_idr[rows] / 100),
            "tipe_transaksi": _categories(ref.TX_TYPES, tx.ttype[rows]),
            "akun_tujuan": _id_categories("account", tx.dest[rows].astype(np.int64) + 1, w.account),
            "status": _categories(ref.STATUSES, tx.status[rows]),
            "channel": _categories(ref.CHANNELS, tx.channel[rows]),
            "location_id": _categories(locations, tx.location[rows]),
            "is_fraud": pa.array(scen > 0),
            "fraud_scenario": pa.DictionaryArray.from_arrays(
                pa.array(scen.astype(np.int32), mask=scen == 0), pa.array(list(SCENARIOS), pa.string())
            ),
            "fraud_incident": pa.array(tx.incident[rows], mask=scen == 0),
            "legit_pattern": pa.DictionaryArray.from_arrays(
                pa.array(tx.pattern[rows].astype(np.int32), mask=tx.pattern[rows] == 0),
                pa.array(list(LEGIT_PATTERNS), pa.string()),
            ),
            "is_new_counterparty": pa.array(tx.new_cp[rows]),
            "is_orphan": pa.array(orphan),
            "reported_at": _timestamps(np.maximum(rep_ts, 0), start, mask=~has_report),
            "confirmed_fraud": pa.array(confirmed, mask=~has_report),
            "in_fraud_case": pa.array(has_report & (rep_ts < end_ts)),
            "file": _categories([f.name for f in plan.files], file_idx),
        }
    )


def write_parquet(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, **_parquet_options(table))
    tmp.replace(path)


def _parquet_options(table: pa.Table) -> dict[str, Any]:
    # Dictionary encoding only where the column is a dictionary already (trying it on unique ids
    # costs time for nothing); statistics only on time columns (what queries prune on); LZ4 writes
    # a third faster than zstd for a file half again as big — the ground truth is written at every run.
    names = [f.name for f in table.schema]
    return {
        "compression": "lz4",
        "use_dictionary": [f.name for f in table.schema if pa.types.is_dictionary(f.type)],
        "write_statistics": [n for n in names if n in ("ts", "reported_at", "min_ts", "max_ts")],
    }


def write_transactions(
    path: Path, tx: Tx, master: Master, plan: StreamPlan, labels: Labels, start: date, end_ts: int, id_offset: int = 0
) -> None:
    """transactions.parquet in row groups (bounded memory at 10M rows)."""
    tmp = path.with_name(f".{path.name}.tmp")
    writer: pq.ParquetWriter | None = None
    try:
        for lo in range(0, max(len(tx), 1), _ROW_GROUP):
            table = transactions_table(
                tx, master, plan, labels, start, end_ts, lo, min(lo + _ROW_GROUP, len(tx)), id_offset
            )
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, **_parquet_options(table))
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)


def defects_table(plan: StreamPlan) -> pa.Table:
    schema = pa.schema(
        [
            ("file", pa.string()),
            ("position", pa.int64()),
            ("record_id", pa.string()),
            ("defect", pa.string()),
            ("field", pa.string()),
            ("detail", pa.string()),
            ("copy_of", pa.string()),
        ]
    )
    return pa.Table.from_pylist(plan.defects, schema=schema)


def files_table(
    plan: StreamPlan, tx: Tx, master: Master, start: date, sizes: dict[str, int], id_offset: int = 0
) -> pa.Table:
    w = master.widths.transaction
    rows: list[dict[str, Any]] = []
    for f in plan.files:
        ids = plan.order[f.start : f.stop]
        base = {
            "records": f.stop - f.start,
            "bytes": sizes.get(f.name),
            "first_record_id": format_id("transaction", int(ids[0]) + id_offset + 1, w),
            "last_record_id": format_id("transaction", int(ids[-1]) + id_offset + 1, w),
            "min_ts": _ts_py(int(tx.ts[ids].min()), start),
            "max_ts": _ts_py(int(tx.ts[ids].max()), start),
        }
        rows.append({"file": f.name, "kind": f.kind, "duplicate_of": None, **base})
        rows.extend({"file": c, "kind": "duplicate", "duplicate_of": f.name, **base} for c in f.copies)
    schema = pa.schema(
        [
            ("file", pa.string()),
            ("kind", pa.string()),
            ("duplicate_of", pa.string()),
            ("records", pa.int64()),
            ("bytes", pa.int64()),
            ("first_record_id", pa.string()),
            ("last_record_id", pa.string()),
            ("min_ts", pa.timestamp("s")),
            ("max_ts", pa.timestamp("s")),
        ]
    )
    rows.sort(key=lambda r: r["file"])
    return pa.Table.from_pylist(rows, schema=schema)


def _ts_py(ts: int, start: date) -> np.datetime64:
    return np.datetime64(start.isoformat(), "s") + np.timedelta64(ts, "s")


def fraud_cases_table(labels: Labels, tx: Tx, master: Master, start: date, end_ts: int, id_offset: int = 0) -> pa.Table:
    return pa.table(
        {
            "transaction_id": format_ids(
                "transaction", labels.rows.astype(np.int64) + id_offset + 1, master.widths.transaction
            ),
            "confirmed_fraud": pa.array(labels.confirmed),
            "reported_at": _timestamps(labels.reported_ts, start),
            "fraud_scenario": _categories(SCENARIOS, tx.fraud[labels.rows]),
            "in_fraud_case": pa.array(labels.reported_ts < end_ts),
        }
    )


def accounts_table(master: Master, prof: Profiles, money: Balances | None = None) -> pa.Table:
    """Per account: the habits behind its transactions, its roles, and its balance at both ends of the period."""
    n = master.n_accounts
    rows = np.arange(n, dtype=np.int64)
    is_merchant = np.zeros(n, bool)
    is_merchant[prof.merchant_pool] = True
    opening = master.acc_saldo_cents if money is None else money.opening
    closing = master.acc_saldo_cents if money is None else money.closing
    return pa.table(
        {
            "account_id": format_ids("account", rows + 1, master.widths.account),
            "customer_id": format_ids("customer", master.acc_customer.astype(np.int64) + 1, master.widths.customer),
            "habit_median_idr": pa.array(np.round(np.exp(prof.mu), 2)),
            "habit_sigma": pa.array(prof.sigma),
            "habit_trend_per_30d": pa.array(prof.trend.astype(np.float64)),
            "activity": pa.array(prof.activity),
            "is_mule": pa.array(prof.is_mule),
            "is_merchant": pa.array(is_merchant),
            "saldo_opening": pa.array(opening / 100),
            "saldo_closing": pa.array(closing / 100),
        }
    )


def points_json(points: list[CompromisedPoint], master: Master, start: date) -> list[dict[str, Any]]:
    out = []
    for p in points:
        out.append(
            {
                "location_id": format_id("location", p.location + 1, master.widths.location),
                "kota": master.cities.kota[p.location],
                "channel": ref.CHANNELS[p.channel],
                "first_day": str(np.datetime64(start.isoformat()) + np.timedelta64(p.first_day, "D")),
                "last_day": str(np.datetime64(start.isoformat()) + np.timedelta64(p.last_day, "D")),
                "transactions": p.transactions,
                "fraudulent": p.fraudulent,
                "fraud_incident": p.incident,
            }
        )
    return out


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def write_readme(directory: Path) -> None:
    write_atomic(directory / "README.md", README.encode())
