"""Fixtures shared by the integration tests of one stage and its robustness tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def landing(settings) -> Path:
    """The (new, empty) transactions landing folder of the test's state dir."""
    folder = settings.transactions_landing
    folder.mkdir(parents=True)
    return folder
