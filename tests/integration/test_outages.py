"""Outages and contention (issue 13, deliverable 6), each injected for real and checked the same way.

Every test asserts the three things an operator relies on: the failure shows as one line naming the
source (or is retried away), nothing partial is left behind (counts before == after), and the next
run completes. The FX API's faults (500, timeouts, garbage, a rate of 0) are in test_fx_http.py,
against the same kind of real HTTP server; the dashboard's view of a busy warehouse is in
tests/dashboard/test_busy.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from bankpipe import pipeline
from bankpipe.errors import BankpipeError
from bankpipe.settings import Settings
from bankpipe.warehouse import connect
from bankpipe.warehouse.duckdb import WarehouseFullError
from tests.conftest import WarehouseHolder
from tests.integration.test_fx_http import GARBAGE, FakeApi, _Handler

pytestmark = pytest.mark.integration

BANKPIPE = Path(sys.executable).with_name("bankpipe")
# Nothing listens on port 9: the FX step falls back to the ECB snapshot at once, offline.
OFFLINE_FX = {"BANKPIPE_FX_API_URL": "http://127.0.0.1:9", "BANKPIPE_FX_RETRIES": "0", "BANKPIPE_FX_TIMEOUT_S": "1"}


def cli_env(state: Path, **extra: str) -> dict[str, str]:
    """The environment of a `bankpipe` subprocess on `state` (nothing inherited that points elsewhere)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKPIPE_")}
    return {**env, "BANKPIPE_STATE_DIR": str(state), **OFFLINE_FX, **extra}


def bankpipe(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BANKPIPE), *args], env=env, capture_output=True, text=True, timeout=timeout)


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The `error:` lines the CLI printed (rich may wrap a long line: rejoined first)."""
    text = proc.stderr.replace("\n", " ") if "error:" in proc.stderr else ""
    return [f"error:{part}".strip() for part in text.split("error:")[1:]]


def count(settings: Settings, sql: str) -> int:
    with connect(settings, read_only=True) as wh:
        row = wh.fetchone(sql)
    return int(row[0]) if row else 0


# --- the FX API, through the CLI (the in-process cases are in test_fx_http.py) ------------------------


@pytest.fixture
def fx_api() -> Iterator[FakeApi]:
    """test_fx_http's fake Frankfurter on 127.0.0.1, for `bankpipe ingest fx` subprocesses."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    fake = FakeApi()
    server.api = fake  # type: ignore[attr-defined]
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("fault", ["HTTP 500", "rate 0", "truncated"])
def test_fx_api_faults_through_the_cli(tmp_path: Path, fx_api: FakeApi, fault: str) -> None:
    state = tmp_path / "state"
    env = cli_env(state, BANKPIPE_FX_API_URL=fx_api.url, BANKPIPE_FX_RETRIES="2")
    settings = Settings(state_dir=state)
    fx_api.always = {"HTTP 500": 500, "rate 0": GARBAGE["rate 0"][0], "truncated": GARBAGE["truncated"][0]}[fault]
    # 2024-01-03 is inside the window, so the "rate 0" answer carries its bad rate.
    proc = bankpipe(env, "ingest", "fx", "--start", "2024-01-01", "--end", "2024-01-12")
    assert proc.returncode == 0, proc.stderr  # documented: the ECB snapshot stands in, and says so
    warning = [ln for ln in proc.stderr.replace("\n ", " ").splitlines() if ln.startswith("WARNING")]
    text = " ".join(proc.stderr.split())
    assert len(warning) == 1 and f"{fx_api.url}/2024-01-01..2024-01-12" in text.replace(" ", "")
    assert "ecb_snapshot" in text and "error" not in text.lower()
    assert len(fx_api.requests) == (3 if fault == "HTTP 500" else 1)  # only the 5xx is retried
    sources = count(
        settings, "select count(distinct source) from bronze.raw_exchange_rates where source <> 'ecb_snapshot'"
    )
    assert sources == 0 and count(settings, "select count(*) from bronze.raw_exchange_rates where not (rate > 0)") == 0
    with connect(settings, read_only=True) as wh:
        (details,) = wh.fetchone("select details from ops.run_log where step = 'ingest.fx'") or ("{}",)
    assert json.loads(details)["fallback"] is True  # the run log says the API was down
    # The API is healthy again: the next run completes from it.
    fx_api.always = None
    again = bankpipe(env, "ingest", "fx", "--start", "2024-01-01", "--end", "2024-01-12")
    assert again.returncode == 0, again.stderr
    assert count(settings, "select count(*) from bronze.raw_exchange_rates where source = 'frankfurter'") == 80


# --- the warehouse locked by another writer ----------------------------------------------------------


def test_a_locked_warehouse_waits_then_fails_in_one_line_and_writes_nothing(
    tmp_path: Path, hold_warehouse: Callable[[Path], WarehouseHolder]
) -> None:
    state = tmp_path / "state"
    env = cli_env(state, BANKPIPE_WAREHOUSE_LOCK_WAIT_S="2")
    settings = Settings(state_dir=state)
    connect(settings).close()  # the warehouse exists, with its schemas, and is empty
    before = count(settings, "select count(*) from bronze.raw_exchange_rates")
    runs_before = count(settings, "select count(*) from ops.run_log")
    h = hold_warehouse(settings.warehouse_file)

    started = time.monotonic()
    proc = bankpipe(env, "ingest", "fx")
    waited = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    (line,) = error_lines(proc)
    assert str(settings.warehouse_file) in line
    assert f"locked by another process, PID {h.proc.pid}" in line
    assert "BANKPIPE_WAREHOUSE_LOCK_WAIT_S" in line
    assert "Traceback" not in proc.stderr
    assert 2 <= waited < 60  # it waited for the setting's 2 s, not the default 120
    # The wait said what it was waiting for while it waited (the console shows INFO).
    assert f"waiting for the warehouse lock held by PID {h.proc.pid}" in proc.stderr.replace("\n", " ")

    h.release()
    assert count(settings, "select count(*) from bronze.raw_exchange_rates") == before
    assert count(settings, "select count(*) from ops.run_log") == runs_before
    # The lock is gone: the next run completes.
    again = bankpipe(env, "ingest", "fx")
    assert again.returncode == 0, again.stderr
    assert count(settings, "select count(*) from bronze.raw_exchange_rates") > before


@pytest.mark.slow
def test_bankpipe_run_on_a_locked_warehouse_names_the_step_and_the_holder(
    tmp_path: Path, pg_url: str, hold_warehouse: Callable[[Path], WarehouseHolder]
) -> None:
    state = tmp_path / "state"
    env = cli_env(state, BANKPIPE_SOURCE_URL=pg_url, BANKPIPE_WAREHOUSE_LOCK_WAIT_S="1")
    gen = bankpipe(
        env, "generate", "--customers", "50", "--transactions", "500", "--days", "5", "--seed", "3",
        "--out", str(tmp_path / "generated"), "--stream-out", str(state / "landing" / "transactions"), "--to-postgres",
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    settings = Settings(state_dir=state)
    connect(settings).close()
    h = hold_warehouse(settings.warehouse_file)
    proc = bankpipe(env, "run")
    assert proc.returncode == 1, proc.stderr[-3000:]
    (line,) = error_lines(proc)
    assert line.startswith("error: ingest batch failed: warehouse ") and f"PID {h.proc.pid}" in line
    h.release()
    assert count(settings, "select count(*) from bronze.raw_customers") == 0
    assert count(settings, "select count(*) from ops.run_log") == 0
    again = bankpipe(env, "run", timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert count(settings, "select count(*) from bronze.raw_customers") == 50


def test_a_lock_released_within_the_wait_is_waited_for(
    tmp_path: Path, hold_warehouse: Callable[[Path], WarehouseHolder]
) -> None:
    settings = Settings(state_dir=tmp_path / "state", warehouse_lock_wait_s=30)
    connect(settings).close()
    h = hold_warehouse(settings.warehouse_file)
    # Released while the step waits: it goes on as if the file had been free (a retry, not an error).
    subprocess.Popen([sys.executable, "-c", f"import os, time; time.sleep(1); os.kill({h.proc.pid}, 15)"])
    started = time.monotonic()
    with connect(settings) as wh:
        wh.execute("insert into ops.run_log (run_id, step, started_at, status) values ('r', 's', now(), 'success')")
    assert 0.5 < time.monotonic() - started < 30


# --- two `bankpipe run` at once ------------------------------------------------------------------------


def test_a_second_run_fails_at_once_naming_the_first(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    code = (
        "import sys\n"
        "from bankpipe.pipeline import single_run\n"
        "from bankpipe.settings import Settings\n"
        f"with single_run(Settings(state_dir={str(settings.state)!r})):\n"
        "    print('running', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    first = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "running"
        started = time.monotonic()
        with pytest.raises(BankpipeError) as caught:
            pipeline.run(settings)
        assert time.monotonic() - started < 2  # at once, not after a wait
        message = str(caught.value)
        assert "another `bankpipe run` is running" in message and f"PID {first.pid}" in message
        assert str(settings.state) in message and "\n" not in message
        assert not settings.warehouse_file.exists()  # the second run touched nothing
    finally:
        assert first.stdin is not None
        first.stdin.close()
        first.wait(timeout=30)
    # The first one is gone (a killed run's flock goes with it): the lock is free again.
    with pipeline.single_run(settings):
        pass


@pytest.mark.slow
def test_two_runs_at_once_never_load_anything_twice(tmp_path: Path, pg_url: str) -> None:
    state = tmp_path / "state"
    env = cli_env(state, BANKPIPE_SOURCE_URL=pg_url)
    gen = bankpipe(
        env, "generate", "--customers", "200", "--transactions", "3000", "--days", "20", "--seed", "5",
        "--out", str(tmp_path / "generated"), "--stream-out", str(state / "landing" / "transactions"), "--to-postgres",
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr

    runs = [
        subprocess.Popen([str(BANKPIPE), "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [(p, *p.communicate(timeout=900)) for p in runs]
    codes = sorted(p.returncode for p, _, _ in outs)
    assert codes == [0, 1], [error_lines(subprocess.CompletedProcess(p.args, 1, "", err)) for p, _, err in outs]
    loser = next((p, err) for p, _, err in outs if p.returncode == 1)
    winner = next(p for p, _, _ in outs if p.returncode == 0)
    (line,) = error_lines(subprocess.CompletedProcess(loser[0].args, 1, "", loser[1]))
    assert "another `bankpipe run` is running" in line and f"PID {winner.pid}" in line

    settings = Settings(state_dir=state, source_url=pg_url)
    dupes = {
        "files": "select count(*) from (select file_name, sha256 from ops.ingested_files"
        " where status = 'loaded' group by all having count(*) > 1)",
        # The generator plants duplicate records on purpose: what must not repeat is a file's load.
        "file loads": "select count(*) from (select _source, _file_sha256, count(distinct _batch_id)"
        " from bronze.raw_transaction_records group by all having count(distinct _batch_id) > 1)",
        "customers": "select count(*) from (select * exclude (_batch_id, _loaded_at) from bronze.raw_customers"
        " group by all having count(*) > 1)",
        "accounts": "select count(*) from (select * exclude (_batch_id, _loaded_at) from bronze.raw_accounts"
        " group by all having count(*) > 1)",
    }
    assert {name: count(settings, sql) for name, sql in dupes.items()} == dict.fromkeys(dupes, 0)
    landed = count(settings, "select sum(\"rows\") from ops.ingested_files where status = 'loaded'")
    assert count(settings, "select count(*) from bronze.raw_transaction_records") == landed > 0
    tables = ("bronze.raw_transaction_records", "bronze.raw_customers", "bronze.raw_accounts", "gold.fact_transaction")
    before = {t: count(settings, f"select count(*) from {t}") for t in tables}
    assert before["bronze.raw_customers"] == 200

    # The next run completes, and adds nothing: the first one loaded everything, once.
    again = bankpipe(env, "run", timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {t: count(settings, f"select count(*) from {t}") for t in tables} == before


# --- the disk full while writing the warehouse ----------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 12 MiB tmpfs, unmounted afterwards (skipped where mounting is not permitted)."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m,mode=0700", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def land(folder: Path, name: str, n: int, start: int) -> Path:
    """A seed-format transaction file of `n` records whose ids and texts hardly compress."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [
        {
            "id": f"TRX-{start + i:09d}",
            "date": "2025-12-01",
            "timestamp": "10:00:00",
            "account_id": f"ACC-{(start + i) % 9973:05d}",
            "jumlah_transaksi": 1000 + i,
            "tipe_transaksi": "Transfer",
            "akun_tujuan": uuid.uuid4().hex + uuid.uuid4().hex,
            "status": "Success",
            "catatan": uuid.uuid4().hex * 3,
        }
        for i in range(n)
    ]
    path = folder / name
    path.write_text(json.dumps(records))
    old = time.time() - 60  # landed a minute ago: complete by any settle rule
    os.utime(path, (old, old))
    return path


def test_a_full_disk_fails_in_one_line_keeps_committed_data_and_the_next_run_completes(
    tmp_path: Path, small_disk: Path
) -> None:
    state = tmp_path / "state"
    landing = state / "landing" / "transactions"
    warehouse = small_disk / "warehouse.duckdb"
    env = cli_env(state, BANKPIPE_WAREHOUSE_PATH=str(warehouse))
    settings = Settings(state_dir=state, warehouse_path=warehouse)

    land(landing, "transaction_20251201_000000.json", 500, 0)
    first = bankpipe(env, "ingest", "stream")
    assert first.returncode == 0, first.stderr
    before = count(settings, "select count(*) from bronze.raw_transaction_records")
    files_before = count(settings, "select count(*) from ops.ingested_files")
    assert before == 500

    for i in range(6):  # ~60 MB of JSON: far more than the 12 MiB disk holds, even compressed
        land(landing, f"transaction_20251202_00000{i}.json", 25_000, 1_000 + i * 25_000)
    full = bankpipe(env, "ingest", "stream")
    assert full.returncode == 1, full.stderr[-3000:]
    (line,) = error_lines(full)
    assert "no space left on the disk of the warehouse" in line and str(warehouse) in line
    assert "Traceback" not in full.stderr and "internal error" not in full.stderr

    # The file opens and holds only what was committed: no record, and no ledger line, of the batch.
    assert count(settings, "select count(*) from bronze.raw_transaction_records") == before
    assert count(settings, "select count(*) from ops.ingested_files") == files_before
    assert count(settings, "select count(*) from ops.rejected_files") == 0  # a full disk is no bad file
    assert len(list(landing.iterdir())) == 7  # nothing quarantined

    subprocess.run(["mount", "-o", "remount,size=400m", str(small_disk)], check=True)
    again = bankpipe(env, "ingest", "stream")
    assert again.returncode == 0, again.stderr[-3000:]
    assert count(settings, "select count(*) from bronze.raw_transaction_records") == before + 6 * 25_000
    assert count(settings, "select count(distinct _record ->> 'id') from bronze.raw_transaction_records") == (
        before + 6 * 25_000
    )


def test_a_full_disk_in_process_is_a_bankpipe_error_and_the_connection_says_so_again(small_disk: Path) -> None:
    path = small_disk / "w.duckdb"
    settings = Settings(state_dir=small_disk / "state-unused", warehouse_path=path)
    with connect(settings) as wh:
        wh.execute("create table ops.big (x varchar)")
        with pytest.raises(WarehouseFullError, match=str(path)) as caught, wh.transaction():
            wh.execute("insert into ops.big select md5(i::varchar) || md5((i + 1)::varchar) from range(2000000) r(i)")
        assert isinstance(caught.value, BankpipeError) and not isinstance(caught.value, duckdb.Error)
    with connect(settings, read_only=True) as wh:
        assert wh.fetchone("select count(*) from ops.big") == (0,)
