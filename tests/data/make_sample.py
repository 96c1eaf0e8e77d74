"""Write the sample files under tests/data/ in the seed's exact formats, with bankpipe's own generator.

    .venv/bin/python -m tests.data.make_sample      # rewrites the committed files (the same bytes each time)

The shape mirrors the seed's own sample (shared/seed-dataset/README.md): batch_source/ with location.txt
and bank_info.txt (pipe-delimited, header), customer.csv and account.json (json.dump indent 4, no final
newline); stream_source/ with three transaction_YYYYMMDD_HHMMSS.json arrays of 20 transactions
(TRX-000001 … TRX-000060) over 2025-12-24 and Christmas Day, the seed's eight fields only; 15 customers
with one account each (CUST-0001…, ACC-00001…). No planted defects, no orphans and no fraud_case.csv, as in
the seed's sample. Unlike it, every location and bank of the generator's reference lists is written, and
statuses follow the generator's drivers instead of a coin flip. The tests read the committed files and
never regenerate them; `check` states what they rely on.

The same generator writes the same bytes; once the generator changes, a rerun changes amounts, balances
and statuses (ids, dates, customers and files stay). Then rerun `check` (tests/data/test_sample.py) and the
tests that name a sample value: test_source (ACC-00001's balance, CUST-0001's row), test_ingest_stream
(TRX-000041's amount text), test_transform (CUST-0001's segment).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

from bankpipe.generate import DefectConfig, GenerateConfig, GenerateSummary, generate

SAMPLE = Path(__file__).resolve().parent
BATCH_FILES = ("location.txt", "bank_info.txt", "customer.csv", "account.json")

CONFIG = GenerateConfig(
    customers=15,
    accounts_per_customer=1,
    transactions=60,
    days=2,
    start_date=date(2025, 12, 24),
    # A seed whose 60 transactions hold all three statuses (most small seeds give only Success/Pending).
    seed=36,
    stream_files=3,
    extensions=(),
    defects=DefectConfig.none(),
)


def check(root: Path) -> None:
    """Raise AssertionError unless the sample has the properties the tests rely on."""
    accounts = json.loads((root / "batch_source" / "account.json").read_bytes())
    assert [a["id"] for a in accounts] == [f"ACC-{i:05d}" for i in range(1, 16)]
    files = sorted((root / "stream_source").glob("transaction_*.json"))
    records = [r for f in files for r in json.loads(f.read_bytes())]
    assert len(files) == 3 and [len(json.loads(f.read_bytes())) for f in files] == [20, 20, 20]
    assert [r["id"] for r in records] == [f"TRX-{i:06d}" for i in range(1, 61)]
    known = {a["id"] for a in accounts}
    assert {r["account_id"] for r in records} | {r["akun_tujuan"] for r in records} <= known, "no orphans"
    assert {r["status"] for r in records} == {"Success", "Pending", "Failed"}
    assert {r["date"] for r in records} == {"2025-12-24", "2025-12-25"}


def make(out: Path = SAMPLE) -> GenerateSummary:
    """Generate into a temp dir and copy the seed-shaped files (not the ground truth) to out/*_source."""
    with tempfile.TemporaryDirectory() as tmp:
        config = CONFIG.with_(out=Path(tmp))
        summary = generate(config)
        for sub in ("batch_source", "stream_source"):
            shutil.rmtree(out / sub, ignore_errors=True)
            (out / sub).mkdir(parents=True)
        for name in BATCH_FILES:
            shutil.copyfile(config.batch_dir / name, out / "batch_source" / name)
        for path in sorted(config.stream_dir.glob("transaction_*.json")):
            shutil.copyfile(path, out / "stream_source" / path.name)
    check(out)
    return summary


if __name__ == "__main__":
    print(make(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE))
