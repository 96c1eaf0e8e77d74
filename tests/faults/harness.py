"""Fault injection: SIGKILL a real `bankpipe` step at a random moment, re-run, compare every layer with a clean run.

Run it:  `make faults`  (= `python -m tests.faults`; options: --trials N --budget SECONDS --seed S
--steps "ingest batch,transform" --full --out FILE --keep DIR). Needs PostgreSQL on 127.0.0.1:5432
(`BANKPIPE_TEST_PG_URL`); never touches the network (the FX API URL points at a closed local port,
so `ingest fx` reads the ECB snapshot shipped in the wheel).

What it does:
1. Generates one small fixed dataset (`bankpipe generate --customers 300 --transactions 5000 --days 60
   --seed 7 --to-postgres`) into a fresh database; the stream files land in the state dir.
2. The clean reference: runs the pipeline's CLI steps one by one (`PIPELINE`), copying the state dir
   (warehouse, landing, quarantine, MLflow registry, dbt target) before each step and taking the
   layer checksums after each, and timing each step. `bankpipe run` from the empty state must give
   the same final checksums as the steps one by one.
3. Each trial restores the state as it stood before the step, starts the step's CLI as a
   subprocess, SIGKILLs its process group after a delay drawn from a seeded RNG over the step's
   measured duration (a step that finished first counts as a trial that was not interrupted),
   checks `bankpipe status` still answers, re-runs the step, then the following steps, and compares
   the layer checksums with the reference at the same point.

"Equal" (`checksums()`): every table and view in bronze, silver and gold has the same row count
and the same order-independent checksum over all columns except `LINEAGE` — columns that by design
name the run that wrote a row (batch ids, load and fetch times, score/alert/metric times) — and,
in the ML tables only, `model_version`: a killed `ml train` may leave a registered version behind,
so the re-run registers the next number; the same data and `random_state` give the same model, so
every score, label, alert and metric must still be equal to the clean run's. The registry itself
(how many versions exist) is not compared.

After a kill of an ingest step or of `transform`, the re-run goes on through `transform` (bronze,
silver and dbt's gold compared), not through the ML steps unless `--full`: those read only silver,
gold and the registry, which are then proven equal to the clean run's, and the ML steps' own kills
are trials of their own (each re-runs every ML step after it and compares the ML tables too).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[2]
BANKPIPE = Path(sys.executable).with_name("bankpipe")

# The small fixed dataset: 60 days is the least the fraud model's time split accepts.
DATASET = ["--customers", "300", "--transactions", "5000", "--days", "60", "--seed", "7"]

# The clean run, one CLI step at a time: exactly what `bankpipe run` does (pipeline.steps()).
PIPELINE: list[tuple[str, list[str]]] = [
    ("ingest batch", ["ingest", "batch"]),
    ("ingest stream", ["ingest", "stream"]),
    ("ingest fx", ["ingest", "fx"]),
    ("transform", ["transform"]),
    ("ml train", ["ml", "train", "--target", "fraud"]),
    ("ml train status", ["ml", "train", "--target", "status"]),
    ("ml score", ["ml", "score"]),  # also refreshes gold.ml_model_metrics, as `ml monitor` in run
]
RUN = "run"
# The steps a trial kills; `run` is the whole pipeline in one process.
KILLABLE = ["ingest batch", "ingest stream", "ingest fx", "transform", "ml train", "ml score", RUN]
LAYERS = ("bronze", "silver", "gold")
# The views over the score history count too: DuckDB lists views among the tables it checksums.
ML_TABLES = {
    "ml_transaction_scores",
    "fraud_alerts",
    "ml_model_metrics",
    "ml_current_scores",
    "ml_served_scores",
    "current_fraud_alerts",
}

# Columns that say which run wrote a row, not what the row says: left out of every checksum.
LINEAGE = frozenset(
    {
        "_batch_id",
        "_loaded_at",
        "batch_id",
        "loaded_at",
        "fetched_at",  # when the FX rates were fetched (bronze and silver keep it)
        "scored_at",
        "alerted_at",
        "landed_at",
        "computed_at",
    }
)
# Only in ML_TABLES: the version number a re-run of a killed `ml train` registers is the next one.
ML_LINEAGE = frozenset({"model_version"})


# --- checksums -------------------------------------------------------------------------------------


def checksums(
    warehouse: Path,
    schemas: Sequence[str] = LAYERS,
    lineage: frozenset[str] = LINEAGE,
    ml_lineage: frozenset[str] = ML_LINEAGE,
) -> dict[str, tuple[int, int]]:
    """`schema.table` → (rows, order-independent checksum of the columns not in `lineage`) for the schemas."""
    if not warehouse.exists():
        return {}
    out: dict[str, tuple[int, int]] = {}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cols: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns"
            " where list_contains(?, table_schema) order by table_schema, table_name, ordinal_position",
            [list(schemas)],
        ).fetchall():
            cols.setdefault((schema, table), []).append(column)
        for (schema, table), names in sorted(cols.items()):
            skip = lineage | (ml_lineage if table in ML_TABLES else frozenset())
            kept = ", ".join(f'"{c}"' for c in names if c not in skip)
            # hash() of the row's values; summed (not XORed) so that a doubled row changes it too.
            rows, digest = con.execute(
                f'select count(*), coalesce(sum(hash({kept})::hugeint), 0) from {schema}."{table}"'
            ).fetchone()
            out[f"{schema}.{table}"] = (int(rows), int(digest))
    finally:
        con.close()
    return out


def diff(expected: dict[str, tuple[int, int]], got: dict[str, tuple[int, int]]) -> list[str]:
    """One line per table that differs: missing, extra, other row count, or same count and other content."""
    lines = []
    for name in sorted(expected.keys() | got.keys()):
        e, g = expected.get(name), got.get(name)
        if e == g:
            continue
        if e is None or g is None:
            lines.append(f"{name}: {'missing' if g is None else 'not in the clean run'}")
        elif e[0] != g[0]:
            lines.append(f"{name}: {g[0]} rows, clean run {e[0]}")
        else:
            lines.append(f"{name}: same {g[0]} rows, other content")
    return lines


# --- running the CLI -------------------------------------------------------------------------------


@dataclass
class Workspace:
    """One state dir that every run uses (MLflow stores absolute artifact paths), and the env to run in."""

    root: Path
    source_url: str

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def warehouse(self) -> Path:
        return self.state / "warehouse.duckdb"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BANKPIPE_", "MLFLOW_"))}
        env.update(
            BANKPIPE_STATE_DIR=str(self.state),
            BANKPIPE_SOURCE_URL=self.source_url,
            # Port 9 (discard) is closed: the FX client fails at once and reads the ECB snapshot.
            BANKPIPE_FX_API_URL="http://127.0.0.1:9/v1",
            BANKPIPE_FX_RETRIES="0",
            BANKPIPE_FX_TIMEOUT_S="1",
            BANKPIPE_LOG_LEVEL="WARNING",
            # One pseudonym key for every run here: a state dir restored from before the first run has
            # no generated <state>/pii.key, and a new key would change every customer pseudonym in gold.
            BANKPIPE_PII_KEY="5d2f9a7c1e4b8036a9d1c7e2f0b4a8d6",
            COLUMNS="200",
        )
        return env

    def command(self, step: str) -> list[str]:
        args = [RUN] if step == RUN else dict(PIPELINE)[step]
        return [str(BANKPIPE), *args]

    def run(self, step: str, timeout: float = 900) -> float:
        """Run one step to the end; raise StepFailed with its output when it fails. Returns seconds."""
        started = time.monotonic()
        # cwd = the workspace: a `.env` in the caller's directory must not reach these runs.
        proc = subprocess.run(
            self.command(step), cwd=self.root, env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            raise StepFailed(step, proc.returncode, (proc.stdout + proc.stderr).strip())
        return time.monotonic() - started

    def kill_after(self, step: str, delay: float) -> bool:
        """Start a step, SIGKILL its process group after `delay` seconds; False when it finished first."""
        proc = subprocess.Popen(
            self.command(step),
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the kill reaches any child too
        )
        try:
            proc.wait(timeout=delay)
            return False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True

    def status_answers(self) -> str | None:
        """`bankpipe status --json` after a kill: None when it answers, else its output."""
        proc = subprocess.run(
            [str(BANKPIPE), "status", "--json"], cwd=self.root, env=self.env(), capture_output=True, text=True
        )
        # Exit 1 is a one-line error (e.g. "no warehouse yet" when the kill came first); 2 is a bug.
        if proc.returncode not in (0, 1):
            return (proc.stdout + proc.stderr).strip()
        return None

    def snapshot(self, to: Path) -> None:
        if to.exists():
            shutil.rmtree(to)
        shutil.copytree(self.state, to, symlinks=True)  # copy2: mtimes stay, the files stay "settled"

    def restore(self, frm: Path) -> None:
        if self.state.exists():
            shutil.rmtree(self.state)
        shutil.copytree(frm, self.state, symlinks=True)


class StepFailed(Exception):
    def __init__(self, step: str, code: int, output: str) -> None:
        last = output.splitlines()[-1] if output else ""
        super().__init__(f"`bankpipe {step}` exited {code}: {last}")
        self.output = output


# --- reference and trials ----------------------------------------------------------------------------


@dataclass
class Reference:
    """The clean run: snapshots before each pipeline step, checksums after each, step durations."""

    snapshots: list[Path]  # snapshots[i] = state before PIPELINE[i]
    after: list[dict[str, tuple[int, int]]]  # after[i] = checksums after PIPELINE[i]
    seconds: dict[str, float]
    final: dict[str, tuple[int, int]] = field(default_factory=dict)


def generate(ws: Workspace, dataset: Sequence[str] = DATASET) -> subprocess.CompletedProcess[str]:
    """`bankpipe generate` of `dataset` into the workspace's source database and landing folder."""
    return subprocess.run(
        [
            str(BANKPIPE),
            "generate",
            *dataset,
            "--to-postgres",
            "--out",
            str(ws.root / "generated"),
            "--stream-out",
            str(ws.state / "landing" / "transactions"),
        ],
        cwd=ws.root,
        env=ws.env(),
        capture_output=True,
        text=True,
    )


def prepare(ws: Workspace, steps: Sequence[str] = tuple(s for s, _ in PIPELINE)) -> Reference:
    """Generate the dataset into the source and the landing folder, then the clean reference run."""
    gen = generate(ws)
    if gen.returncode != 0:
        raise StepFailed("generate", gen.returncode, gen.stdout + gen.stderr)
    ref = Reference(snapshots=[], after=[], seconds={})
    for i, step in enumerate(steps):
        snap = ws.root / "snapshots" / f"{i}-{step.replace(' ', '_')}"
        ws.snapshot(snap)
        ref.snapshots.append(snap)
        ref.seconds[step] = ws.run(step)
        ref.after.append(checksums(ws.warehouse))
    ref.final = ref.after[-1]
    return ref


def check_run_matches(ws: Workspace, ref: Reference) -> list[str]:
    """`bankpipe run` from the empty state gives the steps' final checksums; records its duration."""
    ws.restore(ref.snapshots[0])
    ref.seconds[RUN] = ws.run(RUN)
    return diff(ref.final, checksums(ws.warehouse))


@dataclass
class Trial:
    step: str
    delay: float
    killed: bool
    seconds: float
    problems: list[str]


def trial(ws: Workspace, ref: Reference, step: str, delay: float, *, full: bool = False) -> Trial:
    """Kill `step` after `delay` s, re-run it and the steps after it, compare with the clean run."""
    names = [s for s, _ in PIPELINE][: len(ref.snapshots)]
    started = time.monotonic()
    if step == RUN:
        start, rest = 0, [RUN]
        expected = ref.final
    else:
        start = names.index(step)
        last = len(names) - 1
        if not full and not step.startswith("ml") and "transform" in names:
            last = names.index("transform")
        rest = names[start : last + 1]
        expected = ref.after[last]
    ws.restore(ref.snapshots[start])
    killed = ws.kill_after(step, delay)
    problems = []
    if killed and (said := ws.status_answers()):
        problems.append(f"`bankpipe status` fails after the kill: {said.splitlines()[-1]}")
    try:
        for name in rest:
            ws.run(name)
    except StepFailed as exc:
        problems.append(f"re-run failed: {exc}")
    else:
        problems += diff(expected, checksums(ws.warehouse))
    return Trial(step, delay, killed, time.monotonic() - started, problems)


def plan_trials(steps: Sequence[str], n: int, seconds: dict[str, float], seed: int) -> list[tuple[str, float]]:
    """`n` (step, delay) pairs, round-robin over the steps; each delay uniform over the step's clean duration."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        step = steps[i % len(steps)]
        out.append((step, round(rng.uniform(0.0, seconds[step]), 3)))
    return out


# --- the report -------------------------------------------------------------------------------------

# Failures this harness found (in any run) that the code now fixes, per step, for the table's `fixed` column:
# - `run` killed during MLflow's first schema migrations left a half-made mlflow.db that every later
#   run failed on (ml/registry.py `_create_sqlite_store`);
# - `ingest batch` killed right after DuckDB created the warehouse file, before its schemas: `bankpipe
#   status` failed with an internal CatalogException (ops.status: one-line error).
# Both are checked in tests/faults/test_faults.py.
FIXED: dict[str, int] = {RUN: 1, "ingest batch": 1}


def table(trials: Sequence[Trial], seconds: dict[str, float]) -> str:
    """The markdown table for docs/reliability.md.

    Per step: trials, kills that landed before the step ended, failing trials in this run, failures
    found by any run and fixed in the code since (`FIXED`), and the mean wall time of a trial.
    """
    lines = [
        "| step | clean run (s) | trials | killed mid-step | failures | fixed | s per trial |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for step in KILLABLE:
        mine = [t for t in trials if t.step == step]
        if not mine:
            continue
        lines.append(
            f"| `bankpipe {step}` | {seconds.get(step, 0):.1f} | {len(mine)} | {sum(t.killed for t in mine)} |"
            f" {sum(bool(t.problems) for t in mine)} | {FIXED.get(step, 0)} |"
            f" {sum(t.seconds for t in mine) / len(mine):.1f} |"
        )
    total = sum(t.seconds for t in trials)
    lines.append(
        f"| **all** | | {len(trials)} | {sum(t.killed for t in trials)} | {sum(bool(t.problems) for t in trials)} |"
        f" {sum(FIXED.values())} | {total / max(len(trials), 1):.1f} |"
    )
    return "\n".join(lines)


@contextmanager
def workspace(root: Path) -> Iterator[Workspace]:
    """A fresh source database and an empty workspace under `root` (the database is dropped afterwards)."""
    from tests.conftest import fresh_database

    root.mkdir(parents=True, exist_ok=True)
    with fresh_database() as url:
        yield Workspace(root, url)


def run_trials(
    ws: Workspace,
    ref: Reference,
    planned: Sequence[tuple[str, float]],
    *,
    budget: float,
    full: bool = False,
    on_trial: Callable[[int, Trial], None] | None = None,
) -> list[Trial]:
    """Run planned trials until done or the budget (seconds) is spent."""
    deadline = time.monotonic() + budget
    done: list[Trial] = []
    for i, (step, delay) in enumerate(planned):
        if time.monotonic() > deadline:
            break
        t = trial(ws, ref, step, delay, full=full)
        done.append(t)
        if on_trial:
            on_trial(i, t)
    return done


def to_json(trials: Sequence[Trial]) -> str:
    return json.dumps([t.__dict__ for t in trials], indent=1)
