"""The global filters (date range, bank, segment, province): their state, sidebar widgets and SQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

# Session-state keys of the sidebar widgets (app.py draws them; every page reads them).
KEY_DATES = "filter_dates"
KEY_BANKS = "filter_banks"
KEY_SEGMENTS = "filter_segments"
KEY_PROVINCES = "filter_provinces"

# The default window: the latest days of data, so that the KPIs have a previous period to compare with.
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Filters:
    """What the viewer selected; empty tuples mean "all". Hashable, so it can key cached queries."""

    start: date | None = None
    end: date | None = None
    banks: tuple[str, ...] = ()  # bank keys
    segments: tuple[str, ...] = ()  # customer segments (current version)
    provinces: tuple[str, ...] = ()  # province names

    @property
    def days(self) -> int:
        """Length of the date range in days (0 without a range)."""
        return (self.end - self.start).days + 1 if self.start and self.end else 0

    @property
    def narrows_entities(self) -> bool:
        """Whether a bank, segment or province filter is set (pre-aggregated marts cannot honour those)."""
        return bool(self.banks or self.segments or self.provinces)

    def previous(self) -> Filters:
        """The same filters over the period of equal length just before this one."""
        if not (self.start and self.end):
            return self
        length = timedelta(days=self.days)
        return replace(self, start=self.start - length, end=self.end - length)

    def transactions(self, alias: str = "f") -> tuple[str, list[Any]]:
        """A WHERE condition on gold.fact_transaction_enriched (or a table with its keys) and its parameters.

        Province means where the transaction happened, or the customer's home when the source did
        not say: the same placement mart_geo_activity uses, so map and filter agree.
        """
        parts: list[str] = []
        params: list[Any] = []
        if self.start and self.end:
            parts.append(f"{alias}.transaction_date between ? and ?")
            params += [self.start, self.end]
        if self.banks:
            parts.append(f"{alias}.bank_key in ({_marks(self.banks)})")
            params += list(self.banks)
        if self.segments:
            parts.append(
                f"{alias}.customer_key in (select customer_key from gold.dim_customers"
                f" where is_current and segment in ({_marks(self.segments)}))"
            )
            params += list(self.segments)
        if self.provinces:
            locations = f"select location_key from gold.dim_locations where province in ({_marks(self.provinces)})"
            parts.append(
                f"({alias}.location_key in ({locations}) or ({alias}.location_key = '-1' and {alias}.customer_key in"
                f" (select customer_key from gold.dim_customers where is_current and location_key in ({locations}))))"
            )
            params += list(self.provinces) * 2
        return (" and ".join(parts) or "true"), params

    def customers(self, alias: str = "c") -> tuple[str, list[Any]]:
        """A WHERE condition on current gold.dim_customers rows (bank, segment, home province)."""
        parts: list[str] = []
        params: list[Any] = []
        if self.banks:
            parts.append(f"{alias}.bank_key in ({_marks(self.banks)})")
            params += list(self.banks)
        if self.segments:
            parts.append(f"{alias}.segment in ({_marks(self.segments)})")
            params += list(self.segments)
        if self.provinces:
            parts.append(
                f"{alias}.location_key in (select location_key from gold.dim_locations"
                f" where province in ({_marks(self.provinces)}))"
            )
            params += list(self.provinces)
        return (" and ".join(parts) or "true"), params

    def dates(self, column: str) -> tuple[str, list[Any]]:
        """A WHERE condition keeping `column` (a date) inside the range."""
        if not (self.start and self.end):
            return "true", []
        return f"{column} between ? and ?", [self.start, self.end]

    def describe(self, quote: Callable[[str], str] = str) -> str:
        """One line naming the active filters, for captions; `quote` renders each value (they are data)."""
        bits = [f"{self.start} → {self.end}"] if self.start and self.end else ["all dates"]
        for label, values in (("bank", self.banks), ("segment", self.segments), ("province", self.provinces)):
            if values:
                bits.append(f"{label}: {', '.join(quote(v) for v in values)}")
        return " · ".join(bits)


def _marks(values: tuple[str, ...]) -> str:
    return ", ".join("?" for _ in values)


def default_range(first: date | None, last: date | None, days: int = DEFAULT_DAYS) -> tuple[date, date] | None:
    """The last `days` of data (all of it when there is less)."""
    if first is None or last is None:
        return None
    return max(first, last - timedelta(days=days - 1)), last


def from_state(state: Any) -> Filters:
    """Build Filters from Streamlit's session state (tolerates a half-picked date range)."""
    picked = state.get(KEY_DATES) or ()
    start = end = None
    if isinstance(picked, tuple | list) and len(picked) == 2:
        start, end = picked
    elif isinstance(picked, tuple | list) and len(picked) == 1:
        start = end = picked[0]  # the viewer has clicked the first day only
    return Filters(
        start=start,
        end=end,
        banks=tuple(state.get(KEY_BANKS) or ()),
        segments=tuple(state.get(KEY_SEGMENTS) or ()),
        provinces=tuple(state.get(KEY_PROVINCES) or ()),
    )
