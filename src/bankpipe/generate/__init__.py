"""Synthetic bank data in the seed's exact formats, with planted fraud and defects and a separate ground truth.

from bankpipe.generate import GenerateConfig, generate
summary = generate(GenerateConfig(customers=1_000, transactions=50_000, days=30, seed=7, out=Path("data")))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bankpipe.generate.config import EXTENSIONS, DefectConfig, FraudConfig, GenerateConfig, GenerateConfigError
    from bankpipe.generate.core import GenerateSummary, generate
    from bankpipe.generate.follower import FollowSummary, follow
    from bankpipe.generate.mutator import MutationRates, MutationSummary, mutate

# Loaded on first use: `bankpipe --help` and every other command import the CLI module, which must
# not pay for numpy and pyarrow.
_EXPORTS = {
    "EXTENSIONS": "config",
    "DefectConfig": "config",
    "FraudConfig": "config",
    "GenerateConfig": "config",
    "GenerateConfigError": "config",
    "GenerateSummary": "core",
    "generate": "core",
    "FollowSummary": "follower",
    "follow": "follower",
    "MutationRates": "mutator",
    "MutationSummary": "mutator",
    "mutate": "mutator",
}
__all__ = [
    "EXTENSIONS",
    "DefectConfig",
    "FollowSummary",
    "FraudConfig",
    "GenerateConfig",
    "GenerateConfigError",
    "GenerateSummary",
    "MutationRates",
    "MutationSummary",
    "follow",
    "generate",
    "mutate",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"bankpipe.generate.{_EXPORTS[name]}"), name)
