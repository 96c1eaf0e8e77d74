"""Batch files in the seed's formats: location.txt, bank_info.txt, customer.csv, account.json, fraud_case.csv."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from bankpipe.generate import reference as ref
from bankpipe.generate.fraud import Labels, reported_at_text
from bankpipe.generate.ids import format_id, format_ids
from bankpipe.generate.master import Master
from bankpipe.generate.render import Lookup, Rows, json_lookup
from bankpipe.generate.stream import write_atomic
from bankpipe.source.schema import COLUMNS

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


def write_batch(master: Master, directory: Path) -> dict[str, int]:
    """The four master-data files; returns rows per file name."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "location.txt": write_locations(master, directory),
        "bank_info.txt": write_banks(master, directory),
        "customer.csv": write_customers(master, directory),
        "account.json": write_accounts(master, directory),
    }
