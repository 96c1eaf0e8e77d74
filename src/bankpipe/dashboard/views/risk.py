"""Risk & fraud: anomaly flags over time, fraud alerts with scores, riskiest accounts and places, history."""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from bankpipe.dashboard import queries, ui
from bankpipe.settings import Settings

FLAG_LABELS = {
    "is_amount_outlier": "amount outlier",
    "is_velocity_burst": "velocity burst",
    "is_night_large_transfer": "night large transfer",
    "is_first_transfer_to_counterparty": "first transfer to counterparty",
    "is_round_amount": "round amount",
    "is_far_from_home": "far from home",
}
# The alert → history link: `?transaction=TRX-…` on this page's URL opens that transaction's history.
QUERY_PARAM = "transaction"


def flags_chart(flags: pd.DataFrame, grain: str) -> None:
    """Each anomaly flag's count per period, stacked."""
    long = flags.melt(id_vars=["period"], value_vars=list(FLAG_LABELS), var_name="flag", value_name="count")
    long["flag"] = long["flag"].map(FLAG_LABELS)
    ui.plot(px.area(long, x="period", y="count", color="flag", title=f"Anomaly flags per {grain}"), key="risk_flags")


def history(settings: Settings, src: queries.Source, transaction_id: str) -> None:
    """The alerted transaction and its account's transactions around it."""
    data = queries.transaction_history(settings, src, transaction_id)
    if data is None or data["anchor"].empty:
        # The id comes from the URL (`?transaction=`) as much as from the data: text, never markup.
        st.warning(f"Transaction {ui.md_escape(transaction_id)} is not in gold.fact_transaction_enriched.")
        return
    a = data["anchor"].iloc[0]
    flags = [label for column, label in FLAG_LABELS.items() if bool(a[column])]
    score = "no alert" if pd.isna(a["alert_score"]) else f"alert score {a['alert_score']:.3f}"
    # Every value below comes from a record (stream or source): escaped, so a channel or an id cannot plant a
    # link or markup in the line; only the bold around the ids is ours.
    e = ui.md_escape
    channel = e(a["channel"]) if isinstance(a["channel"], str) else "an unknown channel"
    counterparty = (
        e(a["counterparty_account_id"]) if isinstance(a["counterparty_account_id"], str) else "no counterparty"
    )
    st.markdown(
        f"**{e(a['transaction_id'])}** · account **{e(a['account_id'])}** · {a['transaction_at']:%Y-%m-%d %H:%M:%S} · "
        f"{e(a['transaction_type'])} {e(a['status'])} via {channel} · "
        f"{a['amount']:,.2f} {e(a['currency'])} ({ui.money(a['amount_idr'])}) · to {counterparty} · "
        f"{score} · flags: {', '.join(flags) or 'none'}"
    )
    hist = data["history"]
    fig = px.scatter(
        hist,
        x="transaction_at",
        y="amount_idr",
        color="transaction_type",
        size=hist["anomaly_count"].clip(lower=0) + 1,
        size_max=14,
        hover_data=["transaction_id", "status", "channel", "counterparty_account_id", "alert_score"],
        title=f"Account {a['account_id']}: transactions within 14 days of {a['transaction_date']:%Y-%m-%d}",
    )
    fig.add_trace(
        go.Scatter(
            x=[a["transaction_at"]],
            y=[a["amount_idr"]],
            mode="markers",
            marker={"symbol": "star", "size": 22, "color": "#c62828", "line": {"width": 1, "color": "black"}},
            name="this transaction",
            hovertext=[str(a["transaction_id"])],
        )
    )
    fig.update_yaxes(type="log", title="amount (IDR, log scale)")
    ui.plot(fig, key="risk_history")
    st.dataframe(hist, hide_index=True, width="stretch")


def render() -> None:
    """Draw the page."""
    settings, src, flt = ui.context()
    ui.header("Risk & fraud", flt)
    ui.require_data(settings, src)
    grains = list(queries.GRAINS)
    grain = st.radio("Grain", grains, index=grains.index(ui.grain_for(flt.days)), horizontal=True, key="risk_grain")
    data = queries.risk(settings, src, flt, grain)
    if data is None or data["flags"].empty:
        ui.empty_state("No transactions match the filters.")
        st.stop()

    flags = data["flags"]
    alerts = data["alerts"]
    total = int(flags["transactions"].sum())
    cols = st.columns(4)
    cols[0].metric("Transactions", ui.count(total))
    cols[1].metric("With an anomaly flag", ui.pct(flags["anomalous"].sum() / total if total else None))
    cols[2].metric("Fraud alerts", "–" if alerts is None else ui.count(len(alerts)))
    cols[3].metric("Alert rate", "–" if alerts is None or not total else ui.pct(len(alerts) / total, 2))
    flags_chart(flags, grain)

    st.subheader("Fraud alerts")
    selected = st.query_params.get(QUERY_PARAM)
    if alerts is None:
        st.info(
            "No fraud alerts yet — the model scores transactions after `bankpipe ml train` and `bankpipe ml score`."
        )
    elif alerts.empty:
        st.info("No fraud alerts in the selected period.")
    else:
        per_day = alerts.groupby(["transaction_date", "raised_by"], as_index=False).size()
        c1, c2 = st.columns(2)
        with c1:
            ui.plot(
                px.bar(per_day, x="transaction_date", y="size", color="raised_by", title="Alerts per transaction day"),
                key="risk_alerts_per_day",
            )
        with c2:
            ui.plot(px.histogram(alerts, x="score", nbins=40, title="Alert scores"), key="risk_alert_scores")
        # URL-encoded: an id with `&`, `#` or `/` in it still opens its own history, and nothing else.
        table = alerts.assign(
            history=["?" + urlencode({QUERY_PARAM: transaction_id}) for transaction_id in alerts["transaction_id"]]
        )
        st.dataframe(
            table[
                [
                    "history",
                    "transaction_id",
                    "score",
                    "threshold",
                    "account_id",
                    "transaction_at",
                    "transaction_type",
                    "status",
                    "channel",
                    "amount_idr",
                    "anomaly_count",
                    "model_version",
                    "raised_by",
                ]
            ],
            hide_index=True,
            width="stretch",
            column_config={
                "history": st.column_config.LinkColumn("History", display_text="open", help="Transaction history"),
                "score": st.column_config.ProgressColumn("Score", min_value=0.0, max_value=1.0, format="%.3f"),
                "amount_idr": st.column_config.NumberColumn("Amount IDR", format="localized"),
            },
        )
        ids = list(alerts["transaction_id"])
        if selected and selected not in ids:
            ids = [selected, *ids]
        choice = st.selectbox(
            "Transaction history of alert",
            ids,
            index=ids.index(selected) if selected in ids else 0,
            key="risk_alert",
        )
        if choice:
            history(settings, src, choice)
    if alerts is None and selected:
        history(settings, src, selected)

    st.subheader("Riskiest accounts in the period")
    accounts = data["accounts"]
    st.dataframe(
        accounts,
        hide_index=True,
        width="stretch",
        column_config={
            "anomaly_rate": st.column_config.NumberColumn("Anomaly rate", format="percent"),
            "max_score": st.column_config.NumberColumn("Highest alert score", format="%.3f"),
            "value_idr": st.column_config.NumberColumn("Value IDR", format="localized"),
            "is_high_risk": st.column_config.CheckboxColumn("High risk (all time)"),
        },
    )

    st.subheader("Riskiest places in the period")
    places = queries.geography(settings, src, flt)
    if places is not None and not places.empty:
        places = (
            places[places["transactions"] >= 20].sort_values(["alert_rate", "anomaly_rate"], ascending=False).head(15)
        )
        places = places.assign(place=places["city"] + ", " + places["province"])
        fig = px.bar(
            places,
            x="anomaly_rate",
            y="place",
            orientation="h",
            color="alert_rate",
            color_continuous_scale="YlOrRd",
            hover_data=["transactions", "alerts", "confirmed_fraud"],
            title="Cities with the most anomalies and alerts (≥ 20 transactions)",
        )
        fig.update_layout(yaxis={"categoryorder": "total ascending"})
        fig.update_xaxes(tickformat=".0%")
        ui.plot(fig, key="risk_places")


render()
