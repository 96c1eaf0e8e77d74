"""A 200 MB landed file loads whole, once, in bounded memory (the CLI in a child process, its peak RSS read)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.corpus.cases import txn

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TARGET_BYTES = 200 << 20
# Peak RSS of the whole `bankpipe ingest stream` process. Python, DuckDB and the imports alone take
# about 150 MB; what must not happen is memory that grows with the file (a 200 MB file read into
# Python objects costs well over 1 GB).
RSS_LIMIT_MB = 900


# `bankpipe ingest stream`, reporting its own peak RSS as it exits (getrusage of the process itself,
# DuckDB's threads included; RUSAGE_CHILDREN would report the largest child this test session ever had).
_MEASURED = """
import atexit, resource, sys
atexit.register(lambda: sys.stderr.write(f"PEAK_RSS_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n"))
from bankpipe.cli import app
sys.argv = ["bankpipe", "ingest", "stream"]
app()
"""


def _write_big_array(path: Path) -> int:
    """A seed-format JSON array (indent=4, as the seed writes) of at least TARGET_BYTES; returns records."""
    import json

    n = 0
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[\n")
        while fh.tell() < TARGET_BYTES:
            block = ",\n".join(json.dumps(txn(f"TRX-9{n + i:08d}"), indent=4) for i in range(10_000))
            fh.write(("" if n == 0 else ",\n") + block)
            n += 10_000
        fh.write("\n]\n")
    return n


def test_a_200_mb_file_loads_in_bounded_memory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    landing = state / "landing" / "transactions"
    landing.mkdir(parents=True)
    big = landing / "transaction_20251224_235959.json"
    records = _write_big_array(big)
    old = big.stat().st_mtime - 600
    os.utime(big, (old, old))
    assert big.stat().st_size >= TARGET_BYTES

    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKPIPE_")} | {"BANKPIPE_STATE_DIR": str(state)}
    proc = subprocess.run([sys.executable, "-c", _MEASURED], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_mb = int(proc.stderr.rsplit("PEAK_RSS_KB=", 1)[1].split()[0]) / 1024

    import duckdb

    with duckdb.connect(str(state / "warehouse.duckdb"), read_only=True) as con:
        loaded = con.execute(
            "select count(*), count(distinct _record ->> 'id') from bronze.raw_transaction_records"
        ).fetchone()
        ledger = con.execute("select status, rows from ops.ingested_files").fetchall()
    assert loaded == (records, records)
    assert ledger == [("loaded", records)]
    print(f"200 MB file: {records} records, peak RSS {peak_mb:.0f} MB")
    assert peak_mb < RSS_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB for a {big.stat().st_size >> 20} MB file"
