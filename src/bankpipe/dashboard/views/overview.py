"""Overview: transaction count and value over time, by type, status and channel, with headline KPIs."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from bankpipe.dashboard import queries, ui

DIMENSIONS = {"Type": "transaction_type", "Status": "status", "Channel": "channel"}


def kpis(current: pd.DataFrame, previous: pd.DataFrame) -> None:
    """Headline numbers with their change against the previous period of equal length."""
    cur = current.iloc[0]
    prev = previous.iloc[0] if not previous.empty and previous.iloc[0]["transactions"] else None

    def p(col: str) -> object:
        return None if prev is None else prev[col]

    cols = [*st.columns(3), *st.columns(3)]
    cols[0].metric("Transactions", ui.count(cur["transactions"]), ui.change(cur["transactions"], p("transactions")))
    cols[1].metric("Value (IDR, successful)", ui.money(cur["value_idr"]), ui.change(cur["value_idr"], p("value_idr")))
    cols[2].metric(
        "Value (USD, successful)", ui.money(cur["value_usd"], "USD"), ui.change(cur["value_usd"], p("value_usd"))
    )
    cols[3].metric("Success rate", ui.pct(cur["success_rate"]), ui.point_change(cur["success_rate"], p("success_rate")))
    cols[4].metric(
        "Active accounts", ui.count(cur["active_accounts"]), ui.change(cur["active_accounts"], p("active_accounts"))
    )
    cols[5].metric(
        "Anomalous",
        ui.pct(cur["anomalous_share"]),
        ui.point_change(cur["anomalous_share"], p("anomalous_share")),
        delta_color="inverse",
    )
    if prev is None:
        st.caption("No data in the previous period of equal length: changes are not shown.")


def render() -> None:
    """Draw the page."""
    settings, src, flt = ui.context()
    ui.header("Overview", flt)
    ui.require_data(settings, src)
    left, right = st.columns([2, 1])
    grains = list(queries.GRAINS)
    grain = left.radio("Grain", grains, index=grains.index(ui.grain_for(flt.days)), horizontal=True, key="ov_grain")
    currency = right.radio("Value in", ["IDR", "USD"], horizontal=True, key="ov_currency")
    data = queries.overview(settings, src, flt, grain)
    if data is None or data["series"].empty:
        ui.empty_state("No transactions match the filters.")
        st.stop()
    kpis(data["kpis"], data["previous"])

    series = data["series"]
    value_col = "value_idr" if currency == "IDR" else "value_usd"
    per_period = series.groupby("period", as_index=False)[["transactions", "value_idr", "value_usd"]].sum()
    c1, c2 = st.columns(2)
    with c1:
        ui.plot(px.bar(per_period, x="period", y="transactions", title=f"Transactions per {grain}"), key="ov_count")
    with c2:
        ui.plot(
            px.line(
                per_period, x="period", y=value_col, markers=True, title=f"Successful value per {grain} ({currency})"
            ),
            key="ov_value",
        )

    label = st.radio("Break down by", list(DIMENSIONS), horizontal=True, key="ov_dimension")
    dim = DIMENSIONS[label]
    by_dim = series.groupby(["period", dim], as_index=False)[["transactions", "value_idr", "value_usd"]].sum()
    totals = series.groupby(dim, as_index=False)[["transactions", "value_idr", "value_usd"]].sum()
    order = {dim: sorted(totals[dim])}  # the same colour for a category in both charts
    c3, c4 = st.columns([2, 1])
    with c3:
        ui.plot(
            px.bar(
                by_dim,
                x="period",
                y="transactions",
                color=dim,
                category_orders=order,
                title=f"Transactions per {grain} by {label.lower()}",
            ),
            key="ov_by_dim",
        )
    with c4:
        ui.plot(
            px.pie(
                totals,
                names=dim,
                values=value_col,
                hole=0.45,
                category_orders=order,
                title=f"Successful value by {label.lower()}",
            ),
            key="ov_share",
        )
    st.dataframe(
        totals.sort_values("transactions", ascending=False),
        hide_index=True,
        width="stretch",
        column_config={
            "value_idr": st.column_config.NumberColumn("Value IDR", format="localized"),
            "value_usd": st.column_config.NumberColumn("Value USD", format="localized"),
        },
    )


render()
