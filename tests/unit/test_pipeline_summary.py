"""`bankpipe run`'s one line for the stream ingest says what was not loaded whole."""

from __future__ import annotations

from bankpipe.ingest.stream import StreamResult
from bankpipe.pipeline import _stream


def test_the_stream_line_names_partial_files_bad_lines_and_files_still_being_written() -> None:
    r = StreamResult("b", loaded=[("a.jsonl", 3)], partial=[("p.json", "cut")], rejected_lines=[("a.jsonl", 2)])
    r.waiting = ["w.json"]
    line = _stream(r).summary
    assert line.startswith("1 files, 3 records;")
    assert "1 partial" in line and "2 bad lines kept in ops.rejected_lines" in line and "1 still being written" in line


def test_a_clean_pass_says_nothing_more() -> None:
    assert _stream(StreamResult("b", loaded=[("a.json", 5)])).summary == (
        "1 files, 5 records; 0 duplicate files skipped, 0 rejected"
    )
