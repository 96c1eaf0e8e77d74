"""Streamlit entry point: page setup, the global filters in the sidebar, navigation between pages.

Run with `bankpipe dashboard` (or `streamlit run app.py`); settings come from BANKPIPE_* as everywhere.
"""

from __future__ import annotations

import streamlit as st

from bankpipe.dashboard import auth, queries, ui
from bankpipe.errors import WarehouseBusyError
from bankpipe.settings import get_settings

PAGES = [
    ("views/overview.py", "Overview", ":material/monitoring:"),
    ("views/customers.py", "Customers", ":material/groups:"),
    ("views/fx.py", "FX exposure", ":material/currency_exchange:"),
    ("views/geography.py", "Geography", ":material/map:"),
    ("views/risk.py", "Risk & fraud", ":material/gpp_maybe:"),
    ("views/model.py", "Model", ":material/model_training:"),
    ("views/quality.py", "Data quality", ":material/fact_check:"),
]


def main() -> None:
    """Set the page up, draw the filters, run the selected page."""
    # An emoji favicon: a Material icon here would be fetched from a font CDN, and this runs offline.
    st.set_page_config(page_title="bankpipe", page_icon="🏦", layout="wide")
    auth.gate(get_settings())  # with BANKPIPE_DASHBOARD_AUTH=oidc, stops here until the viewer signed in
    pages = [st.Page(path, title=title, icon=icon, default=i == 0) for i, (path, title, icon) in enumerate(PAGES)]
    page = st.navigation(pages)
    queries.begin_run()
    notice = st.empty()  # above the page: filled after it, if the warehouse was busy while it ran
    ui.sidebar()
    try:
        with ui.shell():
            page.run()
    except WarehouseBusyError:
        # A pipeline step holds the DuckDB file and this page has no earlier results to show: a
        # notice, never an error (the viewer did nothing wrong, and the step will finish).
        ui.busy_page()
    finally:
        ui.busy_notice(notice)
        # After the page, not before: the import would compete with the page for the interpreter.
        queries.warm_registry(get_settings().mlflow_tracking_uri)


main()
