"""Snowflake emulated by fakesnow: in-process (`fakesnow.patch()`) for the loaders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bankpipe.settings import Settings

fakesnow = pytest.importorskip("fakesnow")


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject.toml; registered here so this folder runs under --strict-markers alone.
    config.addinivalue_line("markers", "snowflake_emulated: Snowflake path verified against the fakesnow emulator")


# A value that must never appear in a log line or an error message.
PASSWORD = "s3cr3t-Hunter2-not-for-logs"


def snowflake_settings(settings: Settings) -> Settings:
    """The same settings pointed at Snowflake (own state dir, so DuckDB and Snowflake runs stay apart)."""
    return settings.model_copy(
        update={
            "warehouse": "snowflake",
            "state_dir": settings.state / "snowflake-run",
            "snowflake_account": "fakesnow",
            "snowflake_user": "bankpipe_loader",
            "snowflake_password": SecretStr(PASSWORD),
            "snowflake_warehouse": "BANKPIPE_WH",
            "snowflake_role": "BANKPIPE_LOADER",
            "snowflake_database": "BANKING_DB",
        }
    )


@pytest.fixture
def emulator() -> Iterator[None]:
    """A fresh in-process Snowflake emulator for one test."""
    with fakesnow.patch():
        yield


@pytest.fixture
def sf_settings(settings: Settings, emulator: None) -> Settings:
    return snowflake_settings(settings)
