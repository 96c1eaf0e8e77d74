"""`--follow` (continuing stream files, write-then-rename) and the `bankpipe generate` command."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bankpipe.cli import app
from bankpipe.generate import DefectConfig, GenerateConfig, follow, generate
from bankpipe.generate.stream import write_atomic
from bankpipe.settings import get_settings

TX_KEYS = ["id", "date", "timestamp", "account_id", "jumlah_transaksi", "tipe_transaksi", "akun_tujuan", "status"]


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BANKPIPE_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    yield tmp_path / "state"
    get_settings.cache_clear()


def test_follow_continues_ids_and_time_after_the_generated_period(tmp_path):
    config = GenerateConfig(customers=100, transactions=2_000, days=10, seed=5, out=tmp_path, records_per_file=50)
    generate(config)
    before = sorted(p.name for p in config.stream_dir.glob("transaction_*.json"))
    result = follow(config, interval_s=0, max_files=3)
    assert len(result.files) == 3 and result.records == 150
    assert all(name > max(before) for name in result.files)
    ids = [r["id"] for name in result.files for r in json.loads((config.stream_dir / name).read_bytes())]
    assert ids == [f"TRX-{i:06d}" for i in range(2_001, 2_151)]
    assert result.next_transaction == 2_151
    # Ground truth per file, and a resumed follow carries on where the last one stopped.
    truth = pq.read_table(config.truth_dir / "follow" / result.files[0].replace(".json", ".parquet"))
    assert truth.num_rows == 50
    again = follow(config, interval_s=0, max_files=1)
    assert again.files[0] > result.files[-1]
    first = json.loads((config.stream_dir / again.files[0]).read_bytes())
    assert first[0]["id"] == "TRX-002151"
    assert not list(config.stream_dir.glob(".*"))  # no temp files left behind


def test_follow_continues_the_late_scenario_and_the_look_alikes(tmp_path):
    """After the period, card testing (which starts part-way through it) goes on, look-alikes too."""
    config = GenerateConfig(
        customers=200, transactions=10_000, days=10, seed=5, out=tmp_path, records_per_file=4_000,
        defects=DefectConfig.none(),
    )  # fmt: skip
    generate(config)
    result = follow(config, interval_s=0, max_files=2)
    tables = [pq.read_table(config.truth_dir / "follow" / n.replace(".json", ".parquet")) for n in result.files]
    scenarios = {s for t in tables for s in t.column("fraud_scenario").to_pylist() if s}
    assert "card_testing" in scenarios and "account_takeover" in scenarios
    patterns = {s for t in tables for s in t.column("legit_pattern").to_pylist() if s}
    assert {"night_new_payee", "one_off_large"} <= patterns and "travel" not in patterns  # no trips in a file


def test_follow_stops_when_asked_without_waiting_out_the_interval(tmp_path):
    config = GenerateConfig(customers=50, transactions=0, days=5, seed=1, out=tmp_path, records_per_file=20)
    stop = threading.Event()
    seen: list[str] = []

    def on_file(name: str, n: int) -> None:
        seen.append(name)
        threading.Timer(0.1, stop.set).start()  # Ctrl-C's stand-in, while follow sleeps

    started = time.monotonic()
    result = follow(config, interval_s=60, stop=stop, on_file=on_file)
    assert result.files == seen and len(seen) == 1
    assert time.monotonic() - started < 30


def test_follow_with_extensions_off_writes_seed_shaped_records(tmp_path):
    config = GenerateConfig(
        customers=50, transactions=0, days=5, seed=1, out=tmp_path, records_per_file=20, extensions=(),
        defects=DefectConfig.none(),
    )  # fmt: skip
    result = follow(config, interval_s=0, max_files=1)
    records = json.loads((config.stream_dir / result.files[0]).read_bytes())
    assert len(records) == 20 and all(list(r) == TX_KEYS for r in records)


def test_write_atomic_never_leaves_a_partial_file_under_the_real_name(tmp_path):
    target = tmp_path / "transaction_20250101_000000.json"
    write_atomic(target, [b"[", b"]"])
    assert target.read_bytes() == b"[]" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_cli_generates_seed_formats(tmp_path, state_dir):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["generate", "--customers", "50", "--transactions", "500", "--days", "3", "--seed", "9", "--out", str(out),
         "--stream-files", "4", "--extensions", "none", "--no-defects"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    files = sorted((out / "stream_source").glob("*.json"))
    assert len(files) == 4
    assert all(list(r) == TX_KEYS for p in files for r in json.loads(p.read_bytes()))
    assert (out / "batch_source" / "customer.csv").read_text().startswith("id,nama_depan,nama_belakang,")
    assert (out / "ground_truth" / "summary.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--extensions", "mata_uang,colour"], "unknown extension"),
        (["--start-date", "2025-02-30"], "--start-date"),
        (["--mutate", "--follow"], "--mutate"),
    ],
)
def test_cli_user_errors_are_one_line(tmp_path, state_dir, args, message):
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_cli_follow_skips_regeneration_of_an_existing_dataset(tmp_path, state_dir):
    out = tmp_path / "out"
    args = ["generate", "--customers", "30", "--transactions", "300", "--days", "2", "--out", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0
    marker = out / "batch_source" / "customer.csv"
    mtime = marker.stat().st_mtime_ns
    result = CliRunner().invoke(app, [*args, "--follow", "--interval", "0", "--max-files", "2"])
    assert result.exit_code == 0, result.output
    assert "already holds this dataset" in " ".join(result.output.split())
    assert marker.stat().st_mtime_ns == mtime
    assert len(list((out / "ground_truth" / "follow").glob("transaction_*.parquet"))) == 2
