"""Helpers for Streamlit AppTest runs of the dashboard: open a page, read its charts."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from streamlit.testing.v1 import AppTest

import bankpipe.dashboard

APP = bankpipe.dashboard.APP
PAGES = ("overview", "customers", "fx", "geography", "risk", "model", "quality")
# A page's first run imports pandas, Plotly and MLflow in-process: generous, but bounded.
RUN_TIMEOUT_S = 120


def open_page(page: str, at: AppTest | None = None, **query: str) -> AppTest:
    """Run the app and switch to `page` (a name from PAGES), with optional query parameters."""
    if at is None:
        at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S)
        at.run()
    at.query_params.update(query)
    at.switch_page(f"views/{page}.py")
    at.run()
    return at


def charts(at: AppTest) -> list[dict[str, Any]]:
    """The page's Plotly figures as JSON (AppTest has no Plotly element: it is an unknown element)."""
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def chart_titles(at: AppTest) -> list[str]:
    """Titles of the page's Plotly figures."""
    titles = []
    for spec in charts(at):
        title = spec.get("layout", {}).get("title", {})
        titles.append(title.get("text", "") if isinstance(title, dict) else str(title))
    return titles


def texts(at: AppTest) -> str:
    """Everything the page says in markdown, captions, info, success, warning and error boxes."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "info", "success", "warning", "error", "title", "subheader"):
        parts += [str(el.value) for el in getattr(at, kind)]
    return "\n".join(parts)


def problems(at: AppTest) -> list[str]:
    """Exceptions and error boxes on the page (what must never show)."""
    return [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]


def values(array: Any) -> list[Any]:
    """A trace's data array as a list: Plotly sends numeric arrays base64-encoded (`{"dtype", "bdata"}`)."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).tolist()
    return list(array)
