"""Geography: an offline map of Indonesian cities coloured by volume, value or fraud; drill into a province."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from bankpipe.dashboard import charts, queries, ui

ALL = "All Indonesia"
# label → (column, is a rate)
MEASURES = {
    "Transactions": ("transactions", False),
    "Successful value (IDR)": ("value_idr", False),
    "Confirmed fraud rate": ("fraud_rate", True),
    "Fraud alert rate": ("alert_rate", True),
    "Anomaly rate": ("anomaly_rate", True),
}


def by_province(cities: pd.DataFrame) -> pd.DataFrame:
    """Sum the city rows per province and recompute the rates."""
    sums = cities.groupby("province", as_index=False)[
        ["transactions", "value_idr", "anomalous", "alerts", "confirmed_fraud", "accounts"]
    ].sum()
    n = sums["transactions"].where(sums["transactions"] > 0)
    return sums.assign(
        anomaly_rate=sums["anomalous"] / n, alert_rate=sums["alerts"] / n, fraud_rate=sums["confirmed_fraud"] / n
    )


def render() -> None:
    """Draw the page."""
    settings, src, flt = ui.context()
    ui.header("Geography", flt, "a transaction counts where it happened, or at the customer's home when unknown")
    ui.require_data(settings, src)
    cities = queries.geography(settings, src, flt)
    if cities is None or cities.empty:
        ui.empty_state("No located transactions match the filters.")
        st.stop()

    c1, c2 = st.columns([2, 1])
    label = c1.radio("Colour by", list(MEASURES), horizontal=True, key="geo_measure")
    column, is_rate = MEASURES[label]
    provinces = sorted(p for p in cities["province"].unique() if p != "Unknown")
    province = c2.selectbox("Drill into", [ALL, *provinces], key="geo_province")

    shown = cities if province == ALL else cities[cities["province"] == province]
    view = None if province == ALL else charts.view_of(shown)
    title = f"{label} by city" + ("" if province == ALL else f" — {province}")
    fig = charts.bubble_map(shown, color=column, color_label=label, view=view, percent=is_rate)
    fig.update_layout(title=title)
    ui.plot(fig, key="geo_map")
    unplaced = cities.loc[cities["latitude"].isna(), "transactions"].sum()
    if unplaced:
        st.caption(f"{unplaced:,} transactions have no known location (not on the map).")

    if province == ALL:
        prov = by_province(cities).sort_values(column, ascending=False)
        fig = px.bar(
            prov.head(20),
            x=column,
            y="province",
            orientation="h",
            title=f"Provinces by {label.lower()} (top 20)",
            hover_data=["transactions", "accounts"],
        )
        fig.update_layout(yaxis={"categoryorder": "total ascending"}, height=560)
        if is_rate:
            fig.update_xaxes(tickformat=".1%")
        ui.plot(fig, key="geo_provinces")
        table = prov
    else:
        trend = queries.province_trend(settings, src, flt, province)
        if trend is not None and not trend.empty:
            ui.plot(
                px.line(trend, x="transaction_date", y=column, markers=True, title=f"{label} per day — {province}"),
                key="geo_trend",
            )
        table = shown.sort_values("transactions", ascending=False)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "value_idr": st.column_config.NumberColumn("Value IDR", format="localized"),
            "anomaly_rate": st.column_config.NumberColumn("Anomaly rate", format="percent"),
            "alert_rate": st.column_config.NumberColumn("Alert rate", format="percent"),
            "fraud_rate": st.column_config.NumberColumn("Fraud rate", format="percent"),
        },
    )


render()
