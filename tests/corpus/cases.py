"""The bad-input corpus: hostile files, records and master rows bankpipe never generates itself.

Each `Case` says what lands (files in the landing folder, or rows in the source database) and
what must become of it: which transaction ids reach silver and gold exactly once, which are kept
in `silver.rejected_records` under which rule, and what the file ledger says of each file. Every
case uses its own id range (`TRX-<case number>NNNN`), so all of them land in one warehouse and one
dbt build, and a failure names the case.

`python -m tests.corpus` runs the corpus and prints the table in docs/reliability.md from what it
observed, not from what is written here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

# Master data in the seed's formats (written by the corpus, never read from outside the repository).
LOCATIONS = "id|kota|provinsi\nLOC-001|Jakarta Selatan|DKI Jakarta\nLOC-002|Bandung|Jawa Barat\n"
BANKS = (
    "bank_id|nama_bank|singkatan|kantor_pusat|jenis_bank\n"
    "BANK-001|Bank Rakyat Indonesia|BRI|Jakarta|BUMN\n"
    "BANK-002|Bank Central Asia|BCA|Jakarta|Swasta\n"
    # a bank type the pipeline has never seen (a regional development bank)
    "BANK-099|Bank Pembangunan Daerah Contoh|BPD Contoh|Semarang|BPD\n"
)
CUSTOMERS = (
    "id,nama_depan,nama_belakang,email,segmen,location_id,bank_id\n"
    "CUST-0001,Setya,Rahmawati,setya.rahmawati@example.com,Priority,LOC-001,BANK-001\n"
    "CUST-0002,Jaeman,Tampubolon,jaeman.tampubolon@example.com,Gold,LOC-002,BANK-002\n"
    # a segment the bank has just introduced
    "CUST-0099,Wulan,Sari,wulan.sari@example.com,Diamond,LOC-001,BANK-099\n"
)
ACCOUNTS = [
    {"id": "ACC-00001", "customer_id": "CUST-0001", "tipe_akun": "Savings", "saldo": 28730661.17},
    {"id": "ACC-00002", "customer_id": "CUST-0002", "tipe_akun": "Checking", "saldo": 3443845.47},
    # an account type that is new to the pipeline
    {"id": "ACC-00099", "customer_id": "CUST-0099", "tipe_akun": "Giro", "saldo": 150000000.00},
]


def write_batch_files(folder: Path) -> Path:
    """The corpus's master data as seed-format batch files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "location.txt").write_text(LOCATIONS, encoding="utf-8")
    (folder / "bank_info.txt").write_text(BANKS, encoding="utf-8")
    (folder / "customer.csv").write_text(CUSTOMERS, encoding="utf-8")
    (folder / "account.json").write_bytes(json.dumps(ACCOUNTS, indent=4).encode())
    return folder


def txn(tid: str, **overrides: Any) -> dict[str, Any]:
    """A valid seed-format transaction; `overrides` change fields (None removes one)."""
    rec: dict[str, Any] = {
        "id": tid,
        "date": "2025-12-24",
        "timestamp": "12:00:00",
        "account_id": "ACC-00001",
        "jumlah_transaksi": 150000.00,
        "tipe_transaksi": "Payment",
        "akun_tujuan": "ACC-00002",
        "status": "Success",
    }
    for key, value in overrides.items():
        if value is _DROP:
            rec.pop(key, None)
        else:
            rec[key] = value
    return rec


_DROP = object()
DROP: Any = _DROP  # `txn(id, field=DROP)` leaves the field out entirely


def array(*records: dict[str, Any]) -> bytes:
    return json.dumps(list(records), indent=4, ensure_ascii=False).encode()


def lines(*records: dict[str, Any] | bytes) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r, ensure_ascii=False).encode()) + b"\n" for r in records
    )


@dataclass
class Case:
    """One kind of bad input and its expected outcome."""

    number: int
    kind: str
    example: str
    files: dict[str, bytes] = field(default_factory=dict)
    # transaction ids that must reach silver.stg_transactions and gold exactly once
    valid: set[str] = field(default_factory=set)
    # transaction id -> the rule it must be kept under in silver.rejected_records
    rejected: dict[str, str] = field(default_factory=dict)
    # file name -> what the ledger must say: loaded | duplicate | rejected | partial | waiting | refused
    file_status: dict[str, str] = field(default_factory=dict)
    # transaction id -> the amount silver must read from it
    amounts: dict[str, Decimal] = field(default_factory=dict)
    # file name -> line numbers that must be kept in ops.rejected_lines (the file's other lines load)
    bad_lines: dict[str, list[int]] = field(default_factory=dict)
    # files written after the others, just before the stream ingest (still being written)
    late: bool = False
    # special set-up that is not a plain file (symlink, FIFO, ...): called with the landing folder
    setup: Callable[[Path], None] | None = None

    def tid(self, i: int) -> str:
        return f"TRX-{self.number:02d}{i:04d}"


SECRET_ID = "TRX-SECRET-1"  # a record only reachable through the symlink


def _symlink(landing: Path) -> None:
    secret = landing.parent / "outside-the-landing-folder.json"
    secret.write_bytes(array(txn(SECRET_ID)))
    (landing / "transaction_20251224_130000_link.json").symlink_to(secret)


def _fifo(landing: Path) -> None:
    os.mkfifo(landing / "transaction_20251224_140000_fifo.json")


def _directory(landing: Path) -> None:
    (landing / "transaction_20251224_150000_dir.json").mkdir()


def build() -> list[Case]:
    """Every corpus case, numbered; the numbers are their id ranges."""
    cases: list[Case] = []

    def case(kind: str, example: str, **kw: Any) -> Case:
        c = Case(len(cases) + 1, kind, example, **kw)
        cases.append(c)
        return c

    # ---------- whole files
    c = case("truncated array", 'a producer crashed mid-write: `[{…}, {…}, {"id": "TRX-…`')
    whole = array(txn(c.tid(1)), txn(c.tid(2)), txn(c.tid(3)))
    c.files["transaction_20251224_100001.json"] = whole[: whole.index(c.tid(3).encode()) + 4]
    c.file_status["transaction_20251224_100001.json"] = "partial"

    c = case("empty file", "0 bytes")
    c.files["transaction_20251224_100002.json"] = b""
    c.file_status["transaction_20251224_100002.json"] = "rejected"

    c = case("empty array", "`[]`")
    c.files["transaction_20251224_100003.json"] = b"[]\n"
    c.file_status["transaction_20251224_100003.json"] = "loaded"

    c = case("non-UTF-8 bytes", "a JSON Lines line with a Latin-1 `\\xe9` in a string")
    latin1 = json.dumps(txn(c.tid(2), channel="caf\u00e9"), ensure_ascii=False).encode().replace(b"\xc3\xa9", b"\xe9")
    c.files["transaction_20251224_100004.jsonl"] = lines(txn(c.tid(1)), latin1)
    c.valid = {c.tid(1)}
    c.file_status["transaction_20251224_100004.jsonl"] = "loaded"
    c.bad_lines["transaction_20251224_100004.jsonl"] = [2]

    c = case("byte-order mark", "UTF-8 BOM before `[`")
    c.files["transaction_20251224_100005.json"] = b"\xef\xbb\xbf" + array(txn(c.tid(1)), txn(c.tid(2)))
    c.valid = {c.tid(1), c.tid(2)}
    c.file_status["transaction_20251224_100005.json"] = "loaded"

    c = case("JSON Lines with a bad line", 'line 2 of 3 is `{"id": "TRX-…", "date": `')
    c.files["transaction_20251224_100006.jsonl"] = lines(
        txn(c.tid(1)), b'{"id": "' + c.tid(2).encode() + b'", "date": ', txn(c.tid(3))
    )
    c.valid = {c.tid(1), c.tid(3)}
    c.file_status["transaction_20251224_100006.jsonl"] = "loaded"
    c.bad_lines["transaction_20251224_100006.jsonl"] = [2]

    c = case("JSON array with a bad element", 'element 2 of a seed-format array has `"jumlah_transaksi": 1.802.381,84`')
    good = array(txn(c.tid(1)), txn(c.tid(2), jumlah_transaksi=12345), txn(c.tid(3)))
    bad = good.replace(b'"jumlah_transaksi": 12345', b'"jumlah_transaksi": 1.802.381,84')
    c.files["transaction_20251224_100031.json"] = bad
    c.valid = {c.tid(1), c.tid(3)}
    c.file_status["transaction_20251224_100031.json"] = "loaded"
    # the element is reported at the line of its opening brace
    c.bad_lines["transaction_20251224_100031.json"] = [
        bad[: bad.rindex(b"{", 0, bad.index(c.tid(2).encode()))].count(b"\n") + 1
    ]

    c = case("JSON array with a stray comma", "`[{…}, {…},]`")
    c.files["transaction_20251224_100032.json"] = array(txn(c.tid(1)), txn(c.tid(2)))[:-2] + b",\n]"
    c.valid = {c.tid(1), c.tid(2)}
    c.file_status["transaction_20251224_100032.json"] = "loaded"
    c.bad_lines["transaction_20251224_100032.json"] = [21]

    c = case("raw U+2028 in a string", '`"channel": "mobile\u2028app"` (valid JSON, a line break to some parsers)')
    c.files["transaction_20251224_100007.jsonl"] = lines(txn(c.tid(1), channel="mobile\u2028app"), txn(c.tid(2)))
    c.valid = {c.tid(1), c.tid(2)}
    c.file_status["transaction_20251224_100007.jsonl"] = "loaded"

    c = case("deep nesting", "a line of 100,000 nested `[`; a record with a 100,000-deep extra field")
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_field = json.dumps(txn(c.tid(3))).encode()[:-1] + b', "extra": ' + deep + b"}"
    c.files["transaction_20251224_100008.jsonl"] = lines(txn(c.tid(1)), deep, deep_field, txn(c.tid(2)))
    # the bare array is a JSON value but no record: bronze keeps it, silver rejects it (no id)
    c.valid = {c.tid(1), c.tid(2), c.tid(3)}
    c.file_status["transaction_20251224_100008.jsonl"] = "loaded"

    c = case("file still being written", "mtime younger than the settle time", late=True)
    c.files["transaction_20251224_100009.json"] = array(txn(c.tid(1)))
    c.valid = {c.tid(1)}  # once complete
    c.file_status["transaction_20251224_100009.json"] = "waiting"

    c = case("symlink", "`transaction_…_link.json` → a file outside the landing folder", setup=_symlink)
    c.file_status["transaction_20251224_130000_link.json"] = "refused"

    c = case("FIFO", "a named pipe called `transaction_…_fifo.json`", setup=_fifo)
    c.file_status["transaction_20251224_140000_fifo.json"] = "refused"

    c = case("directory", "a folder called `transaction_…_dir.json`", setup=_directory)
    c.file_status["transaction_20251224_150000_dir.json"] = "refused"

    c = case("glob characters in file names", "`x*.json` beside `x1.json`; `ab?.json` beside `abc.json`")
    c.files["transaction_x1.json"] = array(txn(c.tid(1)))
    c.files["transaction_x*.json"] = array(txn(c.tid(2)))
    c.files["transaction_abc.json"] = array(txn(c.tid(3)))
    c.files["transaction_ab?.json"] = array(txn(c.tid(4)))
    c.files["transaction_[ab].json"] = array(txn(c.tid(5)))
    c.valid = {c.tid(i) for i in range(1, 6)}
    c.file_status = dict.fromkeys(c.files, "loaded")

    c = case("quotes, spaces and markup in file names", '`it\'s a "file".json`, `transaction_[red]x.json`')
    c.files['it\'s a "file" .json'] = array(txn(c.tid(1)))
    c.files["transaction_[red]x.json"] = array(txn(c.tid(2)))
    c.valid = {c.tid(1), c.tid(2)}
    c.file_status = dict.fromkeys(c.files, "loaded")

    c = case("upper-case suffix", "`TRANSACTION_20251224_100033.JSON` (a producer on a case-insensitive file system)")
    c.files["TRANSACTION_20251224_100033.JSON"] = array(txn(c.tid(1)))
    c.valid = {c.tid(1)}
    c.file_status = dict.fromkeys(c.files, "loaded")

    c = case("same bytes under two names", "a file re-sent under a new name")
    same = array(txn(c.tid(1)))
    c.files["transaction_20251224_100014.json"] = same
    c.files["transaction_20251224_100014_copy.json"] = same
    c.valid = {c.tid(1)}
    c.file_status = {"transaction_20251224_100014.json": "loaded", "transaction_20251224_100014_copy.json": "duplicate"}

    # ---------- amounts
    c = case("amount as a string", '`"jumlah_transaksi": "150000.50"`')
    c.files["transaction_20251224_100015.json"] = array(txn(c.tid(1), jumlah_transaksi="150000.50"))
    c.valid = {c.tid(1)}
    c.amounts = {c.tid(1): Decimal("150000.50")}

    c = case("Indonesian separators", '`"jumlah_transaksi": "1.802.381,84"`')
    c.files["transaction_20251224_100016.json"] = array(
        txn(c.tid(1), jumlah_transaksi="1.802.381,84"), txn(c.tid(2), jumlah_transaksi="1.802,5")
    )
    c.valid = {c.tid(1), c.tid(2)}
    c.amounts = {c.tid(1): Decimal("1802381.84"), c.tid(2): Decimal("1802.50")}

    c = case("more than two decimals", "`150000.125`")
    c.files["transaction_20251224_100017.json"] = array(txn(c.tid(1), jumlah_transaksi=150000.125), txn(c.tid(2)))
    c.rejected = {c.tid(1): "too_many_decimals"}
    c.valid = {c.tid(2)}

    c = case("zero amount", "`0`")
    c.files["transaction_20251224_100018.json"] = array(txn(c.tid(1), jumlah_transaksi=0), txn(c.tid(2)))
    c.rejected = {c.tid(1): "non_positive_amount"}
    c.valid = {c.tid(2)}

    c = case("negative amount", "`-5000`")
    c.files["transaction_20251224_100019.json"] = array(txn(c.tid(1), jumlah_transaksi=-5000), txn(c.tid(2)))
    c.rejected = {c.tid(1): "non_positive_amount"}
    c.valid = {c.tid(2)}

    c = case("absurdly large amount", "`1e15` IDR, `1e30`, `1e400`")
    c.files["transaction_20251224_100020.jsonl"] = lines(
        txn(c.tid(1), jumlah_transaksi=1e15),
        b'{"id": "' + c.tid(2).encode() + b'", "date": "2025-12-24", "timestamp": "12:00:00", "account_id": '
        b'"ACC-00001", "jumlah_transaksi": 1e400, "tipe_transaksi": "Payment", "akun_tujuan": "ACC-00002", '
        b'"status": "Success"}',
        txn(c.tid(3), jumlah_transaksi="1" + "0" * 30),
        txn(c.tid(4)),
    )
    c.rejected = {c.tid(1): "implausible_amount", c.tid(2): "invalid_amount", c.tid(3): "invalid_amount"}
    c.valid = {c.tid(4)}

    # ---------- enumerations
    c = case("statuses and types in other casing", "`SUCCESS`, ` transfer `")
    c.files["transaction_20251224_100021.json"] = array(
        txn(c.tid(1), status="SUCCESS"), txn(c.tid(2), tipe_transaksi=" transfer ", status="failed")
    )
    c.valid = {c.tid(1), c.tid(2)}

    c = case("statuses and types in another language", "`Berhasil`, `Penarikan`")
    c.files["transaction_20251224_100022.json"] = array(
        txn(c.tid(1), status="Berhasil"), txn(c.tid(2), tipe_transaksi="Penarikan"), txn(c.tid(3))
    )
    c.rejected = {c.tid(1): "unknown_status", c.tid(2): "unknown_transaction_type"}
    c.valid = {c.tid(3)}

    # ---------- dates and times
    c = case("impossible dates and times", "`2025-02-30`, `25:61:00`")
    c.files["transaction_20251224_100023.json"] = array(
        txn(c.tid(1), date="2025-02-30"), txn(c.tid(2), timestamp="25:61:00"), txn(c.tid(3))
    )
    c.rejected = {c.tid(1): "invalid_date", c.tid(2): "invalid_time"}
    c.valid = {c.tid(3)}

    c = case("far-future and ancient dates", "`9999-12-31`, `0001-01-01`")
    c.files["transaction_20251224_100024.json"] = array(
        txn(c.tid(1), date="9999-12-31"), txn(c.tid(2), date="0001-01-01"), txn(c.tid(3))
    )
    c.rejected = {c.tid(1): "future_date", c.tid(2): "date_before_min"}
    c.valid = {c.tid(3)}

    # ---------- missing fields
    c = case("missing and null fields", 'no `jumlah_transaksi` key; `"account_id": null`; no `id`')
    c.files["transaction_20251224_100025.json"] = array(
        txn(c.tid(1), jumlah_transaksi=DROP), txn(c.tid(2), account_id=None), txn(c.tid(3), id=DROP), txn(c.tid(4))
    )
    c.rejected = {c.tid(1): "missing_amount", c.tid(2): "missing_account_id"}
    c.valid = {c.tid(4)}

    c = case("control characters and absurd length in ids", '`"TRX-…\\u0000x"`, a 100,000-character id')
    c.files["transaction_20251224_100034.json"] = array(
        txn(c.tid(1) + "\u0000x"),
        txn(c.tid(2), account_id="ACC-00001\nACC-00002"),
        txn(c.tid(3) + "x" * 100_000),
        txn(c.tid(4)),
    )
    c.rejected = {
        c.tid(1) + "\u0000x": "invalid_transaction_id",
        c.tid(2): "invalid_account_id",
        c.tid(3) + "x" * 100_000: "invalid_transaction_id",
    }
    c.valid = {c.tid(4)}

    # ---------- duplicates
    c = case("duplicate ids within a file", "the same record twice in one array")
    c.files["transaction_20251224_100026.json"] = array(txn(c.tid(1)), txn(c.tid(1)), txn(c.tid(2)))
    c.valid = {c.tid(1), c.tid(2)}

    c = case("duplicate ids across files", "the same record in two files")
    c.files["transaction_20251224_100027a.json"] = array(txn(c.tid(1)), txn(c.tid(2)))
    c.files["transaction_20251224_100027b.json"] = array(txn(c.tid(1)), txn(c.tid(3)))
    c.valid = {c.tid(1), c.tid(2), c.tid(3)}

    c = case("duplicate id with changed content", "`TRX-…` again with another amount")
    c.files["transaction_20251224_100028a.json"] = array(txn(c.tid(1)))
    c.files["transaction_20251224_100028b.json"] = array(txn(c.tid(1), jumlah_transaksi=999.0))
    c.valid = {c.tid(1)}
    c.rejected = {c.tid(1): "duplicate_transaction_id"}

    # ---------- schema drift and references
    c = case("extra unknown fields", '`"merchant": {"mcc": "5411"}`')
    c.files["transaction_20251224_100029.json"] = array(txn(c.tid(1), merchant={"mcc": "5411"}, risk_score=0.2))
    c.valid = {c.tid(1)}

    c = case("orphan account", "`account_id` not in master data")
    c.files["transaction_20251224_100030.json"] = array(txn(c.tid(1), account_id="ACC-99999"))
    c.valid = {c.tid(1)}

    return cases
