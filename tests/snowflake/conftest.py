"""Snowflake emulated by fakesnow: in-process (`fakesnow.patch()`) for the loaders, server mode for dbt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bankpipe.settings import Settings
from tests.snowflake import gold

fakesnow = pytest.importorskip("fakesnow")


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject.toml; registered here so this folder runs under --strict-markers alone.
    config.addinivalue_line("markers", "snowflake_emulated: Snowflake path verified against the fakesnow emulator")


# A value that must never appear in a log line or an error message.
PASSWORD = "s3cr3t-Hunter2-not-for-logs"
# The customer pseudonym key of both builds (DuckDB and the emulator), so their pseudonyms compare equal.
PII_KEY = "9c1e6f0a7b3d4e5f8a2b6c0d1e7f3a9b"


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
            "pii_key": SecretStr(PII_KEY),
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


@pytest.fixture(scope="package")
def emulator_server() -> Iterator[dict[str, Any]]:
    """fakesnow in server mode (HTTP on 127.0.0.1), up for the whole package: it holds the built gold."""
    with fakesnow.server() as conn_kwargs:
        yield conn_kwargs


@pytest.fixture(scope="package")
def gold_pair(
    sample_dir: Path, emulator_server: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[gold.Built]:
    """The same input built into DuckDB and into fakesnow with dbt (about a minute): shared, never built twice."""
    pytest.importorskip("dbt.adapters.snowflake")
    from tests.conftest import fresh_database

    with fresh_database() as url:
        yield gold.build(tmp_path_factory.mktemp("gold-pair"), sample_dir, url, emulator_server)


@pytest.fixture
def on_emulator(gold_pair: gold.Built, monkeypatch: pytest.MonkeyPatch) -> gold.Built:
    """The built pair, with SnowflakeWarehouse pointed at the emulator for this test."""
    gold.point_at_emulator(gold_pair.server, monkeypatch)
    return gold_pair
