"""The dashboard behind an OIDC sign-in, for real: `bankpipe dashboard` with BANKPIPE_DASHBOARD_AUTH=oidc, a test
identity provider on 127.0.0.1, and Debian's headless Chromium clicking through st.login's redirects.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("authlib")  # st.login needs it

from bankpipe.dashboard import auth  # noqa: E402
from bankpipe.settings import Settings  # noqa: E402
from bankpipe.warehouse import connect  # noqa: E402
from tests.dashboard.oidc_provider import OIDCServer, Provider  # noqa: E402
from tests.dashboard.test_e2e import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGE_TIMEOUT_MS,
    START_TIMEOUT_S,
    VIEWPORT,
    Server,
    stop,
    wait_until_idle,
)
from tests.dashboard.warehouse import Built  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USER = {
    "sub": "u-0042",
    "email": "ana.risk@bank.example",
    "email_verified": True,
    "name": "Ana Risk",
    "groups": ["risk"],
}
CLIENT_ID = "bankpipe-dashboard"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _secrets_toml(redirect_uri: str, client_secret: str, metadata_url: str) -> str:
    """Streamlit's [auth] section, as a deployment writes it (kept outside the repository)."""
    values = {
        "redirect_uri": redirect_uri,
        "cookie_secret": secrets.token_urlsafe(32),
        "client_id": CLIENT_ID,
        "client_secret": client_secret,
        "server_metadata_url": metadata_url,
    }
    return "[auth]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


@pytest.fixture(scope="module")
def state(small_warehouse: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the small warehouse: the access log of this test goes into its own state dir."""
    state = tmp_path_factory.mktemp("auth-e2e") / "state"
    state.mkdir()
    for name in ("warehouse.duckdb", "mlflow.db"):
        if (small_warehouse.settings.state / name).exists():
            shutil.copy2(small_warehouse.settings.state / name, state / name)
    return state


@pytest.fixture(scope="module")
def idp_and_server(state: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Provider, Server, Path]]:
    """The test IdP, and `bankpipe dashboard` with oidc run from a directory holding .streamlit/secrets.toml."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    provider = Provider(CLIENT_ID, secrets.token_urlsafe(16), f"{url}/oauth2callback", USER)
    with OIDCServer(provider) as idp:
        cwd = tmp_path_factory.mktemp("auth-e2e-cwd")
        (cwd / ".streamlit").mkdir()
        (cwd / ".streamlit" / "secrets.toml").write_text(
            _secrets_toml(provider.redirect_uri, provider.client_secret, idp.metadata_url)
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("BANKPIPE_")}
        env.update(
            {
                "BANKPIPE_STATE_DIR": str(state),
                "BANKPIPE_DASHBOARD_AUTH": "oidc",
                "BANKPIPE_DASHBOARD_ALLOWED_DOMAINS": "bank.example",
                "NO_PROXY": "127.0.0.1,localhost",  # the token exchange goes to the IdP directly
            }
        )
        log = cwd / "dashboard.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bankpipe", "dashboard", "--port", str(port)],
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server(url, proc)
        try:
            _wait_healthy(server, log)
            yield provider, server, log
        finally:
            stop(server)


def _wait_healthy(server: Server, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"dashboard exited with {server.process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"dashboard did not answer within {START_TIMEOUT_S}s: {log.read_text()[-2000:]}")


def _clear_pii(state: Path) -> set[str]:
    with connect(Settings(_env_file=None, state_dir=state), read_only=True) as wh:  # type: ignore[call-arg]
        rows = wh.fetchall("select full_name, email from silver_pii.customers")
    return {v for row in rows for v in row if v}


def _visible_text(page: Page) -> str:
    return page.locator("body").inner_text()


def test_nothing_but_sign_in_until_the_bank_login_then_the_overview(
    idp_and_server: tuple[Provider, Server, Path], state: Path, tmp_path: Path
) -> None:
    provider, server, log = idp_and_server
    pii = _clear_pii(state)
    assert len(pii) > 200
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            # Signed out, on the home page and straight on a page's URL: only the sign-in.
            for path in ("", "customers", "risk"):
                page.goto(f"{server.url}/{path}")
                page.get_by_role("button", name="Sign in").wait_for(timeout=PAGE_TIMEOUT_MS)
                wait_until_idle(page)
                text = _visible_text(page)
                assert "Sign in with your bank account" in text, path
                assert page.locator("h1").count() == 0, f"/{path}: a page title showed before sign-in"
                assert (
                    page.locator(".js-plotly-plot, [data-testid='stMetric'], [data-testid='stDataFrame']").count() == 0
                )
                assert (
                    page.locator("[data-testid='stSidebarUserContent']").count() == 0
                    or not page.locator("[data-testid='stSidebarUserContent']").inner_text().strip()
                )
                assert sorted(v for v in pii if v in text) == [], f"/{path}: clear customer data before sign-in"
                assert "IDR" not in text and "Transactions" not in text, f"/{path}: figures before sign-in"
            page.screenshot(path=str(tmp_path / "signed-out.png"))
            assert provider.requests.count("GET /authorize") == 0

            # Sign in: Streamlit → the IdP's /authorize → /oauth2callback (code exchanged server-side) → home.
            page.get_by_role("button", name="Sign in").click()
            page.locator("h1", has_text="Overview").first.wait_for(timeout=PAGE_TIMEOUT_MS)
            wait_until_idle(page, "Overview")
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=PAGE_TIMEOUT_MS)
            assert f"Signed in as {USER['email']}" in _visible_text(page)
            assert page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").count() == 0
            page.screenshot(path=str(tmp_path / "signed-in.png"))
        finally:
            browser.close()

    assert provider.errors == []
    # The real authorization-code flow ran: discovery, one authorize, one code exchange, keys fetched.
    assert provider.requests.count("GET /authorize") == 1
    assert provider.requests.count("POST /token") == 1
    assert "GET /jwks" in provider.requests
    entries = [json.loads(line) for line in (state / "logs" / auth.ACCESS_LOG).read_text().splitlines()]
    assert [(e["event"], e["email"], e["sub"]) for e in entries] == [("sign-in", USER["email"], USER["sub"])]
    # No token the IdP issued reached the access log or the dashboard's output.
    written = (state / "logs" / auth.ACCESS_LOG).read_text() + log.read_text(errors="replace")
    assert provider.issued_tokens and not [t for t in provider.issued_tokens if t in written]
