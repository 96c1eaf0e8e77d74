"""Landing folder → bronze.raw_transactions: formats, exactly once, quarantine, lock, follow."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from bankpipe.errors import BankpipeError
from bankpipe.ingest import stream
from bankpipe.warehouse import connect as wh_connect

pytestmark = pytest.mark.integration


def q(settings, sql: str, params=None):
    with wh_connect(settings) as wh:
        return wh.fetchall(sql, params)


def records(n: int, start: int = 1, **extra) -> list[dict]:
    return [
        {
            "id": f"TRX-{i:06d}",
            "date": "2025-12-24",
            "timestamp": "10:00:00",
            "account_id": "ACC-00001",
            "jumlah_transaksi": 1000.5 + i,
            "tipe_transaksi": "Transfer",
            "akun_tujuan": "ACC-00002",
            "status": "Success",
            **extra,
        }
        for i in range(start, start + n)
    ]


def test_sample_stream_files_load_unchanged(settings, landing, sample_dir):
    for f in (sample_dir / "stream_source").iterdir():
        shutil.copy(f, landing)
    result = stream.run(settings)
    assert result.rows == 60 and len(result.loaded) == 3 and not result.rejected
    rows = q(
        settings,
        "select id, date, timestamp, account_id, jumlah_transaksi, tipe_transaksi, akun_tujuan,"
        " status from bronze.raw_transactions order by id",
    )
    expected = []
    for f in sorted((sample_dir / "stream_source").iterdir()):
        for rec in json.loads(f.read_text()):
            expected.append(
                tuple(
                    str(rec[k])
                    for k in (
                        "id",
                        "date",
                        "timestamp",
                        "account_id",
                        "jumlah_transaksi",
                        "tipe_transaksi",
                        "akun_tujuan",
                        "status",
                    )
                )
            )
    assert rows == sorted(expected)
    # The amount text is the file's own (no float round trip): 1000000.0 stays "1000000.0".
    assert ("TRX-000041", "1000000.0") in q(settings, "select id, jumlah_transaksi from bronze.raw_transactions")


def test_json_lines_bom_and_unknown_fields_are_kept(settings, landing):
    lines = "\n".join(json.dumps(r) for r in records(3, channel="mobile", device_id="D-9", mata_uang="USD"))
    (landing / "transaction_20260101_000000.jsonl").write_bytes(b"\xef\xbb\xbf" + lines.encode())
    (landing / "transaction_20260101_000001.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(records(2, 10)).encode())
    result = stream.run(settings)
    assert result.rows == 5 and not result.rejected
    row = q(
        settings,
        "select channel, mata_uang, _record->>'device_id' from bronze.raw_transactions where id = 'TRX-000001'",
    )
    assert row == [("mobile", "USD", "D-9")]


def test_same_bytes_under_another_name_is_skipped_and_new_content_is_a_new_version(settings, landing):
    (landing / "a.json").write_text(json.dumps(records(4)))
    stream.run(settings)
    shutil.copy(landing / "a.json", landing / "a_copy.json")
    assert stream.run(settings).duplicates == [("a_copy.json", "a.json")]
    (landing / "a.json").write_text(json.dumps(records(5, 100)))  # same name, new content
    again = stream.run(settings)
    assert again.loaded == [("a.json", 5)]
    assert q(settings, "select count(*) from bronze.raw_transactions") == [(9,)]
    assert q(settings, "select version from ops.ingested_files where file_name = 'a.json' order by version") == [
        (1,),
        (2,),
    ]
    assert stream.run(settings).rows == 0  # nothing new: nothing loaded, nothing hashed twice


def test_unparseable_files_are_quarantined_and_the_rest_still_load(settings, landing):
    good = json.dumps(records(3))
    (landing / "good.json").write_text(good)
    (landing / "truncated.json").write_text(good[: len(good) // 2])
    (landing / "binary.json").write_bytes(b"\x00\x01garbage")
    (landing / "weird_record.json").write_text(
        json.dumps([*records(1, 50), 42, {"id": "TRX-X", "jumlah_transaksi": "abc"}])
    )
    (landing / "malformed.json").write_text(good.replace('"id"', "id", 1))
    result = stream.run(settings)
    assert sorted(n for n, _ in result.rejected) == ["binary.json"]
    # One bad element costs only itself: the array's other elements load, the bad one is kept with its line.
    assert sorted(result.loaded) == [("good.json", 3), ("malformed.json", 2), ("weird_record.json", 3)]
    assert q(settings, "select file_name, line_number from ops.rejected_lines") == [("malformed.json", 1)]
    # A truncated array is not rejected: it is recorded `partial` and left in place (see test_stream_robust.py).
    assert [n for n, _ in result.partial] == ["truncated.json"]
    assert (landing / "truncated.json").exists()
    quarantined = {p.name for p in settings.quarantine.rglob("*.json")}
    assert quarantined == {"binary.json"}
    # Records that parse but are wrong are kept as they came; silver decides.
    kept = q(
        settings,
        "select _record::varchar, jumlah_transaksi from bronze.raw_transactions"
        " where _source = 'weird_record.json' order by 1",
    )
    assert ("42", None) in kept and any(amount == "abc" for _, amount in kept)


def test_temp_and_hidden_files_are_ignored(settings, landing):
    (landing / "x.json.tmp").write_text(json.dumps(records(1)))
    (landing / ".x.json").write_text(json.dumps(records(1)))
    assert stream.run(settings).rows == 0


def test_second_instance_refuses_to_run(settings, landing):
    with stream.single_instance(settings), pytest.raises(BankpipeError, match="only one may run"):
        stream.run(settings)


def test_follow_loads_a_renamed_file_within_two_seconds(settings, landing):
    stop = threading.Event()
    seen: list[float] = []
    thread = threading.Thread(
        target=stream.follow,
        args=(settings,),
        kwargs={"stop": stop, "on_loaded": lambda r: seen.append(time.monotonic())},
        daemon=True,
    )
    thread.start()
    try:
        time.sleep(0.5)
        tmp = landing / "transaction_20260102_000000.json.tmp"
        tmp.write_text(json.dumps(records(10)))
        landed = time.monotonic()
        tmp.rename(landing / "transaction_20260102_000000.json")
        deadline = landed + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert seen, "the file was never loaded"
    assert seen[0] - landed < 2.0, f"loaded {seen[0] - landed:.2f}s after landing"
    assert q(settings, "select count(*) from bronze.raw_transactions") == [(10,)]


@pytest.mark.slow
def test_sigkill_during_stream_ingest_loads_every_file_exactly_once(settings, landing):
    for i in range(60):
        (landing / f"transaction_20260101_{i:06d}.json").write_text(json.dumps(records(2000, 1 + i * 2000)))
    cmd = [sys.executable, "-m", "bankpipe", "ingest", "stream"]
    env = dict(os.environ)
    kills = 0
    for delay in (0.3, 0.6, 0.9, 1.2, 1.5, 0.4, 0.8):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    assert kills >= 2, "no run was killed mid-flight"
    total, distinct = q(settings, "select count(*), count(distinct id) from bronze.raw_transactions")[0]
    assert total == distinct == 120_000
    assert q(settings, "select count(*), count(distinct sha256) from ops.ingested_files where status = 'loaded'") == [
        (60, 60)
    ]
