"""The state dir is its owner's alone: created 0700 (files 0600), and a looser one found at start is tightened.

The CLI runs in a subprocess started with umask 022, as from a default shell: what it writes must be private
because bankpipe makes it so, not because the test's umask happened to be strict.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bankpipe.settings import secure_state_dir

pytestmark = pytest.mark.integration

AS_ROOT = os.geteuid() == 0
# As root the embedded PostgreSQL runs as its own user and must pass through the state dir: search bit only.
STATE_MODE = 0o711 if AS_ROOT else 0o700


def bankpipe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in its own process with a permissive umask (022)."""
    return subprocess.run(
        [sys.executable, "-m", "bankpipe", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        umask=0o022,
    )


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for a CLI subprocess: state dir and landing folder under tmp_path, no source database needed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BANKPIPE_", "SNOWFLAKE_"))}
    env |= {
        "BANKPIPE_STATE_DIR": str(tmp_path / "state"),
        "BANKPIPE_LANDING_DIR": str(tmp_path / "landing"),
        "BANKPIPE_STREAM_SETTLE_S": "0",
        "BANKPIPE_STREAM_SETTLE_WAIT_S": "0",
        "COLUMNS": "400",  # rich wraps at the terminal width: one message, one line
    }
    return env


def modes_under(root: Path) -> dict[str, int]:
    """Permission bits of every file and folder under `root` (relative path → mode)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return out


def test_cli_writes_the_state_dir_for_its_owner_only(cli_env, tmp_path, sample_dir):
    landing = tmp_path / "landing" / "transactions"
    landing.mkdir(parents=True)
    good = sample_dir / "stream_source" / "transaction_20251224_180744.json"
    shutil.copyfile(good, landing / good.name)
    # A bad file too, so the quarantine is made and used.
    (landing / "transaction_broken.json").write_text("this is not JSON\n")
    long_ago = time.time() - 3600
    for f in landing.iterdir():
        os.utime(f, (long_ago, long_ago))

    ingest = bankpipe(cli_env, "ingest", "stream")
    assert ingest.returncode == 0, ingest.stderr
    status = bankpipe(cli_env, "status")
    assert status.returncode == 0, status.stderr

    state = tmp_path / "state"
    # Made under the CLI's umask: 0700 (as root the wheel may later add the search bit back, then 0711).
    assert stat.S_IMODE(state.stat().st_mode) in {0o700, STATE_MODE}
    modes = modes_under(state)
    # The run wrote what it should have: the warehouse, its log, the quarantined file.
    assert "warehouse.duckdb" in modes
    assert "logs/bankpipe.log" in modes
    quarantined = [p for p in modes if p.startswith("quarantine/") and p.endswith("transaction_broken.json")]
    assert quarantined, sorted(modes)
    # A quarantined file is moved, not written: it keeps the mode its producer gave it, and sits behind
    # folders only the owner can enter.
    moved = set(quarantined)
    loose = {p: f"{m:04o}" for p, m in modes.items() if m & 0o077 and p not in moved}
    assert loose == {}, f"readable by group/other under the state dir: {loose}"
    for p in moved:
        for parent in Path(p).parents:
            if str(parent) != ".":
                assert modes[str(parent)] & 0o077 == 0, parent


def test_a_looser_state_dir_is_tightened_on_start_and_said_once(cli_env, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    (state / "old.txt").write_text("written before the rule")

    first = bankpipe(cli_env, "status")  # fails (no warehouse yet) but only after the start
    assert first.returncode == 1
    assert stat.S_IMODE(state.stat().st_mode) == STATE_MODE
    assert f"state dir {state} was mode 0777" in first.stderr
    assert "was mode 0777" in (state / "logs" / "bankpipe.log").read_text()
    # Already private: nothing more to say.
    second = bankpipe(cli_env, "status")
    assert "was mode" not in second.stderr


def test_secure_state_dir_creates_private_and_tightens(tmp_path):
    fresh = tmp_path / "a" / "state"
    assert secure_state_dir(fresh) is None
    assert stat.S_IMODE(fresh.stat().st_mode) & 0o077 & ~STATE_MODE == 0

    old = tmp_path / "old"
    old.mkdir()
    old.chmod(0o755)
    message = secure_state_dir(old)
    assert stat.S_IMODE(old.stat().st_mode) == STATE_MODE
    if AS_ROOT:
        # The embedded PostgreSQL wheel re-opens g+rx,o+rx on each start as root: taken back without a word.
        assert message is None
    else:
        assert message is not None and "was mode 0755" in message
    old.chmod(0o775)  # group write is never the wheel's doing
    message = secure_state_dir(old)
    assert message is not None and "was mode 0775" in message
    assert stat.S_IMODE(old.stat().st_mode) == STATE_MODE


def test_snowflake_json_spools_live_in_the_state_dir(tmp_path, monkeypatch):
    from bankpipe.settings import Settings
    from bankpipe.warehouse.snowflake import SnowflakeConfig

    monkeypatch.setenv("SNOWFLAKE_ACCOUNT", "acct")
    monkeypatch.setenv("SNOWFLAKE_USER", "loader")
    settings = Settings(state_dir=tmp_path / "state")
    # Stream records are re-written there before PUT: the state dir (0700), never the shared /tmp.
    assert SnowflakeConfig.from_settings(settings).spool_dir == settings.state
