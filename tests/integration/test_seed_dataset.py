"""The seed's own sample files (../shared/seed-dataset beside the clone, as CI lays it out) ingest unchanged.

Every other test reads the sample files bankpipe ships in tests/data/; this module checks them against
the seed's originals (same formats) and loads the originals themselves. Skipped when the folder is absent.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from bankpipe.ingest import stream
from bankpipe.source.db import connect
from bankpipe.source.load import load_files
from bankpipe.warehouse import connect as wh_connect
from tests.conftest import SEED

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not SEED.is_dir(), reason=f"the seed's own sample files are not at {SEED}"),
]

DELIMITED = {"location.txt": "|", "bank_info.txt": "|", "customer.csv": ","}
TX_KEYS = ["id", "date", "timestamp", "account_id", "jumlah_transaksi", "tipe_transaksi", "akun_tujuan", "status"]
FILE_NAME = re.compile(r"^transaction_\d{8}_\d{6}\.json$")


def _delimited(path: Path, delimiter: str) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh, delimiter=delimiter))


def _records(folder: Path) -> list[dict]:
    return [r for p in sorted(folder.glob("*.json")) for r in json.loads(p.read_bytes())]


def test_the_shipped_sample_has_the_seeds_formats(seed_dir: Path, sample_dir: Path) -> None:
    for name, delimiter in DELIMITED.items():
        seed_rows = _delimited(seed_dir / "batch_source" / name, delimiter)
        rows = _delimited(sample_dir / "batch_source" / name, delimiter)
        assert rows[0] == seed_rows[0], name  # the same header
        assert {len(r) for r in rows} == {len(seed_rows[0])} == {len(r) for r in seed_rows}, name
        for folder in (seed_dir, sample_dir):  # "\n" line ends, a final newline
            assert (folder / "batch_source" / name).read_bytes().endswith(b"\n"), (folder, name)
            assert b"\r" not in (folder / "batch_source" / name).read_bytes(), (folder, name)
    for folder in (seed_dir, sample_dir):
        # json.dump(records, indent=4): pretty-printed, no final newline.
        for path in [folder / "batch_source" / "account.json", *sorted((folder / "stream_source").glob("*"))]:
            text = path.read_text()
            assert json.dumps(json.loads(text), indent=4) == text, path
            assert path.parent.name == "batch_source" or FILE_NAME.match(path.name), path
        accounts = json.loads((folder / "batch_source" / "account.json").read_bytes())
        assert [list(a) for a in accounts] == [["id", "customer_id", "tipe_akun", "saldo"]] * len(accounts)
        assert all(list(r) == TX_KEYS for r in _records(folder / "stream_source")), folder
    assert len(_records(sample_dir / "stream_source")) == len(_records(seed_dir / "stream_source"))


def test_the_seeds_statuses_are_drawn_at_random(seed_dir: Path) -> None:
    # The seed's generator drew statuses with no driver: all three occur even in 60 transactions.
    assert {r["status"] for r in _records(seed_dir / "stream_source")} == {"Success", "Pending", "Failed"}


def test_the_seeds_batch_files_load_unchanged_and_reload_is_a_no_op(settings, seed_dir: Path) -> None:
    with connect(settings) as conn:
        first = {r.table: (r.rows, r.inserted, r.updated) for r in load_files(conn, seed_dir / "batch_source")}
        assert first == {
            "location": (50, 50, 0),
            "bank_info": (10, 10, 0),
            "customer": (15, 15, 0),
            "account": (15, 15, 0),
        }
        again = {r.table: (r.inserted, r.updated) for r in load_files(conn, seed_dir / "batch_source")}
        assert set(again.values()) == {(0, 0)}
        # Values arrive exactly: the seed's first account and its balance as DECIMAL.
        row = conn.execute("select customer_id, tipe_akun, saldo::text from account where id = 'ACC-00001'").fetchone()
        assert row == ("CUST-0001", "Deposit", "28730661.17")


def test_the_seeds_stream_files_load_unchanged(settings, landing: Path, seed_dir: Path) -> None:
    for f in (seed_dir / "stream_source").iterdir():
        shutil.copy(f, landing)
    result = stream.run(settings)
    assert result.rows == 60 and len(result.loaded) == 3 and not result.rejected
    with wh_connect(settings) as wh:
        rows = wh.fetchall(f"select {', '.join(TX_KEYS)} from bronze.raw_transactions order by id")
    expected = sorted(tuple(str(rec[k]) for k in TX_KEYS) for rec in _records(seed_dir / "stream_source"))
    assert rows == expected
    # The amount text is the file's own (no float round trip): 329575.0 stays "329575.0".
    assert ("TRX-000041", "329575.0") in {(r[0], r[4]) for r in rows}
