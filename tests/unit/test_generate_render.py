"""The vectorised byte renderer and sampling helpers against their plain-Python definitions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bankpipe.generate.ids import format_id, format_ids
from bankpipe.generate.render import Arena, Lookup, Rows, py_amount_text
from bankpipe.generate.sampling import inverse_cdf_table, weighted_sample


@pytest.mark.parametrize("seed", [0, 1])
def test_amounts_are_written_as_json_dump_writes_floats(seed):
    rng = np.random.default_rng(seed)
    cents = np.r_[rng.integers(0, 10**13, 50_000), [0, 1, 5, 10, 50, 99, 100, 138802690, 32957500, 9833832]]
    rendered = Rows(len(cents)).amount(cents).text("\n").build()
    lines = rendered.stream.tobytes().decode().splitlines()
    assert lines == [json.dumps(round(int(c) / 100, 2)) for c in cents]
    # The seed's own amounts: 1388026.9, 329575.0, 98338.32.
    assert lines[-3:] == ["1388026.9", "329575.0", "98338.32"]
    assert [py_amount_text(int(c)) for c in cents[-3:]] == lines[-3:]


def test_rows_mix_text_digits_numbers_and_lookups():
    numbers = np.array([0, 7, 42, 123456, 1_000_000])
    table = Lookup(["a", "bcdefghijk", ""])
    idx = np.array([0, 1, 2, 1, 0])
    r = Rows(5).text("<").digits(numbers % 1000, 3).text("|").number(numbers).text("|")
    r.number(numbers, empty_zero=True).text("|").lookup(table, idx).text(">\n")
    got = r.build().stream.tobytes().decode().splitlines()
    want = [f"<{n % 1000:03d}|{n}|{n or ''}|{table.values[i]}>" for n, i in zip(numbers, idx, strict=True)]
    assert got == want


def test_rows_build_in_blocks_and_reuse_an_arena():
    n = 40_000  # more than one block of rows
    arena = Arena()
    first = Rows(n).text("x").digits(np.arange(n), 6).text("\n").build(arena)
    assert first.stream.tobytes().decode().splitlines() == [f"x{i:06d}" for i in range(n)]
    buffer = arena.buffer
    again = Rows(n).text("y").digits(np.arange(n), 6).text("\n").build(arena)
    assert arena.buffer is buffer and again.slice(n - 1, n) == f"y{n - 1:06d}\n".encode()


def test_replacements_are_spliced_into_slices():
    rendered = Rows(4).digits(np.arange(4), 1).text(",").build()
    rendered.replacements[2] = b"X,"
    assert rendered.slice(0, 4) == b"0,1,X,3,"
    assert rendered.slice(2, 3) == b"X,"


def test_digits_refuse_numbers_that_do_not_fit():
    with pytest.raises(ValueError, match="cannot take 3 digits"):
        Rows(1).digits(np.array([1000]), 3)


def test_vectorised_ids_match_format_id():
    numbers = np.array([1, 9, 10, 99_999, 123_456])
    assert format_ids("account", numbers, 6).to_pylist() == [format_id("account", int(n), 6) for n in numbers]
    assert format_id("customer", 1, 4) == "CUST-0001"


def test_inverse_cdf_table_reproduces_the_weights():
    weights = np.array([1.0, 3.0, 0.0, 6.0])
    table = inverse_cdf_table(weights)
    share = np.bincount(table, minlength=4) / len(table)
    assert share == pytest.approx(weights / weights.sum(), abs=1e-4)


def test_weighted_sample_is_exact_in_size_distinct_and_follows_weights():
    rng = np.random.default_rng(3)
    weights = np.r_[np.full(1000, 1.0), np.full(1000, 9.0), np.zeros(10)]
    rows = weighted_sample(weights, 500, rng)
    assert len(rows) == len(set(rows.tolist())) == 500
    assert (rows < 2000).all()
    assert (rows >= 1000).mean() > 0.8
    assert len(weighted_sample(np.zeros(5), 3, rng)) == 0
