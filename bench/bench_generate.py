"""Generator benchmark: `bankpipe.generate.generate` at several sizes, wall time and peak RSS per run.

    python bench/bench_generate.py [--sizes 100000,1000000,10000000] [--out bench/out/generate] [--keep]

Every size runs in its own child process (peak RSS is the child's own, from getrusage); customers
scale with the transactions (1 per 100), 30 days, default fraud/defect/extension settings. The
machine is shared: `load` is the 1-minute load average when the run started (2 = both cores busy).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from bankpipe.generate import GenerateConfig, generate
n, out = int(sys.argv[1]), Path(sys.argv[2])
cpu0 = time.process_time()
summary = generate(GenerateConfig(customers=max(n // 100, 15), transactions=n, days=30, seed=42, out=out))
usage = resource.getrusage(resource.RUSAGE_SELF)
size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
print(json.dumps({
    "transactions": n, "customers": summary.customers, "accounts": summary.accounts,
    "stream_files": summary.stream_files, "seconds": summary.seconds, "cpu_seconds": time.process_time() - cpu0,
    "peak_rss_mb": usage.ru_maxrss / 1024, "output_mb": size / 1e6,
}))
"""


def run(n: int, out: Path) -> dict[str, float]:
    """One generate() run in a fresh child process; its own measurements plus the parent's wall clock."""
    shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(n), str(out)], check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    result["load"] = load
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000,10000000", help="comma-separated transaction counts")
    parser.add_argument("--out", type=Path, default=Path("bench/out/generate"))
    parser.add_argument("--keep", action="store_true", help="keep the generated data of the last size")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    columns = ["transactions", "customers", "stream files", "generate() wall", "process wall", "CPU", "rows/s"]
    columns += ["peak RSS", "output", "load"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for n in sizes:
        r = run(n, args.out)
        print(
            f"| {n:,} | {r['customers']:,} | {r['stream_files']:,} | {r['seconds']:.1f} s | "
            f"{r['process_seconds']:.1f} s | {r['cpu_seconds']:.1f} s | {n / r['seconds'] / 1e6:.2f}M | "
            f"{r['peak_rss_mb']:,.0f} MB | {r['output_mb'] / 1e3:.2f} GB | {r['load']:.1f} |",
            flush=True,
        )
    if not args.keep:
        shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
