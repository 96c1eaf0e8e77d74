"""Reference data: Indonesian banks, cities (with coordinates), names, and the enumerations of the formats."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np


@dataclass(frozen=True)
class Bank:
    nama_bank: str
    singkatan: str
    kantor_pusat: str
    jenis_bank: str
    weight: float  # rough share of retail customers, for sampling


# The first ten are the seed's bank_info.txt, same order (so the same BANK-nnn ids and names).
BANKS: tuple[Bank, ...] = (
    Bank("Bank Rakyat Indonesia", "BRI", "Jakarta", "BUMN", 0.20),
    Bank("Bank Mandiri", "Mandiri", "Jakarta", "BUMN", 0.14),
    Bank("Bank Central Asia", "BCA", "Jakarta", "Swasta", 0.16),
    Bank("Bank Negara Indonesia", "BNI", "Jakarta", "BUMN", 0.10),
    Bank("Bank CIMB Niaga", "CIMB", "Jakarta", "Swasta", 0.05),
    Bank("Bank Danamon", "Danamon", "Jakarta", "Swasta", 0.03),
    Bank("Bank Permata", "Permata", "Jakarta", "Swasta", 0.03),
    Bank("Bank Panin", "Panin", "Jakarta", "Swasta", 0.02),
    Bank("Bank Tabungan Negara", "BTN", "Jakarta", "BUMN", 0.05),
    Bank("Bank Mega", "Mega", "Jakarta", "Swasta", 0.02),
    Bank("Bank Syariah Indonesia", "BSI", "Jakarta", "Syariah", 0.08),
    Bank("Bank Muamalat Indonesia", "Muamalat", "Jakarta", "Syariah", 0.02),
    Bank("Bank OCBC NISP", "OCBC NISP", "Jakarta", "Swasta", 0.03),
    Bank("Maybank Indonesia", "Maybank", "Jakarta", "Swasta", 0.03),
    Bank("Bank BTPN", "BTPN", "Jakarta", "Swasta", 0.04),
)

SEGMENTS: tuple[str, ...] = ("Standard", "Silver", "Gold", "Platinum", "Priority")
SEGMENT_WEIGHTS = np.array([0.45, 0.25, 0.15, 0.08, 0.07])
# Wealth multiplier per segment: scales balances and amount habits.
SEGMENT_WEALTH = np.array([1.0, 2.0, 4.0, 8.0, 16.0])

ACCOUNT_TYPES: tuple[str, ...] = ("Savings", "Checking", "Deposit", "Loan")
TX_TYPES: tuple[str, ...] = ("Transfer", "Payment", "Withdrawal", "Deposit")
STATUSES: tuple[str, ...] = ("Success", "Pending", "Failed")
CHANNELS: tuple[str, ...] = ("mobile", "internet_banking", "atm", "branch", "edc", "qris")

# Foreign currencies with an approximate IDR mid rate (amounts are written in the currency itself;
# the pipeline converts with real ECB/API rates, so these only shape realistic magnitudes). Only
# currencies the ECB publishes: the offline snapshot must be able to price every transaction.
CURRENCIES: tuple[str, ...] = ("IDR", "USD", "SGD", "EUR", "JPY", "AUD", "MYR", "CNY", "THB", "GBP", "HKD")
IDR_PER_UNIT = np.array([1.0, 16_000, 12_200, 17_400, 105, 10_400, 3_600, 2_200, 490, 20_700, 2_050])
FOREIGN_WEIGHTS = np.array([0.0, 0.38, 0.2, 0.08, 0.08, 0.08, 0.08, 0.04, 0.03, 0.02, 0.01])
# Currencies without minor units in practice (amounts are whole numbers).
WHOLE_UNIT_CURRENCIES = frozenset({"JPY"})


@dataclass(frozen=True)
class Cities:
    """The shipped city reference: one row per city/regency (`data/cities.csv`)."""

    kota: tuple[str, ...]
    provinsi: tuple[str, ...]
    latitude: np.ndarray
    longitude: np.ndarray
    population: np.ndarray  # thousands

    def __len__(self) -> int:
        return len(self.kota)


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("bankpipe.generate").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@lru_cache(maxsize=1)
def cities() -> Cities:
    """Real Indonesian cities across all 38 provinces with approximate coordinates and population."""
    rows = _read_csv("cities.csv")
    return Cities(
        kota=tuple(r["kota"] for r in rows),
        provinsi=tuple(r["provinsi"] for r in rows),
        latitude=np.array([float(r["latitude"]) for r in rows]),
        longitude=np.array([float(r["longitude"]) for r in rows]),
        population=np.array([float(r["populasi_ribu"]) for r in rows]),
    )


@lru_cache(maxsize=1)
def names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Indonesian first names and family names."""
    rows = _read_csv("names.csv")
    first = tuple(r["name"] for r in rows if r["kind"] == "first")
    last = tuple(r["name"] for r in rows if r["kind"] == "last")
    return first, last
