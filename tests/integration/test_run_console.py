"""`bankpipe run`'s console (issue 17, deliverable 5): a few lines when not on a terminal, the detail in the log file.

Each run is the real CLI in its own process with stdout and stderr captured (pipes, as in CI or
`make demo | tee`), on a small generated dataset in a real PostgreSQL.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_outages import BANKPIPE, cli_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_LINES = 40
# One of dbt's per-node lines as bankpipe.transform logs them: "success model stg_transactions (0.3s)".
NODE_LINE = re.compile(r"\b(success|pass)\s+(model|test)\s+\w+ \(\d+\.\d+s\)")


def bankpipe(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = subprocess.run([str(BANKPIPE), *args], env=env, capture_output=True, text=True, timeout=900)
    return proc.returncode, proc.stdout + proc.stderr


def test_run_prints_a_short_console_and_keeps_the_detail_in_the_log(tmp_path: Path, pg_url: str) -> None:
    state = tmp_path / "state"
    env = cli_env(state, BANKPIPE_SOURCE_URL=pg_url, BANKPIPE_STREAM_SETTLE_S="0")
    gen = ["--customers", "60", "--transactions", "3000", "--days", "20", "--seed", "5"]
    code, out = bankpipe(
        env, "generate", *gen, "--out", str(tmp_path / "gen"), "--stream-out", str(state / "landing" / "transactions"),
        "--to-postgres",
    )  # fmt: skip
    assert code == 0, out[-3000:]
    log_file = state / "logs" / "bankpipe.log"

    code, out = bankpipe(env, "run")
    assert code == 0, out[-3000:]
    lines = out.splitlines()
    assert len(lines) <= MAX_LINES, out
    # every step has its line, and the summary table names them again
    for step in ("ingest batch", "ingest stream", "ingest fx", "transform", "ml train", "ml score", "ml monitor"):
        assert any(line.startswith(f"✓ {step} (") for line in lines), (step, out)
    assert "bankpipe run: done in" in out
    # dbt's per-node lines: in the log file, not on the console
    logged = log_file.read_text(encoding="utf-8")
    assert len(NODE_LINE.findall(logged)) > 50
    assert not NODE_LINE.search(out), out
    # a warning stays visible: the FX API is down (port 9), the run falls back to the snapshot and says so
    assert any(line.startswith("WARNING") and "FX API" in line and "ecb_snapshot" in line for line in lines), out
    # what libraries print on stderr (MLflow's "Created version ...") went to the log file, not the console
    assert "Successfully registered model" not in out and "Created version" not in out

    # -v brings the node lines back: new rates in bronze make the next run's transform build again
    code, out = bankpipe(env, "ingest", "fx", "--start", "2024-01-01", "--end", "2024-01-12")
    assert code == 0, out[-3000:]
    code, out = bankpipe(env, "-v", "run")
    assert code == 0, out[-3000:]
    assert NODE_LINE.search(out), out[-3000:]

    # a failure: one line naming the step and the input, and what is wrong with it
    down = cli_env(state, BANKPIPE_SOURCE_URL="postgresql://bankpipe@127.0.0.1:9/source_bank")
    code, out = bankpipe(down, "run")
    assert code == 1, out[-3000:]
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    assert errors[0].startswith("error: ingest batch failed:") and "127.0.0.1" in errors[0] and "9" in errors[0], out
    assert "Traceback" not in out and len(out.splitlines()) <= 5, out
