"""End to end: the dashboard served on 127.0.0.1, driven by Debian's headless Chromium through Playwright.

Opens every page, asserts there is no error and at least one drawn chart, that the browser asked
nothing of any host but the dashboard (the map must render offline), and saves a screenshot of
each page to build/screenshots/; `make screenshots` (BANKPIPE_WRITE_SCREENSHOTS=1) writes the tracked
docs/screenshots/ instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

from bankpipe.dashboard import ui  # noqa: E402  (after the skip: without Playwright there is nothing to run)
from bankpipe.warehouse import connect  # noqa: E402
from tests.dashboard.warehouse import Built  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# Streamlit scrolls an inner container, so a full-page screenshot would cut; a tall viewport does not.
VIEWPORT = {"width": 1400, "height": 2400}
# The tracked images change only when asked for: every other run would rewrite them with new pixels.
_REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = (
    _REPO / "docs" / "screenshots"
    if os.environ.get("BANKPIPE_WRITE_SCREENSHOTS") == "1"
    else _REPO / "build" / "screenshots"
)
# (url path, page title, screenshot name): the URL paths st.navigation derives from the page files.
PAGES = [
    ("", "Overview", "1-overview"),
    ("customers", "Customers", "2-customers"),
    ("fx", "FX exposure", "3-fx-exposure"),
    ("geography", "Geography", "4-geography"),
    ("risk", "Risk & fraud", "5-risk-and-fraud"),
    ("model", "Model", "6-model"),
    ("quality", "Data quality", "7-data-quality"),
]
START_TIMEOUT_S = 60
PAGE_TIMEOUT_MS = 90_000
ERRORS = "[data-testid='stException'], [data-testid='stAlertContentError']"


@dataclass
class Server:
    """A running dashboard and the requests its pages made to other hosts."""

    url: str
    process: subprocess.Popen[bytes]
    foreign_requests: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dashboard_command(port: int) -> list[str]:
    """`bankpipe dashboard --port N` once the CLI has it, else the same serve() through the module."""
    from bankpipe.cli import app

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    if "dashboard" in names:
        return [sys.executable, "-m", "bankpipe", "dashboard", "--port", str(port)]
    return [sys.executable, "-m", "bankpipe.dashboard", "--port", str(port)]


def start(state: Path, log: Path) -> Server:
    """Start the dashboard on a free port for `state` and wait until it answers."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKPIPE_")}
    env["BANKPIPE_STATE_DIR"] = str(state)
    with log.open("wb") as out:
        proc = subprocess.Popen(_dashboard_command(port), env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dashboard exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as resp:
                if resp.status == 200:
                    return Server(url, proc)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"dashboard did not answer within {START_TIMEOUT_S}s: {log.read_text()[-2000:]}")


def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # "pid (comm) state ppid ..."
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(stat.parent.name))
    return found


def stop(server: Server) -> None:
    """SIGTERM the dashboard, as a supervisor would, and check that Streamlit did not outlive it."""
    children = _children(server.process.pid)
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    deadline = time.monotonic() + 30
    left = children
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [pid for pid in left if Path(f"/proc/{pid}").exists()]
    for pid in left:  # clean up before failing, so no server outlives the test run
        os.kill(pid, 9)
    assert not left, f"streamlit process(es) {left} outlived `bankpipe dashboard`"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run must `apt-get install -y chromium`")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(small_warehouse: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start(small_warehouse.settings.state, tmp_path_factory.mktemp("e2e") / "dashboard.log")
    yield srv
    stop(srv)


def new_page(browser: Browser, server: Server) -> Page:
    page = browser.new_page(viewport=VIEWPORT)

    def record(request: Request) -> None:
        url = request.url
        host = urlparse(url).hostname
        if url.startswith(("http:", "https:", "ws:", "wss:")) and host not in {"127.0.0.1", "localhost"}:
            server.foreign_requests.append(url)

    page.on("request", record)
    return page


def wait_until_idle(page: Page, title: str | None = None) -> None:
    """Wait for the page's title (the run has reached the page) and for the script run to finish."""
    page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=PAGE_TIMEOUT_MS)
    if title:
        page.locator("h1", has_text=title).first.wait_for(timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=PAGE_TIMEOUT_MS)


def test_every_page_renders_charts_offline(browser: Browser, server: Server) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page(browser, server)
    timings = {}
    for path, title, name in PAGES:
        started = time.monotonic()
        page.goto(f"{server.url}/{path}")
        wait_until_idle(page, title)
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=PAGE_TIMEOUT_MS)
        timings[name] = time.monotonic() - started
        assert page.locator(ERRORS).count() == 0, f"{name}: " + page.locator(ERRORS).first.inner_text()
        assert page.locator(".js-plotly-plot").count() >= 1, name
        page.wait_for_timeout(800)  # let Plotly finish its transitions
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    # The map draws its own coastline: nothing may come from a CDN, a font server or a tile server.
    assert server.foreign_requests == [], server.foreign_requests
    print("page load (s):", {k: round(v, 2) for k, v in timings.items()})


def test_filters_follow_the_viewer_across_pages(browser: Browser, server: Server, small_warehouse: Built) -> None:
    with connect(small_warehouse.settings, read_only=True) as wh:
        (province,) = wh.fetchall(
            "select l.province from gold.fact_transaction_enriched f join gold.dim_locations l using (location_key)"
            " group by 1 order by count(*) desc limit 1"
        )[0]
    page = new_page(browser, server)
    page.goto(server.url)
    wait_until_idle(page, "Overview")
    box = page.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']").nth(2)
    box.click()
    page.keyboard.type(province)
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    wait_until_idle(page)
    page.locator("[data-testid='stSidebarNav'] a", has_text="Geography").first.click()
    page.wait_for_url("**/geography", timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page, "Geography")
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=PAGE_TIMEOUT_MS)
    assert page.get_by_text(f"province: {province}").count() >= 1
    assert page.locator(ERRORS).count() == 0


def test_alert_link_opens_the_transaction_history(browser: Browser, server: Server, small_warehouse: Built) -> None:
    with connect(small_warehouse.settings, read_only=True) as wh:
        (alert, account) = wh.fetchall(
            "select a.transaction_id, a.account_id from gold.fraud_alerts a order by a.score desc limit 1"
        )[0]
    page = new_page(browser, server)
    page.goto(f"{server.url}/risk?transaction={alert}")
    wait_until_idle(page, "Risk & fraud")
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=PAGE_TIMEOUT_MS)
    assert page.get_by_text(f"Account {account}: transactions within 14 days").count() >= 1
    assert page.locator(ERRORS).count() == 0


def test_empty_warehouse_shows_the_empty_state(browser: Browser, tmp_path: Path) -> None:
    srv = start(tmp_path / "state", tmp_path / "dashboard.log")
    try:
        page = new_page(browser, srv)
        page.goto(srv.url)
        wait_until_idle(page, "Overview")
        page.get_by_text(ui.EMPTY.split("`")[0].strip()).first.wait_for(timeout=PAGE_TIMEOUT_MS)
        assert page.locator(ERRORS).count() == 0
        assert srv.foreign_requests == []
    finally:
        stop(srv)
