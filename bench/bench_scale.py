"""End to end at a scale: `bankpipe generate --to-postgres`, then `bankpipe run`, each step's wall time and peak RSS.

    python bench/bench_scale.py [--scale small|1m|10m] [--keep DIR] [--out build/bench_scale_SCALE.md]
    make bench-scale SCALE=1m

What a new user does (issue 17): a fresh state dir on the embedded defaults (embedded PostgreSQL, DuckDB
file, MLflow on SQLite), `bankpipe generate` of the scale's dataset into the source database and the
landing folder, then one `bankpipe run` from cold. Both run as child processes, as a user would.

Times per step come from the run's own log (`step X done in Ns`, written by bankpipe.pipeline). Memory
is sampled every 0.2 s: the RSS summed over the `bankpipe` process and its descendants, attributed to
the step the log says is running (the embedded PostgreSQL daemonises, so its server is not counted).
The table goes to stdout and to `--out`, headed by the machine, the date and the load average.

The environment passes through (BANKPIPE_FX_API_URL etc.), but BANKPIPE_STATE_DIR, BANKPIPE_SOURCE_URL,
BANKPIPE_LANDING_DIR and BANKPIPE_WAREHOUSE_PATH are replaced: the run is on its own fresh state.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
# The datasets (1m and 10m exactly as issue 17 gives them); small fits CI (< 3 min).
SCALES: dict[str, list[str]] = {
    "small": ["--customers", "2000", "--transactions", "100000", "--days", "90"],
    "1m": ["--customers", "100000", "--transactions", "1000000", "--days", "60"],
    "10m": ["--customers", "1000000", "--transactions", "10000000", "--days", "90"],
}
SAMPLE_S = 0.2
STEP_START = re.compile(r" INFO bankpipe\.pipeline step: (?P<step>.+)$")
STEP_DONE = re.compile(r" INFO bankpipe\.pipeline step (?P<step>.+?) done in (?P<s>[0-9.]+)s: (?P<summary>.*)$")


@dataclass
class Sampled:
    """One child process run: its wall time, its tree's peak RSS, and the peak per step of the run's log."""

    seconds: float = 0.0
    peak: int = 0
    by_step: dict[str, int] = field(default_factory=dict)
    output: str = ""
    code: int = 0


def tree_rss(proc: psutil.Process) -> int:
    """RSS of a process and its descendants, in bytes (processes that end meanwhile count as 0)."""
    total = 0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in members:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def current_step(log: Path, pos: int, step: str) -> tuple[int, str]:
    """Read the log from `pos`: the step now running (the last `step: X` line), and the new position."""
    try:
        with log.open("rb") as f:
            f.seek(pos)
            chunk = f.read()
    except FileNotFoundError:
        return pos, step
    end = chunk.rfind(b"\n") + 1  # whole lines only: a line being written is read next time
    for line in chunk[:end].decode("utf-8", "replace").splitlines():
        if found := STEP_START.search(line):
            step = found["step"]
    return pos + end, step


def run_sampled(env: dict[str, str], args: list[str], log: Path | None, label: str) -> Sampled:
    """Run `bankpipe <args>`, sampling the RSS of its process tree until it exits."""
    out = Sampled()
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as sink:
        child = subprocess.Popen([str(BIN / "bankpipe"), *args], env=env, stdout=sink, stderr=subprocess.STDOUT)
        proc = psutil.Process(child.pid)
        pos, step = (log.stat().st_size if log and log.exists() else 0), label
        done = threading.Event()

        def sample() -> None:
            nonlocal pos, step
            while not done.is_set():
                if log is not None:
                    pos, step = current_step(log, pos, step)
                rss = tree_rss(proc)
                out.peak = max(out.peak, rss)
                out.by_step[step] = max(out.by_step.get(step, 0), rss)
                done.wait(SAMPLE_S)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out.code = child.wait()
        done.set()
        sampler.join()
        out.seconds = time.perf_counter() - started
        sink.seek(0)
        out.output = sink.read()
    return out


def step_times(log: Path) -> list[tuple[str, float, str]]:
    """(step, seconds, summary) of every finished step of the run, from its log."""
    found = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if m := STEP_DONE.search(line):
            found.append((m["step"], float(m["s"]), m["summary"]))
    return found


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = psutil.virtual_memory().total / 2**30
    return f"{psutil.cpu_count()} cores ({cpu}), {ram:.0f} GB RAM, Python {platform.python_version()}"


def gb(n: int) -> str:
    return f"{n / 2**30:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default=os.environ.get("SCALE", "small"))
    ap.add_argument("--keep", type=Path, help="State dir to use and keep (default: a temporary one, removed)")
    ap.add_argument("--out", type=Path, help="Markdown file for the table (default build/bench_scale_SCALE.md)")
    args = ap.parse_args()

    state = args.keep or Path(tempfile.mkdtemp(prefix=f"bench_scale_{args.scale}_"))
    if args.keep and state.exists() and any(state.iterdir()):
        sys.exit(f"{state} is not empty: the benchmark starts from a fresh state dir")
    out_file = args.out or ROOT / "build" / f"bench_scale_{args.scale}.md"
    drop = ("BANKPIPE_STATE_DIR", "BANKPIPE_SOURCE_URL", "BANKPIPE_LANDING_DIR", "BANKPIPE_WAREHOUSE_PATH")
    env = {k: v for k, v in os.environ.items() if k not in drop} | {"BANKPIPE_STATE_DIR": str(state)}
    log = state / "logs" / "bankpipe.log"
    load_before = os.getloadavg()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"bench-scale {args.scale}: state in {state}", file=sys.stderr, flush=True)

    try:
        generate = ["generate", *SCALES[args.scale], "--out", str(state / "generated"), "--to-postgres"]
        generate += ["--stream-out", str(state / "landing" / "transactions")]
        gen = run_sampled(env, generate, None, "generate")
        if gen.code != 0:
            sys.exit(f"bankpipe generate failed ({gen.code}):\n{gen.output[-3000:]}")
        print(f"generate + load source: {gen.seconds:.0f} s", file=sys.stderr, flush=True)
        run = run_sampled(env, ["run"], log, "start")
        if run.code != 0:
            sys.exit(f"bankpipe run failed ({run.code}):\n{run.output[-3000:]}")
        lines = len(run.output.splitlines())
        load_after = os.getloadavg()

        rows = [
            f"| generate + load source (`{' '.join(SCALES[args.scale])} --to-postgres`) | {gen.seconds:.1f} |"
            f" {gb(gen.peak)} | |"
        ]
        for step, seconds, summary in step_times(log):
            rows.append(f"| {step} | {seconds:.1f} | {gb(run.by_step.get(step, 0))} | {summary.replace('|', '/')} |")
        whole = f"| **whole `bankpipe run`** | **{run.seconds:.1f}** | **{gb(run.peak)}** | {lines} console lines |"
        rows.append(whole)
        table = "\n".join(
            [
                f"Scale `{args.scale}`, {when}; {machine()}; load average {load_before[0]:.1f} before,"
                f" {load_after[0]:.1f} after (1 min).",
                "",
                "| step | wall (s) | peak RSS (GB) | what it did |",
                "|---|---:|---:|---|",
                *rows,
            ]
        )
        print(table)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(table + "\n", encoding="utf-8")
        print(f"table written to {out_file}", file=sys.stderr)
    finally:
        subprocess.run([str(BIN / "bankpipe"), "source", "down"], env=env, capture_output=True)
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
