"""Measure dashboard page loads on an existing warehouse (not a test: run by hand).

    python bench/bench_dashboard_pages.py STATE_DIR [--rounds 2] [--no-browser]

Two numbers per page: the page script's run time in-process (Streamlit AppTest: the queries plus
building the figures), and the time a viewer waits in Chromium after clicking the page in the
navigation (script run, transfer, Plotly drawing). Round 1 runs on cold caches (in the browser: a
warmed-up server right after the warehouse changed; the file's mtime is touched for that), later
rounds are served from st.cache_data. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# The browser helpers live with the dashboard tests; run from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WARMUP_S = 10
TITLES = {
    "overview": "Overview",
    "customers": "Customers",
    "fx": "FX exposure",
    "geography": "Geography",
    "risk": "Risk & fraud",
    "model": "Model",
    "quality": "Data quality",
}


def script_times(state: Path, rounds: int) -> dict[str, list[float]]:
    """Seconds per page run in-process; round 1 on cold caches."""
    os.environ["BANKPIPE_STATE_DIR"] = str(state)
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from bankpipe.settings import get_settings
    from tests.dashboard.apptest import APP, RUN_TIMEOUT_S, problems

    get_settings.cache_clear()
    st.cache_data.clear()
    out: dict[str, list[float]] = {name: [] for name in TITLES}
    for _ in range(rounds):
        started = time.monotonic()
        at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S).run()  # the default page: Overview
        out["overview"].append(time.monotonic() - started)
        for name in list(TITLES)[1:]:
            started = time.monotonic()
            at.switch_page(f"views/{name}.py").run()
            out[name].append(time.monotonic() - started)
            assert not problems(at), (name, problems(at))
    return out


def browser_times(state: Path, rounds: int) -> dict[str, list[float]]:
    """Seconds from a click in the navigation until the page is drawn; round 1 on a fresh server."""
    from playwright.sync_api import sync_playwright

    from tests.dashboard.test_e2e import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, start, stop, wait_until_idle

    server = start(state, state.parent / "bench-dashboard.log")
    out: dict[str, list[float]] = {name: [] for name in TITLES}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(server.url + "/quality")  # start elsewhere, so the first click loads Overview
            wait_until_idle(page, "Data quality")
            # Let the start-up work (MLflow imported in the background) finish, then make every cached
            # result stale the way a pipeline write does: round 1 measures a running server after new data.
            time.sleep(WARMUP_S)
            warehouse = state / "warehouse.duckdb"
            os.utime(warehouse)
            for _ in range(rounds):
                for name, title in TITLES.items():
                    started = time.monotonic()
                    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
                    wait_until_idle(page, title)
                    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
                    out[name].append(time.monotonic() - started)
            browser.close()
    finally:
        stop(server)
    return out


def main() -> None:
    """Parse arguments, measure, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("state", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    script = script_times(args.state.resolve(), args.rounds)
    browser = None if args.no_browser else browser_times(args.state.resolve(), args.rounds)
    print("| page | script, cold (s) | script, cached (s) | browser, cold (s) | browser, cached (s) |")
    print("|---|---|---|---|---|")
    for name in TITLES:
        warm = statistics.median(script[name][1:]) if len(script[name]) > 1 else float("nan")
        row = [f"{script[name][0]:.2f}", f"{warm:.2f}"]
        if browser:
            bwarm = statistics.median(browser[name][1:]) if len(browser[name]) > 1 else float("nan")
            row += [f"{browser[name][0]:.2f}", f"{bwarm:.2f}"]
        else:
            row += ["–", "–"]
        print(f"| {name} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
