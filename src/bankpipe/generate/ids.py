"""Entity ids in the seed's pattern (`CUST-0001`), zero-padded to one width per entity and run."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

PREFIX: dict[str, str] = {
    "location": "LOC",
    "bank": "BANK",
    "customer": "CUST",
    "account": "ACC",
    "transaction": "TRX",
}

# The seed's widths; a run only ever widens them, never narrows.
MIN_WIDTH: dict[str, int] = {"location": 3, "bank": 3, "customer": 4, "account": 5, "transaction": 6}

_ID_RE = re.compile(r"^([A-Z]+)-(\d+)$")


def capacity(count: int) -> int:
    """Highest id number a run may use for `count` entities: headroom for `--mutate` and `--follow`."""
    # Sized so a mutated or followed dataset keeps one width for weeks of simulated days, while
    # seed-sized runs keep the seed's widths (15 customers -> 115 -> still 4 digits).
    return count + count // 10 + 100


def id_width(entity: str, max_number: int) -> int:
    """Digits needed so that ids up to `max_number` fit, never below the seed's width."""
    return max(MIN_WIDTH[entity], len(str(max(max_number, 0))))


def format_id(entity: str, number: int, width: int) -> str:
    """One id, e.g. `format_id("customer", 7, 4) == "CUST-0007"`."""
    return f"{PREFIX[entity]}-{number:0{width}d}"


def format_ids(entity: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Many ids at once, as an Arrow string array (vectorised)."""
    from bankpipe.generate.render import id_strings

    return id_strings(PREFIX[entity], np.asarray(numbers, dtype=np.int64), width)


def parse_id(value: str) -> tuple[str, int, int]:
    """Split `CUST-0007` into (prefix, number, width); ValueError when it is not in the pattern."""
    match = _ID_RE.match(value)
    if not match:
        raise ValueError(f"not an id in the seed pattern: {value!r}")
    return match.group(1), int(match.group(2)), len(match.group(2))


@dataclass(frozen=True)
class IdWidths:
    """The width used for each entity in one run (every file and table uses the same)."""

    location: int
    bank: int
    customer: int
    account: int
    transaction: int

    @classmethod
    def for_counts(cls, *, locations: int, banks: int, customers: int, accounts: int, transactions: int) -> IdWidths:
        """Widths for a run of these sizes, with headroom (see `capacity`)."""
        return cls(
            location=id_width("location", capacity(locations)),
            bank=id_width("bank", capacity(banks)),
            customer=id_width("customer", capacity(customers)),
            account=id_width("account", capacity(accounts)),
            transaction=id_width("transaction", capacity(transactions)),
        )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
