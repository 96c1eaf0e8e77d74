"""Model: registry versions, metrics over time on matured labels, ROC/PR, score distribution and drift."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from bankpipe.dashboard import charts, queries, ui

QUALITY = {"roc_auc": "ROC AUC", "average_precision": "Average precision", "card_precision_at_k": "Card precision@k"}
# Test-window metrics of the registered (logistic-regression) pipeline, compared for champion vs
# challenger; other logged numbers (confusion counts, the tree and rules baselines) are left out.
COMPARED = ("roc_auc", "average_precision", "precision", "recall", "f1", "macro_f1", "accuracy", "roc_auc_ovr")


def compared(metrics: dict[str, float]) -> dict[str, float]:
    """The registered model's headline test metrics from a run's logged metrics."""
    out = {}
    for key, value in metrics.items():
        name = key.removeprefix("lr_")
        if key.startswith("lr_") and (name in COMPARED or name.startswith("card_precision_at_")):
            out[name] = value
    return out


def versions_section(reg: queries.Registry) -> None:
    """The registry's versions, and the champion against the newest challenger."""
    st.subheader("Registered versions")
    if reg.versions is None:
        # The reason may quote an error from the registry (paths, messages): text, not markup.
        st.info(ui.md_escape(reg.reason) if reg.reason else "No model registered yet — run `bankpipe ml train`.")
        return
    versions = reg.versions
    primary = versions["primary_metric"].fillna("")
    versions = versions.assign(
        primary_test_metric=[
            row["metrics"].get(f"test_{p}") if p else None
            for (_, row), p in zip(versions.iterrows(), primary, strict=True)
        ]
    )
    st.dataframe(
        versions.drop(columns=["metrics"]),
        hide_index=True,
        width="stretch",
        column_config={
            "created_at": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm"),
            "primary_test_metric": st.column_config.NumberColumn("Primary metric (test window)", format="%.4f"),
        },
    )
    for name, group in versions.groupby("model_name", sort=True):
        champion = group[group["aliases"].str.contains("champion", na=False)]
        others = group[~group.index.isin(champion.index)]
        if champion.empty or others.empty:
            st.caption(f"{name}: " + ("no challenger yet (one version)." if not champion.empty else "no champion yet."))
            continue
        champ, challenger = champion.iloc[0], others.iloc[0]  # versions are newest first
        rows = []
        for label, row in (
            (f"champion v{champ['version']}", champ),
            (f"challenger v{challenger['version']}", challenger),
        ):
            rows += [{"version": label, "metric": k, "value": v} for k, v in compared(row["metrics"]).items()]
        if rows:
            fig = px.bar(
                pd.DataFrame(rows),
                x="metric",
                y="value",
                color="version",
                barmode="group",
                title=f"{name}: champion vs challenger (each on its own test window)",
            )
            ui.plot(fig, key=f"model_cvc_{name}")
        st.caption(
            f"{name} v{challenger['version']} promoted: {challenger['promoted'] or 'n/a'}; "
            "a new version becomes champion only if it beats the champion on the same test window."
        )


def curves_section(bins: pd.DataFrame) -> None:
    """ROC and PR curves per version on matured labels, and the score distribution."""
    fraud = bins[bins["target"].fillna("fraud") == "fraud"]
    if fraud.empty:
        st.info("No fraud scores in the selected period.")
        return
    # In-sample days (inside the version's own training window) would flatter the curves.
    in_sample = fraud["is_in_sample"].fillna(False).astype(bool) if "is_in_sample" in fraud else False
    matured = fraud[fraud["labels_matured"] & ~in_sample]
    roc_fig, pr_fig = go.Figure(), go.Figure()
    summary = []
    for (name, version), part in matured.groupby(["model_name", "model_version"], sort=True):
        roc, pr, auc, ap = charts.curves(part)
        if roc.empty:
            continue
        label = f"{name} v{version}"
        roc_fig.add_trace(go.Scatter(x=roc["fpr"], y=roc["tpr"], mode="lines", name=f"{label} (AUC {auc:.3f})"))
        pr_fig.add_trace(go.Scatter(x=pr["recall"], y=pr["precision"], mode="lines", name=f"{label} (AP {ap:.3f})"))
        summary.append(
            {
                "version": label,
                "transactions": int(part["transactions"].sum()),
                "fraud": int(part["positives"].sum()),
                "roc_auc": auc,
                "average_precision": ap,
            }
        )
    c1, c2 = st.columns(2)
    if summary:
        roc_fig.add_trace(
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"}, name="chance")
        )
        roc_fig.update_layout(
            title="ROC (matured labels)", xaxis_title="false positive rate", yaxis_title="true positive rate"
        )
        pr_fig.update_layout(title="Precision–recall (matured labels)", xaxis_title="recall", yaxis_title="precision")
        with c1:
            ui.plot(roc_fig, key="model_roc")
        with c2:
            ui.plot(pr_fig, key="model_pr")
        st.dataframe(pd.DataFrame(summary), hide_index=True, width="stretch")
    else:
        st.info("No matured day with both fraud and legitimate transactions in the period: ROC/PR need labels.")
    dist = fraud.assign(score=(fraud["score_bin"] * 50).round() / 50)  # 2 %-wide bars from the fine bins
    dist = dist.assign(label=dist["labels_matured"].map({True: "matured", False: "not matured"}))
    dist = dist.groupby(["model_version", "label", "score"], as_index=False)["transactions"].sum()
    fig = px.bar(
        dist,
        x="score",
        y="transactions",
        color="label",
        facet_col="model_version",
        barmode="overlay",
        opacity=0.75,
        title="Score distribution per model version (log scale)",
        log_y=True,
    )
    ui.plot(fig, key="model_scores")


def render() -> None:
    """Draw the page."""
    settings, src, flt = ui.context()
    ui.header("Model", flt, "metrics follow the date range; ROC/PR and scores follow every filter")
    versions_section(queries.registry(src))

    st.subheader("Monitoring")
    data = queries.model_monitoring(settings, src, flt)
    if data is None:
        ui.empty_state("No model metrics yet (gold.ml_model_metrics appears after `bankpipe ml train` and scoring).")
        st.stop()
    metrics = data["metrics"]
    if metrics.empty:
        st.info("No model metrics in the selected period.")
    else:
        metrics = metrics.assign(version=metrics["model_name"] + " v" + metrics["model_version"].astype(str))
        matured = metrics[metrics["labels_matured"]]
        quality = matured.melt(
            id_vars=["metric_date", "version"], value_vars=list(QUALITY), var_name="metric", value_name="value"
        ).dropna(subset=["value"])
        quality["metric"] = quality["metric"].map(QUALITY)
        c1, c2 = st.columns(2)
        with c1:
            if quality.empty:
                st.info("No matured day with fraud in the period: quality metrics need labels that have arrived.")
            else:
                ui.plot(
                    px.line(
                        quality,
                        x="metric_date",
                        y="value",
                        color="version",
                        line_dash="metric",
                        markers=True,
                        title="Quality per day (matured labels only)",
                    ),
                    key="model_quality",
                )
        with c2:
            psi = metrics.dropna(subset=["psi"])
            fig = px.line(psi, x="metric_date", y="psi", color="version", title="Score drift per day (PSI vs training)")
            fig.add_hline(y=0.2, line_dash="dot", line_color="red", annotation_text="PSI 0.2: investigate")
            ui.plot(fig, key="model_drift")
        ui.plot(
            px.line(
                metrics, x="metric_date", y="alert_rate", color="version", markers=True, title="Alert rate per day"
            ).update_yaxes(tickformat=".2%"),
            key="model_alert_rate",
        )
        st.caption(
            "Fraud is reported days to weeks after it happens: quality is computed only on days whose labels have "
            "matured; drift and alert rate need no labels and cover every day."
        )
    if data["bins"].empty:
        st.info("No scored transactions in the selected period.")
    else:
        curves_section(data["bins"])


render()
