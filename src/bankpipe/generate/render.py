"""Byte-exact text rows built column-block-wise in numpy (no per-row Python): the generator's fast path.

A row is a sequence of blocks: constant text, fixed-width digits, or lookups/numbers padded with zero
bytes. The blocks are laid side by side in an (n, width) uint8 matrix and the zero padding is squeezed
out in one pass, leaving the rows back to back in one buffer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

_POW10 = 10 ** np.arange(19, dtype=np.int64)


class Lookup:
    """A small table of strings as a zero-padded byte matrix (width a multiple of 8), gathered by index."""

    def __init__(self, values: Sequence[str]) -> None:
        encoded = [v.encode() for v in values]
        if any(b"\x00" in b for b in encoded):
            raise ValueError("lookup values must not contain NUL bytes")
        width = max((len(b) for b in encoded), default=0)
        width = max(8, -(-width // 8) * 8)  # whole 8-byte words: gathered as uint64, several times faster
        self.values = list(values)
        self.mat = np.zeros((max(len(encoded), 1), width), np.uint8)
        for i, b in enumerate(encoded):
            self.mat[i, : len(b)] = np.frombuffer(b, np.uint8)
        # One contiguous uint64 column per 8-byte word: 1-D gathers are the fastest numpy has.
        words = self.mat.view(np.uint64)
        self.words = [np.ascontiguousarray(words[:, j]) for j in range(words.shape[1])]
        self.lengths = np.array([len(b) for b in encoded] or [0], np.int64)

    @classmethod
    def of_digits(cls, count: int, width: int) -> Lookup:
        """Entries 0..count-1 as zero-padded `width`-digit strings (ids gathered instead of computed)."""
        table = cls([])
        table.values = []
        table.mat = np.zeros((max(count, 1), max(8, -(-width // 8) * 8)), np.uint8)
        _fill_digits(table.mat[:count, :width], np.arange(count, dtype=np.int64), width, leading_zeros=True)
        words = table.mat.view(np.uint64)
        table.words = [np.ascontiguousarray(words[:, j]) for j in range(words.shape[1])]
        table.lengths = np.full(max(count, 1), width, np.int64)
        return table


def json_lookup(values: Sequence[str]) -> Lookup:
    """A lookup of JSON string literals (`"Transfer"`), quotes included."""
    return Lookup([json.dumps(v) for v in values])


# Two ASCII digits per entry (as one little-endian uint16); entries 100..109 are "one digit" (leading
# byte 0 = padding), entry 200 is "no digit" (both padding): what a position of a number without
# leading zeros holds.
_PAIRS = np.zeros((201, 2), np.uint8)
_PAIRS[:100, 0] = 48 + np.arange(100) // 10
_PAIRS[:100, 1] = 48 + np.arange(100) % 10
_PAIRS[100:110, 1] = 48 + np.arange(10)
_PAIRS16 = _PAIRS.view(np.uint16).ravel()

# Rows are assembled in blocks of this many rows: the byte matrix stays in cache.
_BLOCK_ROWS = 16_384


def _fill_digits(dst: np.ndarray, numbers: np.ndarray, width: int, leading_zeros: bool) -> None:
    """Write the decimal digits of `numbers` right-aligned into dst (k, width), two digits per step."""
    q = numbers.copy()
    pos = width
    first = True
    while pos > 0:
        pair = q % 100
        if leading_zeros:
            code = pair
        elif first:
            code = np.where(q >= 10, pair, 100 + pair)  # a bare 0 is still written as "0"
        else:
            code = np.where(q >= 10, pair, np.where(q > 0, 100 + pair, 200))
        two = _PAIRS16[code]
        if pos >= 2:
            dst[:, pos - 2 : pos].view(np.uint16)[:, 0] = two
        else:
            dst[:, 0] = two >> 8
        q //= 100
        pos -= 2
        first = False


class Arena:
    """A byte buffer reused from one build to the next (fresh memory is slow to fault in)."""

    def __init__(self) -> None:
        self.buffer = np.empty(0, np.uint8)

    def take(self, size: int) -> np.ndarray:
        if size > len(self.buffer):
            self.buffer = np.empty(int(size * 1.1) + 1024, np.uint8)
        return self.buffer[:size]


class Rows:
    """Builder for n text rows; see the module docstring."""

    def __init__(self, n: int) -> None:
        self.n = n
        # (kind, width, payload): "text" bytes | "digits"/"number" (numbers,) | "lookup" (matrix, idx)
        self.blocks: list[tuple[str, int, tuple[object, ...]]] = []
        self.lengths = np.zeros(n, np.int64)
        self.padded = False

    def text(self, s: str) -> Rows:
        b = s.encode()
        if self.blocks and self.blocks[-1][0] == "text":
            prev = self.blocks[-1][2][0]
            assert isinstance(prev, bytes)
            self.blocks[-1] = ("text", len(prev) + len(b), (prev + b,))
        else:
            self.blocks.append(("text", len(b), (b,)))
        self.lengths += len(b)
        return self

    def lookup(self, table: Lookup, idx: np.ndarray) -> Rows:
        idx = np.asarray(idx)
        self.blocks.append(("lookup", table.mat.shape[1], (table.words, idx)))
        self.lengths += table.lengths[idx]
        self.padded |= bool((table.lengths != table.mat.shape[1]).any())
        return self

    def digits(self, numbers: np.ndarray, width: int) -> Rows:
        """Fixed-width zero-padded digits (ids)."""
        numbers = np.asarray(numbers, np.int64)
        if len(numbers) and (int(numbers.max()) >= 10**width or int(numbers.min()) < 0):
            raise ValueError(f"numbers outside 0..{10**width - 1} cannot take {width} digits")
        self.blocks.append(("digits", width, (numbers,)))
        self.lengths += width
        return self

    def number(self, numbers: np.ndarray, *, empty_zero: bool = False) -> Rows:
        """Variable-width decimal integers (no leading zeros; 0 is "0", or nothing when empty_zero)."""
        numbers = np.asarray(numbers, np.int64)
        top = int(numbers.max()) if len(numbers) else 0
        width = max(1, len(str(top)))
        n_digits = np.ones(len(numbers), np.int64)
        for k in range(1, width):
            n_digits += numbers >= _POW10[k]
        if empty_zero:
            n_digits[numbers == 0] = 0
            self.blocks.append(("number0", width, (numbers,)))
        else:
            self.blocks.append(("number", width, (numbers,)))
        self.lengths += n_digits
        self.padded = True
        return self

    def amount(self, cents: np.ndarray) -> Rows:
        """Non-negative cents as the JSON number json.dumps(round(cents / 100, 2)) writes (1388026.9, 329575.0)."""
        cents = np.asarray(cents, np.int64)
        self.number(cents // 100)
        return self.lookup(_FRACTIONS, cents % 100)

    def build(self, arena: Arena | None = None) -> Rendered:
        """Assemble the rows; with an arena, into its reused buffer (valid until the arena's next use)."""
        width = sum(w for _, w, _ in self.blocks)
        offsets = np.zeros(self.n + 1, np.int64)
        np.cumsum(self.lengths, out=offsets[1:])
        stream = arena.take(int(offsets[-1])) if arena is not None else np.empty(int(offsets[-1]), np.uint8)
        rows = min(self.n, _BLOCK_ROWS)
        mat = np.empty((rows, width), np.uint8)
        mask = np.empty((rows, width), bool)
        at = 0
        for kind, w, payload in self.blocks:
            if kind == "text":  # constant columns: written once, the other blocks never touch them
                mat[:, at : at + w] = np.frombuffer(payload[0], np.uint8)  # type: ignore[call-overload]
            at += w
        for lo in range(0, self.n, _BLOCK_ROWS):
            hi = min(lo + _BLOCK_ROWS, self.n)
            m = mat[: hi - lo]
            at = 0
            for kind, w, payload in self.blocks:
                dst = m[:, at : at + w]
                if kind == "lookup":
                    idx = payload[1][lo:hi]  # type: ignore[index]
                    out = dst.view(np.uint64)
                    for j, column in enumerate(payload[0]):  # type: ignore[arg-type]
                        out[:, j] = column[idx]
                elif kind == "number0":
                    numbers = payload[0][lo:hi]  # type: ignore[index]
                    _fill_digits(dst, numbers, w, leading_zeros=False)
                    dst[numbers == 0, -1] = 0
                elif kind != "text":
                    _fill_digits(dst, payload[0][lo:hi], w, leading_zeros=kind == "digits")  # type: ignore[index]
                at += w
            if self.padded:
                k = mask[: hi - lo]
                np.not_equal(m, 0, out=k)
                stream[offsets[lo] : offsets[hi]] = m[k]
            else:
                stream[offsets[lo] : offsets[hi]] = m.reshape(-1)
        return Rendered(stream, offsets)


# Python's float repr of round(x, 2) for the two decimals: ".0", ".5", ".05", ".25", ...
_FRACTIONS = Lookup([".0" if k == 0 else (f".{k // 10}" if k % 10 == 0 else f".{k:02d}") for k in range(100)])


@dataclass
class Rendered:
    """Rows back to back in one byte buffer, with per-row offsets and optional whole-row replacements."""

    stream: np.ndarray
    offsets: np.ndarray
    replacements: dict[int, bytes] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def pieces(self, start: int, stop: int) -> list[memoryview | bytes]:
        """Rows [start, stop) as buffer pieces (zero-copy), replacements spliced in."""
        data = memoryview(self.stream)
        out: list[memoryview | bytes] = []
        cur = start
        for r in sorted(r for r in self.replacements if start <= r < stop):
            out.append(data[self.offsets[cur] : self.offsets[r]])
            out.append(self.replacements[r])
            cur = r + 1
        out.append(data[self.offsets[cur] : self.offsets[stop]])
        return out

    def slice(self, start: int, stop: int) -> bytes:
        """Bytes of rows [start, stop), replacements spliced in."""
        return b"".join(self.pieces(start, stop))

    def strings(self) -> pa.Array:
        """The rows as an Arrow string array (zero-copy; replacements not applied)."""
        if self.offsets[-1] < 2**31:
            offsets = pa.py_buffer(self.offsets.astype(np.int32))
            return pa.StringArray.from_buffers(len(self), offsets, pa.py_buffer(self.stream))
        return pa.LargeStringArray.from_buffers(len(self), pa.py_buffer(self.offsets), pa.py_buffer(self.stream))


def id_strings(prefix: str, numbers: np.ndarray, width: int) -> pa.StringArray:
    """`PREFIX-000123` strings for many numbers, as an Arrow array."""
    return Rows(len(numbers)).text(prefix + "-").digits(numbers, width).build().strings()


def py_amount_text(cents: int) -> str:
    """The JSON number for one amount in cents (the per-row twin of Rows.amount)."""
    return json.dumps(round(cents / 100, 2))
