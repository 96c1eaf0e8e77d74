"""Real-time scoring latency: a stream file landed → its transactions scored by the champions.

    python bench/bench_realtime.py --state /tmp/ml1m [--sizes 100,1000] [--reps 4]

Needs a state dir where the docs/ml.md "Reproduce" block has run (a warehouse with silver/gold and
champions in its MLflow registry). Runs `ingest.stream.follow` with the CLI's defaults (poll 0.25 s,
settle 0.5 s) and the real-time hook in a thread, writes a file of N records under a dot-name, renames
it into the landing folder and times until the hook logs its `real-time …` line. The follower's
settle time is part of what a user waits for, so it is part of the figure. The files add test
transactions (dated the day after the generated period) to that warehouse: use a copy.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from bankpipe.ingest import stream
from bankpipe.ml import score
from bankpipe.settings import Settings
from bankpipe.warehouse import connect


class _Grab(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((time.monotonic(), record.getMessage()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--state", type=Path, required=True)
    ap.add_argument("--sizes", default="100,1000")
    ap.add_argument("--reps", type=int, default=4)
    args = ap.parse_args()

    settings = Settings(state_dir=args.state, mlflow_uri=f"sqlite:///{args.state / 'mlflow.db'}")
    grab = _Grab()
    logging.getLogger().addHandler(grab)
    logging.getLogger().setLevel(logging.INFO)
    with connect(settings, read_only=True) as wh:
        accounts = [r[0] for r in wh.fetchall("select account_id from silver.stg_accounts order by 1")]
        last_day = wh.fetchone("select max(transaction_date) from silver.base_transactions")[0]
    day = (last_day + timedelta(days=1)).isoformat()
    rng = np.random.default_rng(7)
    stop = threading.Event()
    follower = threading.Thread(
        target=stream.follow, args=(settings,), kwargs={"stop": stop, "on_loaded": score.realtime_hook(settings)}
    )
    follower.start()
    time.sleep(1.0)
    results: dict[int, list[tuple[float, float]]] = {}
    seq = int(time.time()) % 100_000
    try:
        for rep in range(args.reps):
            for n in (int(x) for x in args.sizes.split(",")):
                seq += 1
                records = [
                    {
                        "id": f"TRX-RT{seq}-{i:05d}",
                        "date": str(day),
                        "timestamp": f"{10 + rep:02d}:{i * 59 // n:02d}:{i % 60:02d}",
                        "account_id": accounts[int(rng.integers(len(accounts)))],
                        "jumlah_transaksi": f"{rng.integers(10_000, 5_000_000)}.00",
                        "tipe_transaksi": "Transfer",
                        "akun_tujuan": accounts[int(rng.integers(len(accounts)))],
                        "status": "Success",
                        "mata_uang": "IDR",
                        "channel": "mobile",
                        "location_id": "LOC-001",
                    }
                    for i in range(n)
                ]
                name = f"transaction_{str(day).replace('-', '')}_{seq:06d}.json"
                tmp = settings.transactions_landing / f".{name}.tmp"
                tmp.write_text(json.dumps(records))
                mark, landed = len(grab.lines), time.monotonic()
                tmp.rename(settings.transactions_landing / name)
                while time.monotonic() - landed < 60:
                    time.sleep(0.01)
                    hit = [(ts, m) for ts, m in grab.lines[mark:] if m.startswith("real-time ")]
                    if hit:
                        call_s = float(hit[0][1].rsplit("(", 1)[1].rstrip("s)"))
                        results.setdefault(n, []).append((hit[0][0] - landed, call_s))
                        break
                time.sleep(0.5)
    finally:
        stop.set()
        follower.join(timeout=60)
    for n, runs in sorted(results.items()):
        total = [t for t, _ in runs]
        print(
            f"{n} records: landed→scored "
            + ", ".join(f"{t:.2f}" for t in total)
            + f" s (median {np.median(total):.2f} s); scoring call median {np.median([c for _, c in runs]):.2f} s"
        )


if __name__ == "__main__":
    main()
