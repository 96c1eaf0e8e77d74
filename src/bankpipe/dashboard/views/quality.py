"""Data quality: freshness per source, rejected files and records with reasons, reconciliation, last runs."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from bankpipe.dashboard import queries, ui

# A source not loaded for longer than this is shown as stale (the stream lands every few minutes,
# master data and rates at least daily in production).
STALE_AFTER_HOURS = 24


def freshness(status: dict) -> pd.DataFrame:
    """Per source: last load and its age, from `ops.status`."""
    rows = [
        {"source": name, "last_loaded_at": info["last_loaded_at"], "age_hours": info["age_hours"]}
        for name, info in status["sources"].items()
    ]
    df = pd.DataFrame(rows)
    df["state"] = [
        "never loaded" if age is None else ("stale" if age > STALE_AFTER_HOURS else "fresh") for age in df["age_hours"]
    ]
    return df


def render() -> None:
    """Draw the page."""
    settings, src, flt = ui.context()
    ui.header("Data quality", flt, "pipeline health covers the whole warehouse; the filters do not narrow it")
    data = queries.data_quality(settings, src)
    if data is None:
        ui.empty_state("The warehouse has no ingestion bookkeeping (ops schema) yet.")
        st.stop()
    status = data["status"]
    if all(info["last_loaded_at"] is None for info in status["sources"].values()):
        ui.empty_state("Nothing has been loaded into bronze yet.")
        if data["runs"].empty:
            st.stop()
        # Runs were logged but loaded nothing (failed, or empty sources): show them, they say why.

    st.subheader("Freshness per source")
    fresh = freshness(status)
    cols = st.columns(len(fresh))
    for col, (_, row) in zip(cols, fresh.iterrows(), strict=True):
        age = row["age_hours"]
        col.metric(
            row["source"],
            "never" if age is None else (f"{age:,.1f} h ago" if age < 48 else f"{age / 24:,.1f} days ago"),
            row["state"],
            delta_color="normal" if row["state"] == "fresh" else "inverse",  # green when fresh, red otherwise
            delta_arrow="off",
        )
    ingested = data["ingested"]
    if not ingested.empty:
        ui.plot(
            # Days as categories: a single day of loads would otherwise fill a 24-hour-wide time axis.
            px.bar(
                ingested.assign(day=ingested["day"].astype(str)),
                x="day",
                y="files",
                color="status",
                title="Stream files ingested per day",
            ),
            key="dq_ingested",
        )

    st.subheader("Rejected files")
    rejected_files = data["rejected_files"]
    if rejected_files.empty:
        st.success("No file was rejected.")
    else:
        st.dataframe(rejected_files, hide_index=True, width="stretch")

    st.subheader("Stream files not loaded whole")
    partial = data.get("partial_files")
    if partial is None or partial.empty:
        st.success("No partial file: every stream file read was complete.")
    else:
        st.warning(
            f"{len(partial)} partial file(s): cut short, not loaded; each loads when its complete version lands."
        )
        st.dataframe(partial, hide_index=True, width="stretch")
    lines = data.get("rejected_lines")
    if lines is None or lines.empty:
        st.success("No JSON Lines line was rejected.")
    else:
        total = status.get("rejected_lines", len(lines))
        st.warning(
            f"{total:,} JSON Lines line(s) rejected (their files' other lines loaded); the latest {len(lines)} below."
        )
        st.dataframe(lines, hide_index=True, width="stretch")

    st.subheader("Rejected records")
    by_rule = data.get("rejects_by_rule")
    if by_rule is None:
        st.info("No silver layer yet (`bankpipe transform` builds silver.rejected_records).")
    elif by_rule.empty:
        st.success("No record was rejected.")
    else:
        fig = px.bar(
            by_rule,
            x="records",
            y="rule",
            color="entity",
            orientation="h",
            hover_data=["rule_description"],
            title="Rejected records by rule",
        )
        fig.update_layout(yaxis={"categoryorder": "total ascending"})
        ui.plot(fig, key="dq_rejects")
        st.dataframe(by_rule, hide_index=True, width="stretch")
        with st.expander("Latest rejected records"):
            st.dataframe(data["rejects_sample"], hide_index=True, width="stretch")

    st.subheader("Reconciliation (transactions, bronze → silver → gold)")
    recon = data.get("reconciliation")
    if recon is None or recon.empty:
        st.info("No reconciliation yet (audit.reconciliation_transactions is built by `bankpipe transform`).")
    else:
        unbalanced = int((~recon["is_balanced"].astype(bool)).sum())
        if unbalanced:
            failures = ui.md_escape("; ".join(recon["failure_message"].dropna()))  # quotes currency codes: data
            st.error(f"{unbalanced} currency(ies) do not reconcile: {failures}")
        else:
            st.success(f"All {len(recon)} currencies reconcile: bronze = silver + rejected, gold = silver.")
        layers = recon.melt(
            id_vars=["currency"],
            value_vars=["bronze_records", "silver_records", "rejected_records", "gold_records"],
            var_name="layer",
            value_name="records",
        )
        layers["layer"] = layers["layer"].str.removesuffix("_records")
        ui.plot(
            px.bar(
                layers,
                x="currency",
                y="records",
                color="layer",
                barmode="group",
                log_y=True,
                title="Transaction records per layer and currency (log scale)",
            ),
            key="dq_reconciliation",
        )
        shown = recon[
            [
                "currency",
                "bronze_records",
                "silver_records",
                "rejected_records",
                "gold_records",
                "enriched_records",
                "bronze_amount",
                "silver_amount",
                "rejected_amount",
                "gold_amount",
                "is_balanced",
            ]
        ]
        st.dataframe(shown, hide_index=True, width="stretch")

    tests = data.get("tests")
    if tests is not None:
        st.subheader("Stored dbt test failures")
        failing = tests[tests["failing_rows"] > 0]
        if failing.empty:
            st.success(f"All {len(tests)} stored data tests have no failing rows.")
        else:
            st.warning(f"{len(failing)} of {len(tests)} stored data tests have failing rows (warnings or errors).")
            st.dataframe(failing, hide_index=True, width="stretch")

    st.subheader("Rows per table")
    counts = pd.DataFrame(
        [
            {"layer": name.split(".", 1)[0], "table": name.split(".", 1)[1], "rows": n}
            for name, n in status["tables"].items()
        ]
    )
    st.dataframe(counts[counts["layer"] != "audit"], hide_index=True, width="stretch")

    st.subheader("Last runs")
    runs = data["runs"]
    if runs.empty:
        st.info("No pipeline run logged yet.")
    else:
        st.dataframe(runs, hide_index=True, width="stretch")


render()
