"""FX exposure: net position per currency over time, rate history with its source, and rate staleness."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from bankpipe.dashboard import queries, ui

# A rate older than this (days) is flagged in the staleness table; the same default as dbt's
# fx_stale_after_days, which flags stale-priced transactions in gold.
STALE_AFTER_DAYS = 7


def render() -> None:
    """Draw the page."""
    settings, src, flt = ui.context()
    ui.header("FX exposure", flt)
    ui.require_data(settings, src)
    data = queries.fx(settings, src, flt)
    if data is None:
        ui.empty_state("No FX data yet (gold.mart_fx_exposure / gold.dim_exchange_rates are missing).")
        st.stop()

    exposure = data["exposure"]
    st.subheader("Net position per currency")
    if flt.narrows_entities:
        st.caption(
            "The position is the bank's (gold.mart_fx_exposure has no bank, segment or province): it follows the "
            "date range only. The flows of the selected slice are charted below it."
        )
    if exposure.empty:
        st.info("No foreign-currency transactions in the selected period.")
    else:
        latest = exposure.sort_values("transaction_date").groupby("currency").tail(1)
        latest = latest.sort_values("position_usd", key=abs, ascending=False).head(8)
        cols = [*st.columns(4), *st.columns(4)][: len(latest)]
        for col, (_, row) in zip(cols, latest.iterrows(), strict=True):
            col.metric(
                f"{row['currency']} position",
                ui.money(row["position_usd"], "USD"),
                f"{row['position_amount']:,.0f} {row['currency']}",
                delta_color="off",
                delta_arrow="off",
            )
        c1, c2 = st.columns(2)
        with c1:
            ui.plot(
                px.line(
                    exposure,
                    x="transaction_date",
                    y="position_usd",
                    color="currency",
                    title="Running net position (USD at each day's rate)",
                ),
                key="fx_position",
            )
        with c2:
            ui.plot(
                px.bar(
                    exposure,
                    x="transaction_date",
                    y="net_amount_usd",
                    color="currency",
                    title="Net flow per day (USD)",
                ),
                key="fx_net",
            )
    if flt.narrows_entities:
        flows = data["flows"]
        if flows.empty:
            st.info("The selected slice has no successful foreign-currency transactions.")
        else:
            ui.plot(
                px.bar(
                    flows,
                    x="transaction_date",
                    y="amount_usd",
                    color="currency",
                    pattern_shape="transaction_type",
                    title="Foreign-currency volume of the selected slice (USD, successful)",
                ),
                key="fx_flows",
            )

    st.subheader("Exchange rates")
    rates = data["rates"]
    if rates.empty:
        st.info("No exchange rates in the selected period.")
    else:
        currencies = sorted(rates["currency"].unique())
        default = ["IDR"] if "IDR" in currencies else currencies[:1]
        chosen = st.multiselect("Currencies", currencies, default=default, key="fx_currencies")
        shown = rates[rates["currency"].isin(chosen)] if chosen else rates
        ui.plot(
            px.line(
                shown,
                x="rate_date",
                y="units_per_usd",
                color="currency",
                line_dash="rate_source",
                markers=len(shown) < 400,
                title="Units per USD, by source (days without a rate use the last published one)",
            ),
            key="fx_rates",
        )

    st.subheader("Rate freshness")
    staleness = data["staleness"].copy()
    staleness["stale"] = staleness["age_days"] > STALE_AFTER_DAYS
    st.dataframe(
        staleness,
        hide_index=True,
        width="stretch",
        column_config={
            "last_rate_date": st.column_config.DateColumn("Last rate"),
            "last_source": "Source",
            "age_days": st.column_config.NumberColumn("Age (days, vs today)"),
            "stale_transactions": st.column_config.NumberColumn("Priced with a stale rate"),
            "unpriced_transactions": st.column_config.NumberColumn("Without a rate"),
            "max_rate_age_days": st.column_config.NumberColumn("Oldest rate used (days)"),
            "stale": st.column_config.CheckboxColumn(f"Older than {STALE_AFTER_DAYS} days"),
        },
    )


render()
