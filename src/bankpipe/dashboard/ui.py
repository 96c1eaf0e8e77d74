"""Shared page furniture: the empty state, headers, number formats, PII masking, chart output."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from bankpipe.dashboard import filters, queries
from bankpipe.errors import WarehouseBusyError
from bankpipe.settings import Settings, get_settings

EMPTY = "No data yet — run `bankpipe run`"
# Plotly's mode bar without the logo and without the buttons that need the network.
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["sendDataToCloud"]}
# Axis titles for column names (a date axis needs none: its ticks say what it is).
LABELS = {
    "period": "",
    "transaction_date": "",
    "metric_date": "",
    "rate_date": "",
    "day": "",
    "value_idr": "IDR",
    "value_usd": "USD",
    "position_usd": "USD",
    "net_amount_usd": "USD",
    "amount_usd": "USD",
    "units_per_usd": "units per USD",
    "rfm_segment": "",
    "province": "",
    "place": "",
    "rule": "",
    "source": "",
    "metric": "",
    "anomaly_rate": "anomaly rate",
    "alert_rate": "alert rate",
    "fraud_rate": "confirmed fraud rate",
    "size": "alerts",
    "psi": "PSI",
}


# Set while app.py runs a page: the entry point has drawn the sidebar in this run already.
_IN_SHELL: ContextVar[bool] = ContextVar("bankpipe_dashboard_shell", default=False)


@contextmanager
def shell() -> Iterator[None]:
    """Mark the page run as happening inside app.py (which drew the filters)."""
    token = _IN_SHELL.set(True)
    try:
        yield
    finally:
        _IN_SHELL.reset(token)


def _clamp(value: date, low: date, high: date) -> date:
    return min(max(value, low), high)


def sidebar() -> None:
    """Draw the global filters; their values live in session state under fixed keys, which pages read."""
    settings = get_settings()
    src = queries.source(settings)
    try:
        opts = queries.options(settings, src)
    except WarehouseBusyError:
        st.sidebar.title("bankpipe")
        st.sidebar.caption("Filters appear when the pipeline has finished writing the warehouse.")
        return
    st.sidebar.title("bankpipe")
    if opts is None:
        st.sidebar.caption("Filters appear once the warehouse has gold data.")
        return
    first, last = opts.first_date, opts.last_date
    picked = st.session_state.get(filters.KEY_DATES)
    if not picked:
        st.session_state[filters.KEY_DATES] = filters.default_range(first, last)
    else:
        # New data can move the bounds; a stored range outside them would make the widget fail.
        st.session_state[filters.KEY_DATES] = tuple(_clamp(d, first, last) for d in picked)
    st.sidebar.date_input("Date range", min_value=first, max_value=last, key=filters.KEY_DATES)
    st.sidebar.multiselect(
        "Bank",
        options=list(opts.banks),
        format_func=lambda key: opts.banks.get(key, key),
        key=filters.KEY_BANKS,
        placeholder="All banks",
    )
    st.sidebar.multiselect("Segment", options=opts.segments, key=filters.KEY_SEGMENTS, placeholder="All segments")
    st.sidebar.multiselect("Province", options=opts.provinces, key=filters.KEY_PROVINCES, placeholder="All provinces")
    st.sidebar.caption(f"Data from {first} to {last}. Results are cached for {queries.CACHE_TTL_S} s.")


def context() -> tuple[Settings, queries.Source, filters.Filters]:
    """The settings, the data source version and the viewer's filters for this run of a page."""
    if not _IN_SHELL.get():
        # Run without app.py (Streamlit's AppTest reruns a page file directly; so does
        # `streamlit run views/x.py`): draw the filters here so the page still has them.
        sidebar()
    settings = get_settings()
    return settings, queries.source(settings), filters.from_state(st.session_state)


BUSY = "The warehouse is busy: a pipeline step is writing it right now."


def busy_notice(where: Any) -> None:
    """Say, in `where` (a placeholder above the page), that the page shows older results, if it does."""
    state = queries.busy()
    if not state.seen:
        return
    if state.as_of is not None:
        where.warning(
            f"{BUSY} Showing the data as of {state.as_of:%H:%M %Z}; reload in a moment for the newest.",
            icon=":material/hourglass_top:",
        )


def busy_page() -> None:
    """What a page shows instead of its content when the warehouse is busy and it has nothing older to show."""
    st.info(
        f"{BUSY} This page shows its data as soon as the step is done — reload in a moment.",
        icon=":material/hourglass_top:",
    )


# What Streamlit's markdown would read as markup: emphasis, links and images, raw HTML, code, tables,
# strikethrough, LaTeX, `:color[…]` and `:icon:` directives, entity references, e-mail and www. autolinks
# (an escaped colon also stops `http://` autolinks). ASCII punctuation only: CommonMark lets a backslash
# escape exactly those, and renders the character itself.
_MD_SPECIAL = re.compile(r"[\\`*_\[\]()<>#!|~$:{}&@]|(?<=www)\.", re.IGNORECASE)


def md_escape(value: Any) -> str:
    """`value` as literal text inside Streamlit markdown (st.markdown, captions, info boxes): data, never markup."""
    text = " ".join(str(value).splitlines())  # a newline in a value must not start a block (heading, list)
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def header(title: str, flt: filters.Filters, note: str | None = None) -> None:
    """Page title with the active filters underneath (and an optional note on what they cover)."""
    st.title(title)
    # Filter values are data (bank ids, segments, provinces from the source): escaped; the note is ours.
    st.caption(f"Filters: {flt.describe(md_escape)}" + (f" — {note}" if note else ""))


def empty_state(detail: str | None = None) -> None:
    """The one message a page shows instead of charts when there is nothing to show."""
    st.info(EMPTY + (f"\n\n{detail}" if detail else ""), icon=":material/hourglass_empty:")


def require_data(settings: Settings, src: queries.Source) -> None:
    """Show the empty state and stop the page unless gold has transactions."""
    state = queries.readiness(settings, src)
    if state.ready:
        return
    if not state.warehouse:
        empty_state(f"There is no warehouse at `{src.warehouse}` yet.")
    elif not state.gold:
        empty_state("The warehouse has no gold layer yet (`bankpipe transform` builds it).")
    else:
        empty_state("The gold layer has no transactions yet.")
    st.stop()


# Plotly reads a subset of HTML in every text it draws (legend entries, tick labels, hover labels, titles):
# `<a href=…>` makes a link, `<b>` bold. Values from records reach it as categories, names and hover data.
_PLOTLY_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_TRACE_TEXT = ("x", "y", "text", "hovertext", "customdata", "labels", "ids", "parents", "locations")


def _plotly_literal(value: Any) -> Any:
    """`value` with every string in it entity-escaped, so Plotly draws it as the characters it holds."""
    if isinstance(value, str):
        return value.translate(_PLOTLY_ENTITIES)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OUS":
            return np.vectorize(_plotly_literal, otypes=[object])(value) if value.size else value
        return value
    if isinstance(value, list | tuple):
        return type(value)(_plotly_literal(v) for v in value)
    return value


def literal_text(fig: go.Figure) -> go.Figure:
    """Make every data-derived text in `fig` literal for Plotly (its pseudo-HTML would render tags and links)."""
    for trace in fig.data:
        name = trace.name if isinstance(getattr(trace, "name", None), str) else None
        if name and any(ch in name for ch in "&<>") and isinstance(getattr(trace, "hovertemplate", None), str):
            # Plotly Express writes each group's value into the template itself (`channel=<value><br>…`).
            template = trace.hovertemplate
            for end in ("<br>", "<extra>"):
                template = template.replace(f"={name}{end}", f"={_plotly_literal(name)}{end}")
            trace.hovertemplate = template
        for attr in ("name", *_TRACE_TEXT):
            if attr in trace and trace[attr] is not None:
                trace[attr] = _plotly_literal(trace[attr])
        if trace.type == "sankey":
            trace.node.label = _plotly_literal(trace.node.label)
    if isinstance(fig.layout.title.text, str):  # titles quote ids and names ("Account …: …")
        fig.layout.title.text = _plotly_literal(fig.layout.title.text)
    for axes in (fig.for_each_xaxis, fig.for_each_yaxis):
        axes(lambda ax: ax.update(categoryarray=_plotly_literal(ax.categoryarray)) if ax.categoryarray else None)
    return fig


def plot(fig: go.Figure, key: str | None = None) -> None:
    """Draw a Plotly figure full-width with the dashboard's chart settings; data texts drawn literally."""
    literal_text(fig)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend_title_text="")
    for axes in (fig.for_each_xaxis, fig.for_each_yaxis):
        axes(lambda ax: ax.update(title_text=LABELS.get(ax.title.text, ax.title.text)) if ax.title.text else None)
    st.plotly_chart(fig, width="stretch", config=PLOTLY_CONFIG, key=key)


def grain_for(days: int) -> queries.Grain:
    """A sensible default grain for a range of `days` (about 30–100 points on a chart)."""
    if days and days <= 92:
        return "day"
    if days and days <= 700:
        return "week"
    return "month"


def money(value: Any, currency: str = "IDR") -> str:
    """Compact money: `Rp 1.2bn`, `US$ -45.6k` (a dash for missing values)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    prefix = {"IDR": "Rp", "USD": "US$"}.get(currency, currency)
    v = float(value)
    for limit, suffix in ((1e12, "tn"), (1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if abs(v) >= limit:
            return f"{prefix} {v / limit:,.1f}{suffix}"
    return f"{prefix} {v:,.2f}"


def count(value: Any) -> str:
    """An integer with thousands separators (blank for missing values)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{int(value):,}"


def pct(value: Any, digits: int = 1) -> str:
    """A share as a percentage."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value) * 100:.{digits}f}%"


def change(current: Any, previous: Any) -> str | None:
    """Relative change as `+12.3%` for st.metric's delta (None when there is nothing to compare)."""
    try:
        cur, prev = float(current), float(previous)
    except (TypeError, ValueError):
        return None
    if math.isnan(cur) or math.isnan(prev) or prev == 0:
        return None
    return f"{(cur - prev) / abs(prev) * 100:+.1f}%"


def point_change(current: Any, previous: Any) -> str | None:
    """Change of a rate in percentage points, for st.metric's delta."""
    try:
        cur, prev = float(current), float(previous)
    except (TypeError, ValueError):
        return None
    if math.isnan(cur) or math.isnan(prev):
        return None
    return f"{(cur - prev) * 100:+.1f} pp"


def show_pii(settings: Settings) -> bool:
    """Whether names and e-mails may be shown unmasked (off unless the deployment allows it).

    Read with getattr: the setting (`BANKPIPE_DASHBOARD_SHOW_PII`) belongs to Settings, and until
    it is there every name stays masked, which is the safe side.
    """
    return bool(getattr(settings, "dashboard_show_pii", False))


def mask_name(name: Any) -> str:
    """`Mega Permatasari` → `M***** P*****` (as gold's full_name_masked; a masked name stays as it is)."""
    from bankpipe.pii import mask_name as mask

    return mask(name) or "–"


def mask_email(email: Any) -> str:
    """`mega.permatasari@example.com` → `m***@example.com` (as gold's email_masked)."""
    from bankpipe.pii import mask_email as mask

    return mask(email) or "–"


def masked(df: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Mask the `full_name` and `email` columns unless PII may be shown.

    Gold already holds only masked forms; masking again changes nothing and guards a query that would
    one day select a clear column by mistake.
    """
    if show_pii(settings):
        return df
    out = df.copy()
    if "full_name" in out:
        out["full_name"] = out["full_name"].map(mask_name)
    if "email" in out:
        out["email"] = out["email"].map(mask_email)
    return out
