"""Transform benchmark: a `bankpipe transform` after +1 % new transactions against a full rebuild.

    python bench/bench_transform.py [--transactions 5000000] [--days 100] [--keep /tmp/bench_transform]
                                    [--reuse] [--repeat 3]

Generates the data (master data into a PostgreSQL database of its own, stream files into a holding
folder), lands all but 2 % of the stream files and builds everything from scratch (the first
build), then runs `transform` again with nothing new (the no-op), lands +1 % of the files, ingests
them and runs `transform` (the incremental run: what the new data reaches; repeated from the same
state, median reported), lands another +1 % and runs `transform --all` (every model, incremental
ones incrementally), and finally rebuilds with `--full-refresh` on the grown data (measured last,
under the same machine load). Every step runs `bankpipe` as a child process, as a user would; the
ratios are incremental / full-refresh wall time within this one run. The slowest dbt nodes of each
run come from dbt's run_results.json.

Needs PostgreSQL at BANKPIPE_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
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

import psycopg

ADMIN_URL = os.environ.get("BANKPIPE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DB = os.environ.get("BENCH_DB", "bench_transform")
BIN = Path(sys.executable).parent


def sh(env: dict[str, str], *args: str) -> float:
    """Run `bankpipe <args>`; return its wall time in seconds (fails loudly with its output)."""
    t0 = time.perf_counter()
    proc = subprocess.run([str(BIN / "bankpipe"), *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"bankpipe {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def slowest(state: Path, n: int = 8) -> list[tuple[str, float]]:
    """The n slowest nodes of the last dbt invocation (from run_results.json)."""
    results = json.loads((state / "dbt" / "target" / "run_results.json").read_text())["results"]
    timed = [
        (
            r["unique_id"].split(".")[-1] if r["unique_id"].startswith("test.") else r["unique_id"].split(".", 2)[-1],
            float(r["execution_time"]),
        )
        for r in results
    ]
    return sorted(timed, key=lambda x: -x[1])[:n]


def dbt_seconds(state: Path) -> float:
    return float(json.loads((state / "dbt" / "target" / "run_results.json").read_text())["elapsed_time"])


def fresh_database(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"drop database if exists {DB} with (force)")
        con.execute(f"create database {DB}")
    return url.rsplit("/", 1)[0] + f"/{DB}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--transactions", type=int, default=5_000_000)
    ap.add_argument("--customers", type=int, default=30_000)
    ap.add_argument("--days", type=int, default=100)
    ap.add_argument("--new-share", type=float, default=0.01, help="share of stream files landed for the incremental")
    ap.add_argument("--keep", type=Path, default=Path("/tmp/bench_transform"), help="work folder (emptied first)")
    ap.add_argument("--reuse", action="store_true", help="reuse the generated and ingested data of the last run there")
    ap.add_argument("--repeat", type=int, default=3, help="how many times the +1 %% run is measured (median reported)")
    args = ap.parse_args()

    work = args.keep
    hold, landing, state = work / "hold", work / "landing" / "transactions", work / "state"
    snapshot = work / "bronze_before.duckdb"  # the warehouse after the first 99 % landed, before any build
    env = {
        **os.environ,
        "BANKPIPE_STATE_DIR": str(state),
        "BANKPIPE_LANDING_DIR": str(work / "landing"),
        # Offline: the FX step falls back to the bundled ECB snapshot at once.
        "BANKPIPE_FX_API_URL": "http://127.0.0.1:9/v1",
        "BANKPIPE_FX_RETRIES": "0",
    }
    if args.reuse and snapshot.is_file():
        # Same data as the last run: restore bronze, forget every build, hold the same files back.
        shutil.rmtree(state)
        shutil.rmtree(work / "landing")
        state.mkdir(parents=True)
        landing.mkdir(parents=True)
        shutil.copy(snapshot, state / "warehouse.duckdb")
        held = sorted(hold.iterdir())
        print(f"reusing the bronze of {work} ({len(held)} stream files held back)", flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
        landing.mkdir(parents=True)
        env["BANKPIPE_SOURCE_URL"] = fresh_database(ADMIN_URL)
        print(f"generating {args.transactions:,} transactions over {args.days} days ...", flush=True)
        gen_s = sh(
            env,
            "generate",
            "--customers", str(args.customers),
            "--transactions", str(args.transactions),
            "--days", str(args.days),
            "--seed", "11",
            "--out", str(work / "gen"),
            "--stream-out", str(hold),
            "--to-postgres",
        )  # fmt: skip
        files = sorted(p for p in hold.iterdir() if p.is_file())
        step_files = max(1, round(len(files) * args.new_share))
        cut = len(files) - 2 * step_files  # two increments of +1 %: one per way of building
        for p in files[:cut]:
            p.rename(landing / p.name)
        held = files[cut:]
        print(f"  {gen_s:.0f} s; {len(files)} stream files, 2 × {step_files} held back for the increments", flush=True)
        for step in (("ingest", "batch", "--full"), ("ingest", "stream"), ("ingest", "fx")):
            sh(env, *step)
        shutil.copy(state / "warehouse.duckdb", snapshot)

    runs: dict[str, dict[str, object]] = {}

    def transform(name: str, *extra: str) -> None:
        results = state / "dbt" / "target" / "run_results.json"
        before = results.stat().st_mtime_ns if results.exists() else 0
        wall = sh(env, "transform", *extra)
        ran = results.exists() and results.stat().st_mtime_ns != before  # no dbt at all when nothing is new
        runs[name] = {
            "wall_s": round(wall, 1),
            "dbt_s": round(dbt_seconds(state), 1) if ran else 0.0,
            "nodes": len(json.loads(results.read_text())["results"]) if ran else 0,
            "slowest": slowest(state) if ran else [],
        }
        if ran:
            shutil.copy(results, work / f"run_results_{name.replace(' ', '_').replace(',', '')}.json")
        print(
            f"{name:<24} wall {wall:6.1f} s   dbt {runs[name]['dbt_s']:6.1f} s   nodes {runs[name]['nodes']}",
            flush=True,
        )

    def land(files: list[Path]) -> float:
        for p in files:
            shutil.copy(p, landing / p.name)
        return sh(env, "ingest", "stream")

    half = len(held) // 2
    transform("first build")
    transform("no-op")
    # The +1 % run is repeated from the same starting state (the machine is shared and noisy): the
    # state folder is restored between repetitions and the median is reported.
    before_increment = work / "state_before_increment"
    shutil.rmtree(before_increment, ignore_errors=True)
    shutil.copytree(state, before_increment)
    increments = []
    for rep in range(args.repeat):
        if rep:
            shutil.rmtree(state)
            shutil.copytree(before_increment, state)
            for p in held[:half]:
                (landing / p.name).unlink()
        new_rows = land(held[:half])
        transform(f"+1 % #{rep + 1}")
        increments.append(runs.pop(f"+1 % #{rep + 1}"))
    shutil.rmtree(before_increment)
    increments.sort(key=lambda r: r["wall_s"])  # type: ignore[arg-type, return-value]
    runs["+1 %"] = increments[len(increments) // 2] | {"walls_s": [r["wall_s"] for r in increments]}
    print(f"{'+1 % (median)':<24} wall {runs['+1 %']['wall_s']:6.1f} s   of {runs['+1 %']['walls_s']}", flush=True)
    land(held[half:])
    transform("+1 %, --all", "--all")
    transform("full refresh", "--full-refresh")

    import duckdb

    con = duckdb.connect(str(state / "warehouse.duckdb"), read_only=True)
    bronze = con.execute("select count(*) from bronze.raw_transaction_records").fetchone()[0]
    gold = con.execute("select count(*) from gold.fact_transaction").fetchone()[0]
    con.close()
    full = runs["full refresh"]["wall_s"]
    ratio = runs["+1 %"]["wall_s"] / full  # type: ignore[operator]
    print(f"\nbronze records {bronze:,}, gold fact rows {gold:,}; ingest of +1 % {new_rows:.1f} s")
    print(f"+1 % / full refresh = {ratio:.3f}; +1 % --all / full refresh = {runs['+1 %, --all']['wall_s'] / full:.3f}")
    for name, run in runs.items():
        print(f"\n{name}: slowest nodes")
        for node, secs in run["slowest"]:  # type: ignore[attr-defined]
            print(f"  {secs:7.2f} s  {node}")
    (work / "result.json").write_text(
        json.dumps(
            {"args": vars(args) | {"keep": str(work)}, "runs": runs, "bronze": bronze, "gold": gold, "ratio": ratio},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
