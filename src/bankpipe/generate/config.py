"""What to generate: sizes, period, seed, output folders, and the fraud / defect / extension knobs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

from bankpipe.errors import BankpipeError

# Optional stream fields beyond the seed's eight (DESIGN.md "Stream files"); order is file order.
EXTENSIONS: tuple[str, ...] = ("mata_uang", "channel", "location_id")


_FRAUD_SHARES = (
    "card_testing_start",
    "takeover_night_share",
    "takeover_known_payee_share",
    "takeover_home_share",
    "takeover_near_habit_share",
    "large_near_habit_share",
    "travel_accounts",
    "one_off_large",
    "night_new_payee",
)


class GenerateConfigError(BankpipeError):
    """A generator setting is out of range; the message names the setting."""


@dataclass(frozen=True)
class FraudConfig:
    """Planted fraud, its legitimate look-alikes, and how labels arrive.

    Every number here is a design choice, stated as such: none was adjusted until a model reached
    some published score on this data (docs/ml.md, "Data: what the generator plants").
    """

    # 0.5 % of transactions: inside the "well under 1 %" that card and payment fraud data sets report.
    rate: float = 0.005
    # Scenario mix (normalised): an amount above the account's habit; account takeover (bursts of
    # transfers out of a taken-over account); a compromised ATM/EDC point for 14–28 days; card
    # testing (small payments, then a large one), which only starts part-way through the period.
    large_amount: float = 0.35
    account_takeover: float = 0.3
    compromised_point: float = 0.2
    card_testing: float = 0.15
    # Card testing starts at this share of the period's days (before it: none at all).
    card_testing_start: float = 0.6
    # Share of compromised-point transactions that are fraud inside the window ("elevated", not all).
    compromised_fraud_share: float = 0.5
    # Account takeover: share of bursts at night (00–05 WIB; the rest in daytime), share sent to a
    # payee the victim already had (a mule among its regular counterparties), share made from the
    # victim's home city (malware on the victim's own phone), share that moves amounts near the
    # victim's habit instead of draining a part of the balance.
    takeover_night_share: float = 0.55
    takeover_known_payee_share: float = 0.25
    takeover_home_share: float = 0.35
    takeover_near_habit_share: float = 0.3
    # Large amounts: share only 2–5x the habit (the rest 5–50x, log-uniform).
    large_near_habit_share: float = 0.35
    # Hard legitimate cases (each fraud rule has look-alikes): accounts that travel per 30 days (2–7
    # days mostly in another city); one-off purchases 3–30x the habit (share of transactions); share
    # of night-time transfers that go to a new payee.
    travel_accounts: float = 0.04
    one_off_large: float = 0.002
    night_new_payee: float = 0.4
    # Share of fraud the bank eventually learns about; the rest is never reported.
    report_share: float = 0.9
    # Customers also dispute legitimate transactions: false reports per true report.
    false_report_share: float = 0.03

    def mix(self) -> dict[str, float]:
        """Scenario shares normalised to sum 1 (all zero means no fraud)."""
        raw = {
            "large_amount": self.large_amount,
            "account_takeover": self.account_takeover,
            "compromised_point": self.compromised_point,
            "card_testing": self.card_testing,
        }
        total = sum(raw.values())
        return {k: (v / total if total > 0 else 0.0) for k, v in raw.items()}

    def card_testing_first_day(self, days: int) -> int:
        """First day (0-based) of the period with card testing; `days` or more means none in it."""
        return math.ceil(self.card_testing_start * days)


@dataclass(frozen=True)
class DefectConfig:
    """Planted data defects in the stream files; record rates are shares of transactions, file rates of files."""

    duplicate_records: float = 0.002
    missing_fields: float = 0.001
    malformed_values: float = 0.001
    orphan_accounts: float = 0.002
    duplicate_files: float = 0.01
    late_files: float = 0.01
    truncated_files: int = 1

    @classmethod
    def none(cls) -> DefectConfig:
        """No defects at all: clean, seed-shaped files."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)

    def record_rates(self) -> dict[str, float]:
        """Per-record defect rates by defect name."""
        return {
            "duplicate_record": self.duplicate_records,
            "missing_field": self.missing_fields,
            "malformed_value": self.malformed_values,
            "orphan_account": self.orphan_accounts,
        }


@dataclass(frozen=True)
class GenerateConfig:
    """Everything `generate()` needs; defaults give a laptop-sized demo dataset."""

    customers: int = 1_000
    accounts_per_customer: int = 3  # maximum; each customer gets 1..this many
    transactions: int = 50_000
    days: int = 30
    start_date: date = date(2025, 12, 1)
    seed: int = 42
    out: Path = Path("generated")
    # Where stream files go instead of <out>/stream_source (e.g. the landing folder for `run --demo`).
    stream_out: Path | None = None
    records_per_file: int | None = None  # None: derived from stream_files, else automatic
    stream_files: int | None = None
    foreign_currency_share: float = 0.04
    extensions: tuple[str, ...] = EXTENSIONS
    fraud: FraudConfig = field(default_factory=FraudConfig)
    defects: DefectConfig = field(default_factory=DefectConfig)
    # Delete earlier generated files in the output folders first (never the ground truth of mutate).
    clean: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if isinstance(self.start_date, str):
            try:
                object.__setattr__(self, "start_date", date.fromisoformat(self.start_date))
            except ValueError:
                raise GenerateConfigError(f"start_date {self.start_date!r} is not a YYYY-MM-DD date") from None
        if self.stream_out is not None:
            object.__setattr__(self, "stream_out", Path(self.stream_out))
        object.__setattr__(self, "extensions", tuple(self.extensions))
        self.validate()

    def validate(self) -> None:
        """Raise GenerateConfigError naming the first setting that is out of range."""
        checks: list[tuple[bool, str]] = [
            (self.customers >= 1, f"customers must be >= 1 (got {self.customers})"),
            (
                1 <= self.accounts_per_customer <= 10,
                f"accounts_per_customer must be 1..10 (got {self.accounts_per_customer})",
            ),
            (self.transactions >= 0, f"transactions must be >= 0 (got {self.transactions})"),
            (1 <= self.days <= 3660, f"days must be 1..3660 (got {self.days})"),
            (self.records_per_file is None or self.records_per_file >= 1, "records_per_file must be >= 1"),
            (self.stream_files is None or self.stream_files >= 1, "stream_files must be >= 1"),
            (0.0 <= self.foreign_currency_share <= 1.0, "foreign_currency_share must be within 0..1"),
            (0.0 <= self.fraud.rate <= 0.2, f"fraud rate must be within 0..0.2 (got {self.fraud.rate})"),
            (0.0 <= self.fraud.report_share <= 1.0, "fraud report_share must be within 0..1"),
            (0.0 < self.fraud.compromised_fraud_share <= 1.0, "fraud compromised_fraud_share must be within (0, 1]"),
            *((0.0 <= getattr(self.fraud, name) <= 1.0, f"fraud {name} must be within 0..1") for name in _FRAUD_SHARES),
            (self.fraud.one_off_large <= 0.05, "fraud one_off_large must be within 0..0.05"),
            (self.defects.truncated_files >= 0, "truncated_files must be >= 0"),
        ]
        unknown = [e for e in self.extensions if e not in EXTENSIONS]
        checks.append((not unknown, f"unknown extension field(s) {unknown}; known: {', '.join(EXTENSIONS)}"))
        for name, rate in self.defects.record_rates().items():
            checks.append((0.0 <= rate <= 0.05, f"{name} rate must be within 0..0.05 (got {rate})"))
        for name in ("duplicate_files", "late_files"):
            rate = getattr(self.defects, name)
            checks.append((0.0 <= rate <= 0.5, f"{name} rate must be within 0..0.5 (got {rate})"))
        for ok, message in checks:
            if not ok:
                raise GenerateConfigError(message)

    @property
    def batch_dir(self) -> Path:
        return self.out / "batch_source"

    @property
    def stream_dir(self) -> Path:
        return self.stream_out if self.stream_out is not None else self.out / "stream_source"

    @property
    def truth_dir(self) -> Path:
        return self.out / "ground_truth"

    def resolved_records_per_file(self) -> int:
        """Records per stream file: explicit, else from stream_files, else ~200 files capped at 20k records."""
        if self.records_per_file is not None:
            return self.records_per_file
        if self.stream_files is not None:
            return max(1, math.ceil(max(self.transactions, 1) / self.stream_files))
        return min(20_000, max(20, math.ceil(self.transactions / 200)))

    def with_(self, **changes: Any) -> GenerateConfig:
        """A copy with some settings changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly settings for the ground-truth summary (paths as given, date ISO)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, FraudConfig | DefectConfig):
                value = asdict(value)
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, date):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        out["records_per_file"] = self.resolved_records_per_file()
        return out
