"""PII on the dashboard: no page shows a clear name or e-mail unless BANKPIPE_DASHBOARD_SHOW_PII, which is logged."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bankpipe.settings import Settings
from bankpipe.warehouse import connect
from tests.dashboard.apptest import PAGES, charts, open_page, problems
from tests.dashboard.warehouse import Built

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def pii_state(small_warehouse: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the small warehouse: unmasking writes its audit row into ops, not into the shared one."""
    state = tmp_path_factory.mktemp("pii-dashboard") / "state"
    state.mkdir()
    for name in ("warehouse.duckdb", "mlflow.db"):
        if (small_warehouse.settings.state / name).exists():
            shutil.copy2(small_warehouse.settings.state / name, state / name)
    return state


def clear_values(settings: Settings) -> dict[str, set[str]]:
    """Every customer's clear full name and e-mail, from the one place that has them."""
    with connect(settings, read_only=True) as wh:
        rows = wh.fetchall("select full_name, email from silver_pii.customers")
    return {"names": {r[0] for r in rows if r[0]}, "emails": {r[1] for r in rows if r[1]}}


def page_content(at: object) -> str:
    """What a page shows: every text element, every table cell and every chart's data and labels."""
    parts = [
        str(el.value)
        for kind in (
            "markdown",
            "caption",
            "info",
            "success",
            "warning",
            "error",
            "title",
            "header",
            "subheader",
            "metric",
            "text",
            "code",
        )
        for el in getattr(at, kind)
    ]
    parts += [frame.value.to_csv() for frame in at.dataframe]  # type: ignore[attr-defined]
    parts += [t.value.to_csv() for t in at.table]  # type: ignore[attr-defined]
    parts.append(json.dumps(charts(at)))
    return "\n".join(parts)


@pytest.mark.parametrize("page", PAGES)
def test_no_page_shows_a_clear_name_or_email_by_default(
    pii_state: Path, use_state: Callable[[Path], Settings], page: str
) -> None:
    settings = use_state(pii_state)
    clear = clear_values(settings)
    assert len(clear["names"]) > 100 and len(clear["emails"]) > 100
    at = open_page(page)
    assert not problems(at) or page == "quality", problems(at)
    content = page_content(at)
    assert len(content) > 200  # the page rendered data, so finding nothing means something
    leaked = sorted(v for v in clear["names"] | clear["emails"] if v in content)
    assert leaked == []


def test_show_pii_unmasks_the_customer_page_from_silver_pii_and_logs_it(
    pii_state: Path,
    use_state: Callable[[Path], Settings],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("BANKPIPE_DASHBOARD_SHOW_PII", "true")
    settings = use_state(pii_state)
    assert settings.dashboard_show_pii
    clear = clear_values(settings)
    with caplog.at_level(logging.WARNING, logger="bankpipe"):
        at = open_page("customers")
    assert not problems(at), problems(at)
    top = at.dataframe[0].value
    assert len(top) > 0 and set(top["full_name"]) <= clear["names"] and set(top["email"]) <= clear["emails"]
    assert any("BANKPIPE_DASHBOARD_SHOW_PII" in str(w.value) for w in at.warning)
    unmasked = [r for r in caplog.records if r.levelno == logging.WARNING and "PII unmasked" in r.getMessage()]
    assert len(unmasked) == 1 and "customers page" in unmasked[0].getMessage()
    with connect(settings, read_only=True) as wh:
        rows = wh.fetchall("select viewer, page, clear_rows, setting from ops.pii_access")
    assert rows and rows[-1][1:] == ("customers", len(top), "BANKPIPE_DASHBOARD_SHOW_PII")
    assert rows[-1][0]  # who looked
    # Shown again from Streamlit's cache (another session, a rerun): recorded again all the same.
    at.run()
    with connect(settings, read_only=True) as wh:
        again = wh.fetchall("select page from ops.pii_access")
    assert len(again) == len(rows) + 1


def test_show_pii_without_access_to_silver_pii_stays_masked_and_says_so(
    pii_state: Path,
    tmp_path: Path,
    use_state: Callable[[Path], Settings],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As a Snowflake login without BANKPIPE_PII_READER sees it: no silver_pii at all.
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy2(pii_state / "warehouse.duckdb", state / "warehouse.duckdb")
    clear = clear_values(Settings(state_dir=state))
    with connect(Settings(state_dir=state)) as wh:
        wh.execute("drop schema silver_pii cascade")
    monkeypatch.setenv("BANKPIPE_DASHBOARD_SHOW_PII", "true")
    use_state(state)
    with caplog.at_level(logging.WARNING, logger="bankpipe"):
        at = open_page("customers")
    assert not problems(at), problems(at)
    top = at.dataframe[0].value
    assert len(top) > 0 and not set(top["full_name"]) & clear["names"]
    assert all("*****" in n for n in top["full_name"])
    assert any("not readable" in str(w.value) for w in at.warning)
    assert not [r for r in caplog.records if "PII unmasked" in r.getMessage()]
