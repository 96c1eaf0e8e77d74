"""Customers: RFM segments (sizes, value, movement) and the top customers, names masked unless allowed."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from bankpipe.dashboard import queries, ui

# Display order of the RFM mart's segments, best first.
RFM_ORDER = ["Champions", "Loyal", "Potential", "New", "At risk", "Hibernating", "No activity", "Unscored"]


def movement_chart(df: pd.DataFrame) -> go.Figure:
    """A Sankey of segment changes: bank segment before → after (from dim_customers' history)."""
    left = [f"{s} (before)" for s in df["from_segment"]]
    right = [f"{s} (after)" for s in df["to_segment"]]
    labels = sorted(set(left)) + sorted(set(right))
    index = {label: i for i, label in enumerate(labels)}
    fig = go.Figure(
        go.Sankey(
            node={"label": labels, "pad": 18, "thickness": 14},
            link={
                "source": [index[s] for s in left],
                "target": [index[t] for t in right],
                "value": list(df["customers"]),
            },
        )
    )
    fig.update_layout(title="Segment changes in the period", height=380)
    return fig


def render() -> None:
    """Draw the page."""
    settings, src, flt = ui.context()
    ui.header(
        "Customers",
        flt,
        "RFM segments are as of the mart's date; value, movement and top customers follow the date range",
    )
    ui.require_data(settings, src)
    data = queries.customers(settings, src, flt, show_pii=ui.show_pii(settings))
    if data and data.get("unmasked"):
        from bankpipe import pii

        # every display of clear values is recorded, cached or not (who: the signed-in viewer)
        pii.record_unmasking(settings, "customers", int(data["top"]["full_name"].notna().sum()))
    if data is None or data["segments"].empty:
        ui.empty_state("No customer segmentation yet (gold.mart_customer_rfm is missing or empty).")
        st.stop()

    segments = data["segments"]
    as_of = segments["as_of_date"].max()
    sizes = segments.groupby("rfm_segment", as_index=False)[["customers", "monetary_idr"]].sum()
    order = [s for s in RFM_ORDER if s in set(sizes["rfm_segment"])] + sorted(
        set(sizes["rfm_segment"]) - set(RFM_ORDER)
    )
    cols = st.columns(4)
    cols[0].metric("Customers", ui.count(sizes["customers"].sum()))
    champions = sizes.loc[sizes["rfm_segment"] == "Champions", "customers"].sum()
    cols[1].metric("Champions", ui.count(champions))
    at_risk = sizes.loc[sizes["rfm_segment"].isin(["At risk", "Hibernating"]), "customers"].sum()
    cols[2].metric("At risk or hibernating", ui.count(at_risk))
    cols[3].metric("RFM as of", str(as_of)[:10])

    c1, c2 = st.columns(2)
    with c1:
        ui.plot(
            px.bar(
                sizes,
                x="rfm_segment",
                y="customers",
                color="rfm_segment",
                category_orders={"rfm_segment": order},
                title="Customers per RFM segment",
            ).update_layout(showlegend=False),
            key="cu_sizes",
        )
    with c2:
        value = data["value"]
        ui.plot(
            px.bar(
                value,
                x="rfm_segment",
                y="value_idr",
                color="rfm_segment",
                category_orders={"rfm_segment": order},
                title="Successful value in the period by RFM segment (IDR)",
                hover_data=["customers", "transactions"],
            ).update_layout(showlegend=False),
            key="cu_value",
        )

    c3, c4 = st.columns(2)
    with c3:
        heat = segments.pivot_table(index="customer_segment", columns="rfm_segment", values="customers", aggfunc="sum")
        heat = heat.reindex(columns=[c for c in order if c in heat.columns]).fillna(0)
        ui.plot(
            px.imshow(
                heat,
                text_auto=True,
                aspect="auto",
                color_continuous_scale="Blues",
                title="Bank segment × RFM segment (customers)",
                labels={"x": "RFM segment", "y": "Bank segment", "color": "customers"},
            ),
            key="cu_heat",
        )
    with c4:
        movement = data["movement"]
        if movement.empty:
            st.subheader("Segment movement")
            st.info("No customer changed segment in the selected period (gold.dim_customers keeps the history).")
        else:
            ui.plot(movement_chart(movement), key="cu_movement")

    st.subheader("Top customers by successful value in the period")
    top = ui.masked(data["top"], settings)
    if data.get("unmasked"):
        st.warning("Clear names and e-mails shown (BANKPIPE_DASHBOARD_SHOW_PII=true); this view is logged.")
    elif ui.show_pii(settings):
        # The switch is on but this login cannot read silver_pii (e.g. the analyst role on Snowflake).
        st.warning(
            "BANKPIPE_DASHBOARD_SHOW_PII is set, but silver_pii.customers is not readable here: names stay masked."
        )
    else:
        st.caption(
            "Names and e-mails are masked; a deployment that may show them sets BANKPIPE_DASHBOARD_SHOW_PII=true."
        )
    st.dataframe(
        top,
        hide_index=True,
        width="stretch",
        column_config={
            "value_idr": st.column_config.NumberColumn("Value IDR", format="localized"),
            "value_usd": st.column_config.NumberColumn("Value USD", format="localized"),
            "last_transaction": st.column_config.DateColumn("Last transaction"),
        },
    )


render()
