"""`python -m tests.faults` (`make faults`): kill each long step at random moments; print the result table.

Options: --trials N (default 105), --budget SECONDS (default 3600), --seed S, --steps "a,b" (of
`harness.KILLABLE`), --full (after an ingest kill re-run the ML steps too), --out FILE (the table),
--keep DIR (workspace kept there, with failing trials' states; default: a temp dir, removed).
Every trial (step, delay, killed, seconds, problems) is also written as JSON beside --out.
The table goes to stdout and to --out; progress goes to stderr. Exit code 1 when a trial failed.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from tests.faults import harness


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=105)
    p.add_argument("--budget", type=float, default=3600.0, help="seconds for the trials (the reference run excluded)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--steps", default=",".join(harness.KILLABLE))
    p.add_argument("--full", action="store_true")
    p.add_argument("--out", type=Path, default=Path("build/faults.md"))
    p.add_argument("--keep", type=Path, default=None)
    args = p.parse_args(argv)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in steps if s not in harness.KILLABLE]
    if unknown:
        p.error(f"unknown step(s) {', '.join(unknown)}; choose from: {', '.join(harness.KILLABLE)}")

    # SIGTERM unwinds like Ctrl-C: the source database is dropped and the temp workspace removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = args.keep or Path(tempfile.mkdtemp(prefix="bankpipe-faults-"))
    started = time.monotonic()
    try:
        with harness.workspace(root) as ws:
            say(f"workspace {root}; clean reference run …")
            ref = harness.prepare(ws)
            if harness.RUN in steps and (problems := harness.check_run_matches(ws, ref)):
                say("`bankpipe run` differs from the steps one by one: " + "; ".join(problems))
                return 1
            say("clean run (s): " + ", ".join(f"{k} {v:.1f}" for k, v in ref.seconds.items()))
            planned = harness.plan_trials(steps, args.trials, ref.seconds, args.seed)

            def report(i: int, t: harness.Trial) -> None:
                verdict = "ok" if not t.problems else "FAILED: " + "; ".join(t.problems)
                how = f"killed at {t.delay:.2f}s" if t.killed else f"finished before {t.delay:.2f}s"
                say(f"[{i + 1}/{len(planned)}] {t.step}: {how}, {t.seconds:.1f}s — {verdict}")
                if t.problems and args.keep:
                    ws.snapshot(root / "failed" / f"{i + 1}-{t.step.replace(' ', '_')}")

            trials = harness.run_trials(ws, ref, planned, budget=args.budget, full=args.full, on_trial=report)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    text = harness.table(trials, ref.seconds)
    footer = (
        f"\n\n{len(trials)} trials in {time.monotonic() - started:.0f} s (reference run included), seed {args.seed};"
        f" reproduce: `make faults` or `python -m tests.faults --trials {args.trials} --seed {args.seed}`\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + footer, encoding="utf-8")
    args.out.with_suffix(".json").write_text(harness.to_json(trials), encoding="utf-8")
    print(text + footer, end="")
    return 1 if any(t.problems for t in trials) else 0


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
