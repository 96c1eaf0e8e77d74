"""Pure helpers of the stream ingest: discovery and format sniffing."""

from __future__ import annotations

import os

import pytest

from bankpipe.ingest.stream import discover, sha256_file, sniff_format


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
