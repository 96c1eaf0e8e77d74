"""Pure helpers of the stream ingest: discovery and format sniffing."""

from __future__ import annotations

import os

import pytest

from bankpipe.ingest.stream import (
    LandedFile,
    Settler,
    discover,
    element_error,
    iter_array_elements,
    iter_lines,
    line_error,
    scan_array,
    sha256_file,
    sniff_format,
    survey,
)


@pytest.mark.parametrize(
    ("content", "fmt"),
    [
        (b'[{"id": 1}]', "array"),
        (b'\n  [\n{"id": 1}]', "array"),
        (b'\xef\xbb\xbf[{"id": 1}]', "array"),
        (b'{"id": 1}\n{"id": 2}\n', "newline_delimited"),
        (b'\xef\xbb\xbf{"id": 1}', "newline_delimited"),
        (b"id,amount\n1,2\n", None),
        (b"", None),
    ],
)
def test_sniff_format(tmp_path, content, fmt):
    path = tmp_path / "f.json"
    path.write_bytes(content)
    assert sniff_format(path) == fmt


def test_discover_orders_by_arrival_and_skips_temp_files(tmp_path):
    for name, mtime in [("b.json", 3), ("a.json", 2), ("c.jsonl", 1), ("d.json.tmp", 0), (".e.json", 0), ("f.csv", 0)]:
        (tmp_path / name).write_text("[]")
        os.utime(tmp_path / name, ns=(mtime * 10**9, mtime * 10**9))
    (tmp_path / "sub.json").mkdir()
    assert [f.path.name for f in discover(tmp_path)] == ["c.jsonl", "a.json", "b.json"]
    assert discover(tmp_path / "missing") == []


def test_sha256_matches_hashlib(tmp_path):
    import hashlib

    data = os.urandom(3 << 20)
    (tmp_path / "x").write_bytes(data)
    assert sha256_file(tmp_path / "x") == hashlib.sha256(data).hexdigest()


# --- where a file breaks, line by line, and when it is complete (issue 13) -------------------------------


@pytest.mark.parametrize(
    ("content", "kind", "expected"),
    [
        (b'[{"a": 1}, {"a": 2}, {"a"', "partial", "ends at byte 25 inside the array"),
        (b'[{"a": 1}, {"a": 2},', "partial", "(2 complete object(s) end by byte 19)"),
        (b'\xef\xbb\xbf[{"a": "]}\\" ["}, {"b": "[[', "partial", "(1 complete object(s) end by byte 19)"),
        (b'[{"a": 1}]  garbage', "malformed", "unexpected data after the JSON array at byte 12"),
        (b'[{"a": 1}]]', "malformed", "unexpected data after the JSON array at byte 10"),
    ],
)
def test_scan_array_says_where_an_array_breaks(tmp_path, content, kind, expected):
    path = tmp_path / "a.json"
    path.write_bytes(content)
    got_kind, detail = scan_array(path)
    assert (got_kind, expected in detail) == (kind, True), detail


@pytest.mark.parametrize(
    ("raw", "first", "text", "reason"),
    [
        (b'{"id": 1}', False, '{"id": 1}', None),
        (b'\xef\xbb\xbf{"id": 1}\r', True, '{"id": 1}', None),
        (b"   ", False, None, None),
        (b'{"id": "caf\xe9"}', False, None, "not UTF-8: byte 0xe9 at column 12"),
        (b'{"id": 1,', False, None, "unexpected end of data at column 10"),
        (b"[" * 2000 + b"]" * 2000, False, None, "nested deeper than 1024 levels at column 1026"),
        (b'{"s": "a\xe2\x80\xa8b"}', False, '{"s": "a\u2028b"}', None),
    ],
)
def test_line_error(raw, first, text, reason):
    assert line_error(raw, first) == (text, reason)


def test_iter_lines_splits_on_newline_only_and_counts_bytes(tmp_path, monkeypatch):
    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"s": "a\xe2\x80\xa8b"}\n' + b"x" * 50 + b'\n{"last": 1}')
    monkeypatch.setattr("bankpipe.ingest.stream.MAX_LINE_BYTES", 40)
    got = list(iter_lines(path))
    assert [(n, off, nl) for n, off, _, nl in got] == [(1, 0, True), (2, 15, True), (3, 66, False)]
    assert got[0][2] == b'{"s": "a\xe2\x80\xa8b"}'
    assert line_error(got[1][2], False) == (None, "line longer than 0 MiB")  # read on past it, never held
    assert got[2][2] == b'{"last": 1}'


def test_settler_is_one_rule_for_old_young_and_future_files(tmp_path):
    import time

    settler = Settler(0.3)
    now = time.time_ns()
    old = LandedFile(tmp_path / "old.json", 1, now - 10**9, ino=1)
    young = LandedFile(tmp_path / "young.json", 1, now, ino=2)
    future = LandedFile(tmp_path / "future.json", 1, now + 3600 * 10**9, ino=3)  # a producer's clock ahead
    assert settler.split([old, young, future]) == ([old], [young, future])
    time.sleep(0.35)
    assert settler.split([young, future]) == ([young, future], [])  # unchanged while watched
    grown = LandedFile(tmp_path / "future.json", 2, now + 3600 * 10**9, ino=3)
    assert settler.split([grown]) == ([], [grown])  # changed: the watch starts again


def test_survey_refuses_what_is_not_a_regular_file(tmp_path):
    (tmp_path / "ok.json").write_text("[]")
    (tmp_path / "link.json").symlink_to(tmp_path / "ok.json")
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "dir.ndjson").mkdir()
    (tmp_path / ".hidden.json").symlink_to(tmp_path / "ok.json")  # hidden names are ignored, not refused
    found = survey(tmp_path)
    assert [f.path.name for f in found.files] == ["ok.json"]
    assert [(p.name, reason.split(":")[0]) for p, _, reason in found.refused] == [
        ("dir.ndjson", "directory"),
        ("link.json", "symbolic link"),
        ("pipe.jsonl", "named pipe (FIFO)"),
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'[{"a": 1}, {"b": [1, {"c": "x,]"}]}]', [(1, 1, '{"a": 1}'), (1, 11, '{"b": [1, {"c": "x,]"}]}')]),
        # a bad element costs only itself; lines and offsets point at its first byte
        (
            b'[\n  {"a": 1},\n  {"b": 1.2.3},\n  {"c": "q\\"]"}\n]\n',
            [(2, 4, '{"a": 1}'), (3, 16, "unexpected character"), (4, 32, '{"c": "q\\"]"}')],
        ),
        (b"[]", []),
        (b'\xef\xbb\xbf [ {"a":1} ]', [(1, 6, '{"a":1}')]),
        (b'[1, null, "s"]', [(1, 1, "1"), (1, 4, "null"), (1, 10, '"s"')]),
        # a pretty-printed element becomes one line of JSON Lines; a newline inside a string never passes
        (b'[{\n"a":\n1}]', [(1, 1, '{ "a": 1}')]),
        (b'[{"a":1},]', [(1, 1, '{"a":1}'), (1, 8, "empty element (a stray comma)")]),
        (b'[{"a":1}] junk', [(1, 1, '{"a":1}'), (1, 10, "unexpected data after the JSON array")]),
        (b'[{"a":1}, {"b": "oops}, {"c": 3}]', [(1, 1, '{"a":1}'), (1, 10, "the array does not close")]),
    ],
)
def test_iter_array_elements_splits_at_the_arrays_own_commas(tmp_path, content, expected):
    path = tmp_path / "a.json"
    path.write_bytes(content)
    got = []
    for number, offset, raw in iter_array_elements(path):
        text, reason = element_error(raw)
        got.append((number, offset, text if text is not None else reason))
    assert [(n, o) for n, o, _ in got] == [(n, o) for n, o, _ in expected]
    for (_, _, value), (_, _, want) in zip(got, expected, strict=True):
        assert value is not None and value.startswith(want), (value, want)


def test_iter_array_elements_reads_a_large_array_in_bounded_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr("bankpipe.ingest.stream.MAX_LINE_BYTES", 64)
    path = tmp_path / "a.json"
    path.write_bytes(b'[{"a": "' + b"x" * 200 + b'"}, {"b": 2}]')
    got = [(n, o, element_error(raw)) for n, o, raw in iter_array_elements(path)]
    assert got[0][2] == (None, "element longer than 0 MiB") and got[1][2] == ('{"b": 2}', None)


def test_staged_links_sit_beside_the_warehouse_not_in_tmp_and_a_dead_runs_are_removed(tmp_path):
    from bankpipe.warehouse.base import JsonFile
    from bankpipe.warehouse.duckdb import _staged

    landed = tmp_path / "landing" / "x*.json"
    landed.parent.mkdir()
    landed.write_text("[]")
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    dead = warehouse.parent / "warehouse.duckdb.stage-dead"
    dead.mkdir()
    with _staged([JsonFile(landed, landed.name, "", "array")], warehouse) as staged:
        (link,) = staged
        assert os.path.dirname(os.path.dirname(link)) == str(warehouse.parent)
        assert os.readlink(link) == str(landed) and "*" not in link
        assert not dead.exists()
    assert not os.path.exists(os.path.dirname(link))
