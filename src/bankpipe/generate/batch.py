"""Batch files in the seed's formats: location.txt, bank_info.txt, customer.csv, account.json, fraud_case.csv."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from bankpipe.generate import reference as ref
from bankpipe.generate.fraud import Labels, reported_at_text
from bankpipe.generate.ids import format_id, format_ids
from bankpipe.generate.master import Master
from bankpipe.generate.render import Lookup, Rows, json_lookup
from bankpipe.generate.stream import write_atomic
from bankpipe.source.load import SOURCE_TIMES, file_sha256
from bankpipe.source.schema import COLUMNS

# The bank's history before the period: customers joined and accounts opened over these years,
# locations and banks were set up before all of them.
HISTORY_YEARS = 5
_YEAR = 365 * 86_400
# The bank works in WIB (UTC+7): the simulated clock's seconds count from the start date's midnight there.
_WIB = 7 * 3600

_CHUNK = 500_000


def _header(table: str, delimiter: str) -> str:
    # The loader checks headers against the source schema: take them from there.
    return delimiter.join(COLUMNS[table]) + "\n"


def write_locations(master: Master, directory: Path) -> int:
    w = master.widths.location
    c = master.cities
    lines = [f"{format_id('location', i + 1, w)}|{c.kota[i]}|{c.provinsi[i]}\n" for i in range(len(c))]
    write_atomic(directory / "location.txt", (_header("location", "|") + "".join(lines)).encode())
    return len(lines)


def write_banks(master: Master, directory: Path) -> int:
    w = master.widths.bank
    lines = [
        f"{format_id('bank', i + 1, w)}|{b.nama_bank}|{b.singkatan}|{b.kantor_pusat}|{b.jenis_bank}\n"
        for i, b in enumerate(ref.BANKS)
    ]
    write_atomic(directory / "bank_info.txt", (_header("bank_info", "|") + "".join(lines)).encode())
    return len(lines)


def write_customers(master: Master, directory: Path) -> int:
    """customer.csv; emails are first.last[n]@example.com, unique."""
    firsts, lasts = ref.names()
    first, last = Lookup(firsts), Lookup(lasts)
    first_lc, last_lc = Lookup([n.lower() for n in firsts]), Lookup([n.lower() for n in lasts])
    segments = Lookup(ref.SEGMENTS)
    w = master.widths
    path = directory / "customer.csv"
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(_header("customer", ",").encode())
        for lo in range(0, master.n_customers, _CHUNK):
            rows = np.arange(lo, min(lo + _CHUNK, master.n_customers))
            f, la = master.cust_first[rows], master.cust_last[rows]
            r = Rows(len(rows)).text("CUST-").digits(rows + 1, w.customer).text(",")
            r.lookup(first, f).text(",").lookup(last, la).text(",")
            r.lookup(first_lc, f).text(".").lookup(last_lc, la).number(master.cust_email_rank[rows], empty_zero=True)
            r.text("@example.com,").lookup(segments, master.cust_segment[rows])
            r.text(",LOC-").digits(master.cust_location[rows].astype(np.int64) + 1, w.location)
            r.text(",BANK-").digits(master.cust_bank[rows].astype(np.int64) + 1, w.bank).text("\n")
            fh.write(r.build().slice(0, len(rows)))
    tmp.replace(path)
    return master.n_customers


def write_accounts(master: Master, directory: Path) -> int:
    """account.json as json.dump(records, indent=4) would write it."""
    w = master.widths
    types = json_lookup(ref.ACCOUNT_TYPES)
    separators = Lookup([",\n", "\n"])
    path = directory / "account.json"
    tmp = path.with_name(f".{path.name}.tmp")
    n = master.n_accounts
    with open(tmp, "wb") as fh:
        fh.write(b"[\n" if n else b"[]")
        for lo in range(0, n, _CHUNK):
            rows = np.arange(lo, min(lo + _CHUNK, n))
            r = Rows(len(rows)).text('    {\n        "id": "ACC-').digits(rows + 1, w.account)
            r.text('",\n        "customer_id": "CUST-').digits(
                master.acc_customer[rows].astype(np.int64) + 1, w.customer
            )
            r.text('",\n        "tipe_akun": ').lookup(types, master.acc_type[rows])
            r.text(',\n        "saldo": ').amount(master.acc_saldo_cents[rows])
            r.text("\n    }").lookup(separators, (rows == n - 1).astype(np.int64))
            fh.write(r.build().slice(0, len(rows)))
        if n:
            fh.write(b"]")
    tmp.replace(path)
    return n


def write_fraud_cases(
    labels: Labels, master: Master, start: date, end_ts: int, directory: Path, id_offset: int = 0
) -> int:
    """fraud_case.csv: the reports the bank has received by the end of the period (later ones are not in it)."""
    known = labels.reported_ts < end_ts
    rows = labels.rows[known]
    ids = format_ids("transaction", rows.astype(np.int64) + id_offset + 1, master.widths.transaction).to_pylist()
    stamps = reported_at_text(labels.reported_ts[known], start)
    confirmed = ["true" if c else "false" for c in labels.confirmed[known]]
    body = "".join(f"{i},{c},{s}\n" for i, c, s in zip(ids, confirmed, stamps, strict=True))
    write_atomic(directory / "fraud_case.csv", (_header("fraud_case", ",") + body).encode())
    return int(known.sum())


def source_times(master: Master, start: date, days: int) -> pa.Table:
    """created_at/updated_at per master row as the bank's systems would hold them (table, key, both UTC).

    Customers: joined before the period, unchanged in it (updated_at = created_at). Accounts: opened
    before the period; account.json holds the closing balance, a current state, so the row's
    updated_at is the period's end. Locations and banks: set up before the bank's first customer.
    """
    start_s = int(np.datetime64(start.isoformat(), "s").astype(np.int64)) - _WIB
    history = HISTORY_YEARS * _YEAR
    w = master.widths
    cust_joined = master.cust_joined if master.cust_joined is not None else np.zeros(master.n_customers)
    acc_opened = master.acc_opened if master.acc_opened is not None else np.zeros(master.n_accounts)
    # Floor to the second, and at least a second before the period: nothing exists at its first instant.
    joined = np.minimum(start_s - history + np.floor(cust_joined * history).astype(np.int64), start_s - 1)
    opened = np.minimum(start_s - history + np.floor(acc_opened * history).astype(np.int64), start_s - 1)
    opened = np.maximum(opened, joined[master.acc_customer])  # never before its holder joined
    founded = start_s - 2 * history
    n_loc, n_bank = len(master.cities), len(ref.BANKS)
    parts = [
        ("location", format_ids("location", np.arange(1, n_loc + 1), w.location), np.full(n_loc, founded), None),
        ("bank_info", format_ids("bank", np.arange(1, n_bank + 1), w.bank), np.full(n_bank, founded), None),
        ("customer", format_ids("customer", np.arange(1, master.n_customers + 1), w.customer), joined, None),
        (
            "account",
            format_ids("account", np.arange(1, master.n_accounts + 1), w.account),
            opened,
            np.full(master.n_accounts, start_s + days * 86_400),
        ),
    ]
    utc = pa.timestamp("s", tz="UTC")
    return pa.concat_tables(
        pa.table(
            {
                "table": pa.array([name] * len(created), pa.string()),
                "key": keys.cast(pa.string()),
                "created_at": pa.array(created.astype(np.int64), pa.int64()).cast(utc),
                "updated_at": pa.array((created if updated is None else updated).astype(np.int64), pa.int64()).cast(
                    utc
                ),
            }
        )
        for name, keys, created, updated in parts
    )


def write_source_times(master: Master, start: date, days: int, batch_dir: Path) -> None:
    """source_times.parquet for the batch files just written, tied to their bytes by sha256.

    The seed's file formats have no place for these times; `bankpipe.source.load` applies them when
    it loads these very files (`generate --to-postgres`, the demo), so that the source rows carry the
    simulated timeline rather than the moment of loading.
    """
    table = source_times(master, start, days)
    names = ("location.txt", "bank_info.txt", "customer.csv", "account.json")
    digests = {name: file_sha256(batch_dir / name) for name in names}
    table = table.replace_schema_metadata({"bankpipe.sha256": orjson.dumps(digests)})
    path = batch_dir / SOURCE_TIMES
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def write_batch(master: Master, directory: Path) -> dict[str, int]:
    """The four master-data files; returns rows per file name."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "location.txt": write_locations(master, directory),
        "bank_info.txt": write_banks(master, directory),
        "customer.csv": write_customers(master, directory),
        "account.json": write_accounts(master, directory),
    }
