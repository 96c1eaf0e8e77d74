"""Dashboard fixtures: a small real warehouse (built once per session), empty ones, and an AppTest factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st

from bankpipe.settings import Settings, get_settings
from bankpipe.warehouse import connect
from tests.dashboard import warehouse


@pytest.fixture(scope="session")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory) -> warehouse.Built:
    """Generated data → stream ingest → dbt → two model versions: every table the dashboard reads."""
    return warehouse.build(tmp_path_factory.mktemp("dashboard-small"))


@pytest.fixture
def use_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], Settings]]:
    """Point BANKPIPE_* at a state dir for the app under test (AppTest runs it in this process)."""

    def use(state: Path) -> Settings:
        monkeypatch.setenv("BANKPIPE_STATE_DIR", str(state))
        for name in ("BANKPIPE_WAREHOUSE_PATH", "BANKPIPE_MLFLOW_URI", "BANKPIPE_LANDING_DIR", "BANKPIPE_WAREHOUSE"):
            monkeypatch.delenv(name, raising=False)
        get_settings.cache_clear()
        st.cache_data.clear()  # results of another warehouse must not leak into this test
        return get_settings()

    yield use
    get_settings.cache_clear()
    st.cache_data.clear()


@pytest.fixture
def small_app(small_warehouse: warehouse.Built, use_state: Callable[[Path], Settings]) -> Settings:
    """Settings of the small warehouse, active for the app."""
    return use_state(small_warehouse.settings.state)


@pytest.fixture(params=["no_warehouse", "schemas_only"])
def empty_app(request: pytest.FixtureRequest, tmp_path: Path, use_state: Callable[[Path], Settings]) -> Settings:
    """No warehouse file at all, or one with bronze/ops schemas but nothing loaded or transformed."""
    settings = use_state(tmp_path / "state")
    if request.param == "schemas_only":
        connect(settings).close()
    return settings
