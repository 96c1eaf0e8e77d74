"""Hostile landing folders → stream ingest: salvage records, tell the truth about files, never die.

Each hostile file is written by its test into tmp_path (bytes in the test, next to what is expected
of them); everything runs on a real DuckDB warehouse file.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bankpipe.errors import BankpipeError
from bankpipe.ingest import stream
from bankpipe.warehouse import connect as wh_connect
from tests.integration.test_ingest_stream import q

pytestmark = pytest.mark.integration

LONG_AGO = time.time() - 3600  # an mtime that is complete by any settle rule


def rec(i: int, **extra) -> dict:
    return {
        "id": f"TRX-{i:06d}",
        "date": "2025-12-24",
        "timestamp": "10:00:00",
        "account_id": "ACC-00001",
        "jumlah_transaksi": 1000 + i,
        "tipe_transaksi": "Transfer",
        "akun_tujuan": "ACC-00002",
        "status": "Success",
        **extra,
    }


def land(folder: Path, name: str, data: bytes | str) -> Path:
    """Write a landed file whose mtime is long past (complete: no settle wait)."""
    path = folder / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    os.utime(path, (LONG_AGO, LONG_AGO))
    return path


def bronze_ids(settings, source: str | None = None) -> list[str]:
    sql = "select id from bronze.raw_transactions" + (" where _source = ?" if source else "") + " order by id"
    return [r[0] for r in q(settings, sql, [source] if source else None)]


# --- 1. JSON Lines: every line that parses loads, every other one is kept with where and why ------------


def test_json_lines_with_bad_lines_loads_the_good_ones_and_keeps_the_bad(settings, landing):
    deep = "[" * 10_000 + "]" * 10_000
    lines = [
        b"\xef\xbb\xbf" + json.dumps(rec(1)).encode(),  # BOM on line 1
        json.dumps(rec(2, device_id="D-9", note="a\u2028b\u2029c"), ensure_ascii=False).encode(),  # raw U+2028/9
        b'{"id": "TRX-000003", "jumlah_transaksi": 5,',  # broken mid-file
        b'{"id": "caf\xe9"}',  # Latin-1 byte: not UTF-8
        deep.encode(),  # 10,000 nested arrays
        b"",  # blank line: not a record, not an error
        json.dumps(rec(4)).encode() + b"\r",  # CRLF line ending
        b"NaN",
        json.dumps(rec(5)).encode(),
    ]
    land(landing, "transaction_20260101_000000.jsonl", b"\n".join(lines) + b"\n")
    land(landing, "clean.jsonl", json.dumps(rec(9)) + "\n")
    result = stream.run(settings)

    assert sorted(result.loaded) == [("clean.jsonl", 1), ("transaction_20260101_000000.jsonl", 4)]
    assert result.rejected_lines == [("transaction_20260101_000000.jsonl", 4)]
    assert not result.rejected and not result.partial
    assert bronze_ids(settings, "transaction_20260101_000000.jsonl") == [f"TRX-00000{i}" for i in (1, 2, 4, 5)]
    # The raw separators inside a string are data, not line breaks; unknown fields are kept.
    assert q(
        settings,
        "select _record->>'note', _record->>'device_id' from bronze.raw_transactions where id = ?",
        ["TRX-000002"],
    ) == [("a\u2028b\u2029c", "D-9")]
    rejected = q(
        settings,
        "select line_number, byte_offset, reason, line_bytes, raw_line from ops.rejected_lines order by line_number",
    )
    offsets = [sum(len(x) + 1 for x in lines[:n]) for n in range(len(lines))]
    assert [(n, off) for n, off, *_ in rejected] == [(3, offsets[2]), (4, offsets[3]), (5, offsets[4]), (8, offsets[7])]
    reasons = {n: reason for n, _, reason, *_ in rejected}
    assert reasons[3].startswith("unexpected end of data at column")
    assert reasons[4] == "not UTF-8: byte 0xe9 at column 12"
    assert reasons[5].startswith("nested deeper than 1024 levels")
    assert "column 1" in reasons[8]
    assert rejected[2][3] == len(deep) and len(rejected[2][4]) == stream.KEPT_LINE_BYTES  # size kept, text capped
    assert rejected[0][4] == lines[2].decode()
    ledger = q(settings, "select status, rows, rejected_lines from ops.ingested_files where file_name like 'trans%'")
    assert ledger == [("loaded", 4, 4)]


def test_json_lines_with_no_readable_line_is_quarantined_whole(settings, landing):
    land(landing, "garbage.jsonl", b"{nope\n{still nope}\n")
    result = stream.run(settings)
    assert [n for n, _ in result.rejected] == ["garbage.jsonl"]
    reason = q(settings, "select reason, quarantine_path from ops.rejected_files")[0]
    assert reason[0].startswith("no line or array element is a readable JSON record (line 1:") and reason[1]
    assert not (landing / "garbage.jsonl").exists()
    assert q(settings, "select count(*) from ops.rejected_lines") == [(0,)]  # rolled back with the file


# --- 2. truncated files are partial, never loaded; the complete version loads once ---------------------


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda s: s[: len(s) // 2], id="mid-object"),
        pytest.param(lambda s: s.rstrip()[:-1], id="only-the-closing-bracket"),
        pytest.param(lambda s: s.rsplit("}", 1)[0] + "},", id="after-a-comma"),  # DuckDB alone reads this as complete
    ],
)
def test_truncated_array_is_partial_and_the_complete_file_loads_once(settings, landing, cut):
    whole = json.dumps([rec(i) for i in range(1, 6)], indent=4)
    land(landing, "transaction_20260101_000000.json", cut(whole))
    first = stream.run(settings)
    assert not first.loaded and [n for n, _ in first.partial] == ["transaction_20260101_000000.json"]
    detail = first.partial[0][1]
    assert (
        detail.startswith("truncated JSON array: the file ends at byte") and "waiting for the complete file" in detail
    )
    size = (landing / "transaction_20260101_000000.json").stat().st_size
    assert f"at byte {size} " in detail
    assert bronze_ids(settings) == []
    assert (landing / "transaction_20260101_000000.json").exists()  # left in place, not quarantined
    assert stream.run(settings).partial == []  # the same partial bytes are not re-examined

    land(landing, "transaction_20260101_000000.json", whole)  # the producer re-sends it complete
    second = stream.run(settings)
    assert second.loaded == [("transaction_20260101_000000.json", 5)]
    assert bronze_ids(settings) == [f"TRX-00000{i}" for i in range(1, 6)]  # each record exactly once
    assert q(settings, "select status, version, rows from ops.ingested_files order by ingested_at") == [
        ("partial", 0, 0),
        ("loaded", 1, 5),
    ]
    with wh_connect(settings) as wh:
        from bankpipe import ops

        assert ops.status(wh)["partial_files"] == []  # resolved by the complete version


def test_truncated_json_lines_last_line_is_partial(settings, landing):
    body = "\n".join(json.dumps(rec(i)) for i in range(1, 4))
    land(landing, "t.jsonl", body[:-10])  # the producer died inside line 3
    result = stream.run(settings)
    assert not result.loaded and result.partial and "line 3" in result.partial[0][1]
    assert q(settings, "select count(*) from ops.rejected_lines") == [(0,)]
    land(landing, "t.jsonl", body + "\n")
    assert stream.run(settings).loaded == [("t.jsonl", 3)]
    assert bronze_ids(settings) == ["TRX-000001", "TRX-000002", "TRX-000003"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            json.dumps([rec(1)]) + " trailing",
            f"unexpected data after the JSON array at byte {len(json.dumps([rec(1)])) + 1}",
        ),
        # every element bad: nothing to salvage, the file is set aside whole
        (b'[{"id": "caf\xe9"}]', "not UTF-8: byte 0xe9"),
        (b"\xff\xfe[\x00]\x00", "not a JSON array or JSON Lines"),  # UTF-16
    ],
)
def test_broken_array_is_rejected_whole_with_the_reason(settings, landing, content, reason):
    land(landing, "bad.json", content)
    land(landing, "good.json", json.dumps([rec(2)]))
    result = stream.run(settings)
    assert result.loaded == [("good.json", 1)] and not result.partial
    assert [n for n, _ in result.rejected] == ["bad.json"] and reason in result.rejected[0][1], result.rejected
    assert list(settings.quarantine.rglob("bad.json"))


@pytest.mark.parametrize(
    ("content", "outcome"),
    [
        (b"", "rejected: empty file"),
        (b"\xef\xbb\xbf  \n", "rejected: empty file"),
        (b"[]", "loaded: 0"),
        (b"  [ ]\n", "loaded: 0"),
    ],
)
def test_empty_file_and_empty_array(settings, landing, content, outcome):
    land(landing, "e.json", content)
    result = stream.run(settings)
    got = f"rejected: {result.rejected[0][1]}" if result.rejected else f"loaded: {result.loaded[0][1]}"
    assert got == outcome


# --- 3. unreadable, vanished, failing files are recorded and skipped ---------------------------------------


def test_vanished_file_is_recorded_and_the_rest_loads(settings, landing):
    land(landing, "a.json", json.dumps([rec(1)]))
    land(landing, "gone.json", json.dumps([rec(2)]))
    files = stream.discover(landing)
    (landing / "gone.json").unlink()  # deleted between discover and read
    with stream.single_instance(settings):
        result = stream.run_once(settings, files)
    assert result.loaded == [("a.json", 1)]
    assert result.rejected == [("gone.json", "vanished before it could be read")]
    assert q(settings, "select file_name, quarantine_path from ops.rejected_files") == [("gone.json", None)]


SETPRIV = shutil.which("setpriv")


@pytest.mark.skipif(SETPRIV is None, reason="needs util-linux setpriv")
def test_unreadable_file_is_refused_and_every_later_pass_still_loads(settings, landing):
    """mode 000 for real: the child runs without CAP_DAC_OVERRIDE/READ_SEARCH, so even root cannot read it."""
    land(landing, "secret.json", json.dumps([rec(1)]))
    os.chmod(landing / "secret.json", 0)
    land(landing, "ok1.json", json.dumps([rec(2)]))
    no_override = [SETPRIV, "--bounding-set", "-dac_override,-dac_read_search"]
    if os.geteuid() != 0:
        no_override = []  # an ordinary user cannot read a mode-000 file anyway
    cmd = [*no_override, sys.executable, "-m", "bankpipe", "ingest", "stream"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    land(landing, "ok2.json", json.dumps([rec(3)]))
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "secret.json: cannot read: Permission denied" in " ".join(first.stderr.split())
    assert bronze_ids(settings) == ["TRX-000002", "TRX-000003"]
    # Recorded once (not once per pass) and left where it is.
    assert q(settings, "select file_name, reason, quarantine_path from ops.rejected_files") == [
        ("secret.json", "cannot read: Permission denied (errno 13)", None)
    ]
    assert (landing / "secret.json").exists()


# --- 4. file names are literal paths, never patterns ----------------------------------------------------


NAMES = [
    "x1.json",
    "x*.json",
    "abc.json",
    "ab?.json",
    "x.json",
    "[x].json",
    'it\'s "quoted".json',
    "with space.json",
    "transaction_[red]x[bold].json",
    "{a,b}.json",
    "back\\slash.json",
]


def test_glob_characters_quotes_and_markup_in_names_load_literally(settings, landing):
    for i, name in enumerate(NAMES, 1):
        land(landing, name, json.dumps([rec(i, mark=name)]))
    result = stream.run(settings)
    assert sorted(result.loaded) == sorted((n, 1) for n in NAMES)
    rows = q(settings, "select _source, _record->>'mark', count(*) over (partition by id) from bronze.raw_transactions")
    assert sorted(rows) == sorted((n, n, 1) for n in NAMES)  # each file's own record, once


def test_cli_prints_names_as_text_not_markup(settings, landing, monkeypatch):
    from bankpipe.cli import app
    from bankpipe.logs import console

    monkeypatch.setattr(console, "width", 400)  # wide enough that no table cell wraps a name
    land(landing, "transaction_[red]x.json", b"not json")
    land(landing, "cut_[bold]y.json", b'[{"id": 1},')
    out = CliRunner().invoke(app, ["ingest", "stream"])
    assert out.exit_code == 0, out.output
    text = out.output + (out.stderr if out.stderr_bytes is not None else "")
    assert "transaction_[red]x.json" in text and "cut_[bold]y.json" in text
    status = CliRunner().invoke(app, ["status"])
    assert status.exit_code == 0
    shown = status.output + (status.stderr if status.stderr_bytes is not None else "")
    assert "transaction_[red]x.json" in shown and "cut_[bold]y.json" in shown
    st = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)
    assert [p["file_name"] for p in st["partial_files"]] == ["cut_[bold]y.json"]
    assert st["rejected_files_latest"][0]["file_name"] == "transaction_[red]x.json"


# --- 5. symlinks, FIFOs, devices and directories are refused, never followed or opened -----------------------


def test_non_regular_entries_are_refused_once_and_never_followed(settings, landing, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps([rec(99)]))
    (landing / "link.json").symlink_to(outside)
    os.mkfifo(landing / "pipe.json")  # opening it for reading would block until a writer came
    (landing / "dir.json").mkdir()
    try:
        os.mknod(landing / "dev.json", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        expected = {"link.json", "pipe.json", "dir.json", "dev.json"}
    except PermissionError:
        expected = {"link.json", "pipe.json", "dir.json"}
    land(landing, "good.json", json.dumps([rec(1)]))
    done = threading.Event()
    results = []
    thread = threading.Thread(target=lambda: (results.append(stream.run(settings)), done.set()), daemon=True)
    thread.start()
    assert done.wait(60), "the pass blocked (a FIFO opened for reading?)"
    result = results[0]
    assert result.loaded == [("good.json", 1)]
    reasons = dict(result.rejected)
    assert set(reasons) == expected
    assert reasons["link.json"].startswith("symbolic link: not followed")
    assert reasons["pipe.json"].startswith("named pipe (FIFO)")
    assert reasons["dir.json"] == "directory: not a file"
    assert bronze_ids(settings) == ["TRX-000001"]  # the link's target never reached bronze
    stream.run(settings)  # a second pass records nothing new
    rows = q(settings, "select file_name, quarantine_path from ops.rejected_files")
    assert sorted(rows) == sorted((n, None) for n in expected)
    assert (landing / "link.json").is_symlink() and outside.exists()


# --- 6. a file is read only once complete, by run() as by follow() -----------------------------------------


def test_run_waits_for_a_young_file_and_loads_it_once(settings, landing):
    fast = settings.model_copy(update={"stream_settle_s": 0.3, "stream_settle_wait_s": 5.0})
    (landing / "young.json").write_text(json.dumps([rec(1)]))
    t0 = time.monotonic()
    result = stream.run(fast)
    assert result.loaded == [("young.json", 1)] and time.monotonic() - t0 >= 0.25


def test_run_does_not_load_a_file_still_being_written_in_place(settings, landing):
    fast = settings.model_copy(update={"stream_settle_s": 1.0, "stream_settle_wait_s": 1.5})
    path = landing / "growing.jsonl"
    stop = threading.Event()

    def writer() -> None:
        with path.open("w") as fh:
            for i in range(1, 31):
                fh.write(json.dumps(rec(i)) + "\n")
                fh.flush()
                if stop.wait(0.1):
                    return

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    time.sleep(0.2)
    during = stream.run(fast)
    assert during.waiting == ["growing.jsonl"] and not during.loaded
    thread.join(10)
    time.sleep(1.1)
    after = stream.run(fast)
    assert after.loaded == [("growing.jsonl", 30)]
    assert q(settings, "select count(*), count(distinct id) from bronze.raw_transactions") == [(30, 30)]
    assert q(settings, "select count(*) from ops.ingested_files") == [(1,)]


def test_a_file_changed_while_loading_is_rolled_back_and_waits(settings, landing, monkeypatch):
    path = land(landing, "a.json", json.dumps([rec(1)]))
    real = stream._commit_chunk

    def touch_then_commit(wh, files, ledger, result):
        os.utime(path, (LONG_AGO + 5, LONG_AGO + 5))  # a writer touched it after it was hashed
        monkeypatch.setattr(stream, "_commit_chunk", real)
        return real(wh, files, ledger, result)

    monkeypatch.setattr(stream, "_commit_chunk", touch_then_commit)
    result = stream.run(settings)
    assert result.waiting == ["a.json"] and not result.loaded
    assert q(settings, "select count(*) from bronze.raw_transaction_records") == [(0,)]
    assert stream.run(settings).loaded == [("a.json", 1)]


# --- 7. follow() survives its hook and its own passes failing ----------------------------------------------


def _follow(settings, **kwargs):
    stop = threading.Event()
    thread = threading.Thread(
        target=stream.follow, args=(settings,), kwargs={"stop": stop, "poll_s": 0.05, "settle_s": 0.0, **kwargs}
    )
    thread.daemon = True
    thread.start()
    return stop, thread


def _until(cond, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)
    return cond()


def test_follow_retries_a_failing_hook_and_logs_each_failure(settings, landing):
    calls: list[str] = []

    def hook(result):
        calls.append(result.batch_id)
        if len(calls) == 1:
            raise RuntimeError("scoring service down")

    stop, thread = _follow(settings, on_loaded=hook)
    try:
        land(landing, "a.json", json.dumps([rec(1)]))
        assert _until(lambda: len(calls) >= 2), calls
        land(landing, "b.json", json.dumps([rec(2)]))  # and the follower still loads what comes next
        assert _until(lambda: len(calls) >= 3), calls
    finally:
        stop.set()
        thread.join(10)
    assert calls[0] == calls[1] != calls[2]  # the failed batch was retried, then the next one ran
    log = q(
        settings,
        "select status, error, details->>'attempt' from ops.run_log where step = 'ingest.stream.on_loaded'"
        " order by started_at",
    )
    assert log == [("failed", "RuntimeError: scoring service down", "1"), ("success", None, "2")]
    assert bronze_ids(settings) == ["TRX-000001", "TRX-000002"]


def test_follow_survives_a_failing_pass(settings, landing, monkeypatch):
    real = stream.run_once
    failures = []

    def flaky(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise BankpipeError("warehouse locked by another process")
        return real(*args, **kwargs)

    monkeypatch.setattr(stream, "run_once", flaky)
    land(landing, "a.json", json.dumps([rec(1)]))
    stop, thread = _follow(settings)
    try:
        assert _until(lambda: bool(failures) and bronze_ids_safe(settings) == ["TRX-000001"])
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def bronze_ids_safe(settings):
    try:
        return bronze_ids(settings)
    except Exception:
        return None


@pytest.mark.slow
def test_a_200_mb_json_lines_file_with_a_bad_line_loads_in_bounded_memory(settings, landing):
    """The salvage path streams: peak RSS of the child stays far below the file's parsed size."""
    path = landing / "big.jsonl"
    n = 0
    with path.open("w") as fh:
        while fh.tell() < 200 << 20:
            n += 1
            fh.write(json.dumps(rec(n, channel="mobile", location_id="LOC-001")) + "\n")
            if n == 1000:
                fh.write('{"id": "broken",\n')
    os.utime(path, (LONG_AGO, LONG_AGO))
    child = (
        "import resource; from bankpipe.cli import app; app(['ingest', 'stream'], standalone_mode=False);"
        " print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.split()[-1])
    assert q(settings, "select count(*) from bronze.raw_transaction_records") == [(n,)]
    assert q(settings, "select line_number from ops.rejected_lines") == [(1001,)]
    # Measured 715 MB (DuckDB's buffers; 530 MB for 100 MB, 770 MB for 400 MB): not the file times ten.
    assert peak_mb < 1200, f"peak RSS {peak_mb} MB"


def test_an_array_cut_right_after_a_nested_array_is_partial_not_half_loaded(settings, landing):
    """`[{…}, {"tags": ["x"]` ends in ']' like a complete array: loading its first element now would load it twice."""
    whole = json.dumps([rec(1), {**rec(2), "tags": ["x", "y"]}, rec(3)], indent=4)
    cut = whole[: whole.index('"y"') + len('"y"')] + "\n        ]"
    land(landing, "transaction_20260101_000001.json", cut)
    first = stream.run(settings)
    assert not first.loaded and [n for n, _ in first.partial] == ["transaction_20260101_000001.json"]
    assert "does not close" in first.partial[0][1] and "waiting for the complete file" in first.partial[0][1]
    assert bronze_ids(settings) == []
    assert q(settings, "select count(*) from ops.rejected_lines") == [(0,)]

    land(landing, "transaction_20260101_000001.json", whole)
    assert stream.run(settings).loaded == [("transaction_20260101_000001.json", 3)]
    assert bronze_ids(settings) == ["TRX-000001", "TRX-000002", "TRX-000003"]  # each once
