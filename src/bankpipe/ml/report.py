"""`bankpipe ml report`: Markdown + HTML with plots in `<state>/reports/ml/`, and the headline numbers."""

from __future__ import annotations

import base64
import html
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bankpipe.errors import BankpipeError
from bankpipe.ml import features, metrics, monitor, registry
from bankpipe.ml.train import prequential_lines as train_lines
from bankpipe.settings import Settings
from bankpipe.warehouse import connect

log = logging.getLogger(__name__)

KINDS = {"lr": "logistic regression", "tree": "HistGradientBoosting", "rules": "rules baseline"}


@dataclass
class ReportResult:
    """Where the report went and the numbers worth printing."""

    markdown: Path
    html: Path
    headline: list[str] = field(default_factory=list)


def _plots_module() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _curves(pred: pd.DataFrame, out: Path, title: str) -> Path:
    """ROC and precision-recall curves of the three models on the test window."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = _plots_module()
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    y = pred["y"].to_numpy()
    for kind, label in KINDS.items():
        col = f"score_{kind}"
        if col not in pred or len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, pred[col])
        roc_ax.plot(fpr, tpr, label=label)
        precision, recall, _ = precision_recall_curve(y, pred[col])
        pr_ax.plot(recall, precision, label=label)
    roc_ax.plot([0, 1], [0, 1], ":", color="grey")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC — {title}")
    pr_ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall — {title}")
    for ax in (roc_ax, pr_ax):
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _calibration(pred: pd.DataFrame, out: Path, title: str) -> Path:
    """Reliability diagram of the LR scores on the test window (calibrated on validation, so near the diagonal)."""
    from sklearn.calibration import calibration_curve

    plt = _plots_module()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    y = pred["y"].to_numpy()
    if len(np.unique(y)) == 2:
        frac, mean = calibration_curve(y, pred["score_lr"], n_bins=10, strategy="quantile")
        ax.plot(mean, frac, "o-", label="logistic regression")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    ax.set(xlabel="mean predicted score", ylabel="observed share positive", title=f"Calibration — {title}")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _over_time(daily: pd.DataFrame, out: Path) -> Path:
    """Daily AUC / AP / CP@k (matured days), alert volume and PSI per model version."""
    plt = _plots_module()
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    for (name, version), g in daily.groupby(["model_name", "model_version"]):
        label = f"{name} v{version}"
        g = g.sort_values("metric_date")
        axes[0].plot(g["metric_date"], g["roc_auc"], label=f"{label} AUC")
        axes[0].plot(g["metric_date"], g["average_precision"], "--", label=f"{label} AP")
        if g["card_precision_at_k"].notna().any():
            axes[0].plot(g["metric_date"], g["card_precision_at_k"], ":", label=f"{label} CP@k")
        axes[1].plot(g["metric_date"], g["n_alerts"], label=label)
        axes[2].plot(g["metric_date"], g["psi"], label=label)
    axes[0].set(ylabel="matured-label metrics", title="Model metrics per day")
    axes[1].set(ylabel="alerts")
    axes[2].axhline(0.25, color="red", linestyle=":", label="PSI 0.25 (shifted)")
    axes[2].set(ylabel="PSI vs training")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "n/a"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _comparison_table(target: str, reports: dict[str, dict[str, Any]]) -> list[str]:
    if target == "fraud":
        keys = [
            "roc_auc",
            "average_precision",
            "card_precision_at_100",
            "card_precision_ceiling_at_100",
            "threshold",
            "alerts_per_day",
            "money_recall",
            "precision",
            "recall",
            "tp",
            "fp",
            "fn",
            "tn",
        ]
    else:
        keys = ["macro_f1", "accuracy", "roc_auc_ovr"]
    lines = ["| model | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for kind, rep in reports.items():
        lines.append(f"| {KINDS.get(kind, kind)} | " + " | ".join(_fmt(rep.get(k)) for k in keys) + " |")
    if target == "status":
        for kind, rep in reports.items():
            cm = rep.get("confusion_matrix")
            if cm:
                lines += [
                    "",
                    f"Confusion matrix, {KINDS.get(kind, kind)} (rows true, columns predicted: "
                    f"{', '.join(rep['classes'])}): `{cm}`",
                ]
    return lines


def run(settings: Settings, refresh: bool = True) -> ReportResult:
    """Write the report for every target with a champion; refresh the monitoring table first."""
    out_dir = settings.state / "reports" / "ml"
    out_dir.mkdir(parents=True, exist_ok=True)
    if refresh:
        monitor.run(settings)
    mlc = registry.client(settings)
    md: list[str] = ["# bankpipe model report", ""]
    images: list[Path] = []
    headline: list[str] = []
    found = False
    for target in registry.MODEL_NAMES:
        info = registry.champion(settings, target, mlc)
        if info is None:
            continue
        found = True
        run_info = mlc.get_run(info.run_id)
        metrics_file = registry.download_artifact(settings, info.run_id, "metrics.json")
        body = json.loads(metrics_file.read_text())
        reports, split = body["reports"], body["split"]
        pred = pd.read_parquet(registry.download_artifact(settings, info.run_id, "test_predictions.parquet"))
        if target == "fraud" and "card_precision_ceiling_at_100" not in reports.get("lr", {}) and "y" in pred:
            # Runs logged before the ceiling was a metric: work it out from their test predictions.
            ceiling = metrics.card_precision_ceiling(pred, 100)
            for rep in reports.values():
                rep["card_precision_ceiling_at_100"] = ceiling
        md += [
            f"## {target}: {info.name} v{info.version} (champion)",
            "",
            f"Trained {info.tags.get('trained_at', '?')} (run `{info.run_id}`); train "
            f"{split['train_start']}..{split['train_end']} (end exclusive), "
            f"validation {info.tags.get('validation_window', 'none')}, "
            f"test window {info.tags.get('test_window')}, "
            f"{run_info.data.params.get('n_train')} training / {run_info.data.params.get('n_test')} test transactions; "
            f"threshold {_fmt(info.threshold)}.",
            "",
            *_comparison_table(target, reports),
            "",
        ]
        md += _evaluation_tables(body)
        lr = reports.get("lr", {})
        if target == "fraud":
            headline += train_lines(body.get("prequential", []))
            headline.append(
                f"fraud v{info.version}: AUC {_fmt(lr.get('roc_auc'))}, AP {_fmt(lr.get('average_precision'))}, "
                f"CP@100 {_fmt(lr.get('card_precision_at_100'))} of a possible"
                f" {_fmt(lr.get('card_precision_ceiling_at_100'))} "
                f"(tree AP {_fmt(reports['tree'].get('average_precision'))},"
                f" rules AP {_fmt(reports['rules'].get('average_precision'))})"
            )
            curves = _curves(pred, out_dir / "fraud_roc_pr.png", "fraud")
            calib = _calibration(pred, out_dir / "fraud_calibration.png", "fraud")
            images += [curves, calib]
            md += [f"![ROC and PR curves]({curves.name})", "", f"![Calibration]({calib.name})", ""]
        else:
            headline.append(
                f"status v{info.version}: macro-F1 {_fmt(lr.get('macro_f1'))} "
                f"(tree {_fmt(reports['tree'].get('macro_f1'))},"
                f" rules {_fmt(reports['rules'].get('macro_f1'))})"
            )
    if not found:
        raise BankpipeError("no champion model yet: run `bankpipe ml train --target fraud` first")
    with connect(settings, read_only=True) as wh:
        daily = (
            features.fetch_df(wh, "select * from gold.ml_model_metrics order by metric_date")
            if wh.table_exists("gold", "ml_model_metrics")
            else pd.DataFrame()
        )
    md += ["## Monitoring (gold.ml_model_metrics)", ""]
    if daily.empty:
        md += ["No scores yet: run `bankpipe ml score`.", ""]
    else:
        over_time = _over_time(daily, out_dir / "metrics_over_time.png")
        images.append(over_time)
        # Days inside a version's own training window flatter it: out-of-sample matured days only.
        in_sample = daily["is_in_sample"].fillna(False).astype(bool) if "is_in_sample" in daily else False
        matured = daily[daily["labels_matured"] & ~in_sample]
        summary = (
            daily.groupby(["model_name", "model_version"])
            .agg(
                days=("metric_date", "count"),
                scored=("n_scored", "sum"),
                alerts=("n_alerts", "sum"),
                max_psi=("psi", "max"),
            )
            .reset_index()
        )
        quality = (
            matured.groupby(["model_name", "model_version"])
            .agg(
                matured_days=("metric_date", "count"),
                mean_auc=("roc_auc", "mean"),
                mean_ap=("average_precision", "mean"),
                mean_cp_at_k=("card_precision_at_k", "mean"),
            )
            .reset_index()
        )
        table = summary.merge(quality, on=["model_name", "model_version"], how="left")
        cols = list(table.columns)
        md += ["| " + " | ".join(cols) + " |", "|---|" + "---|" * (len(cols) - 1)]
        for _, r in table.iterrows():
            md.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
        md += ["", f"![Metrics over time]({over_time.name})", ""]
        for _, r in table.iterrows():
            headline.append(
                f"{r['model_name']} v{r['model_version']}: {int(r['scored'])} scored, {int(r['alerts'])} alerts, "
                f"matured-day mean AUC {_fmt(r['mean_auc'])}, max PSI {_fmt(r['max_psi'])}"
            )
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")
    html_path = out_dir / "report.html"
    html_path.write_text(_html(md, images), encoding="utf-8")
    log.info("ML report written to %s", html_path)
    return ReportResult(md_path, html_path, headline)


def _html(md: list[str], images: list[Path]) -> str:
    """A self-contained HTML page (images inlined) from the Markdown lines, without a Markdown library."""
    by_name = {p.name: p for p in images}
    parts = [
        "<!doctype html><meta charset='utf-8'><title>bankpipe model report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}</style>",
    ]
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            head, *rows = table
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>")
            parts.extend("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
            parts.append("</table>")
            table.clear()

    for line in md:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= {"-"} for c in cells):
                table.append(cells)
            continue
        flush()
        if line.startswith("!["):
            name = line[line.index("(") + 1 : line.rindex(")")]
            data = base64.b64encode(by_name[name].read_bytes()).decode() if name in by_name else ""
            parts.append(f"<p><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'></p>")
        elif line.startswith("## "):
            parts.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            parts.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line:
            parts.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(parts) + "\n"


def _interval(ci: list[float] | None) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def _evaluation_tables(body: dict[str, Any]) -> list[str]:
    """Markdown: what validation chose, the prequential weeks, per segment and per scenario (with intervals)."""
    md: list[str] = []
    chosen = body.get("chosen") or {}
    if chosen:
        md += ["Chosen on the validation window only: " + ", ".join(f"{k} = `{v}`" for k, v in chosen.items()), ""]
    weeks = body.get("prequential") or []
    keys = ["roc_auc", "average_precision", "card_precision_at_100", "money_recall", "precision", "alerts_per_day"]
    if weeks:
        md += [
            "### Prequential evaluation (LR, each week trained on what precedes it; 95% bootstrap intervals, accounts)",
            "",
            "| test week | transactions | fraud | C | " + " | ".join(keys) + " | rules AP | rules money recall |",
            "|---|---|---|---|" + "---|" * (len(keys) + 2),
        ]
        for w in weeks:
            cells = [f"{_fmt(w['metrics'].get(k))} {_interval(w['intervals'].get(k))}".strip() for k in keys]
            rules = w.get("rules", {})
            md.append(
                f"| {w['test']['start']}..{w['test']['end']} | {w['n']} | {w['positives']} | {_fmt(w.get('lr_c'))} | "
                + " | ".join(cells)
                + f" | {_fmt(rules.get('average_precision'))} | {_fmt(rules.get('money_recall'))} |"
            )
        md.append("")
    for key, title in (("per_segment", "segment"), ("per_scenario", "scenario")):
        rows = body.get(key) or []
        if not rows:
            continue
        cols = ["roc_auc", "average_precision", "card_precision_at_100", "money_recall", "recall"]
        md += [
            f"### Per {title} (the prequential weeks pooled)",
            "",
            f"| {title} | transactions | fraud | " + " | ".join(cols) + " |",
            "|---|---|---|" + "---|" * len(cols),
        ]
        for r in rows:
            cells = [f"{_fmt(r['metrics'].get(c))} {_interval(r['intervals'].get(c))}".strip() for c in cols]
            md.append(f"| {r[title]} | {r['n']} | {r['positives']} | " + " | ".join(cells) + " |")
        md.append("")
    return md


# The metrics every entry of report_json carries (None where a target has no such metric).
JSON_METRICS = ("roc_auc", "average_precision", "card_precision_at_100")


def report_json(settings: Settings) -> dict[str, Any]:
    """Every registered version as `{"models": [{name, version, target, alias, test, metrics, intervals, features}]}`.

    Read from the version's registry tags (train.py writes them). For status, `roc_auc` and
    `average_precision` rank "not Success" (1 − P(Success)) and `card_precision_at_100` is None;
    its `macro_f1` and `accuracy` are there too. Versions trained before the tags existed fall back
    to their run's logged metrics, without intervals.
    """
    from mlflow.exceptions import MlflowException

    mlc = registry.client(settings)
    models: list[dict[str, Any]] = []
    for target, name in registry.MODEL_NAMES.items():
        try:
            registered = mlc.get_registered_model(name)
        except MlflowException:
            continue
        alias_of = {str(v): a for a, v in (registered.aliases or {}).items() if a in ("champion", "challenger")}
        versions = mlc.search_model_versions(f"name='{name}'")
        for mv in sorted(versions, key=lambda m: int(m.version)):
            tags = dict(mv.tags)
            metrics_, intervals = _version_metrics(mlc, target, mv.run_id, tags)
            start, _, end = tags.get("test_window", "").partition("..")
            models.append(
                {
                    "name": name,
                    "version": int(mv.version),
                    "target": target,
                    "alias": alias_of.get(str(mv.version)),
                    "test": {"start": tags.get("test_start", start or None), "end": tags.get("test_end", end or None)},
                    "metrics": metrics_,
                    "intervals": intervals,
                    "features": json.loads(tags.get("features", "[]")),
                }
            )
    return {"models": models}


def _version_metrics(
    mlc: Any, target: str, run_id: str, tags: dict[str, str]
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    if "metrics" in tags:
        found = json.loads(tags["metrics"])
        intervals = json.loads(tags.get("intervals", "{}"))
    else:
        logged = mlc.get_run(run_id).data.metrics
        found = {k[3:]: v for k, v in logged.items() if k.startswith("lr_")}
        intervals = {}
    if target == "status":
        found = {
            **found,
            "roc_auc": found.get("not_success_roc_auc"),
            "average_precision": found.get("not_success_average_precision"),
            "card_precision_at_100": None,
        }
        intervals = {k.removeprefix("not_success_"): v for k, v in intervals.items()}
    out = {k: found.get(k) for k in JSON_METRICS}
    out.update({k: v for k, v in found.items() if k not in out and not k.startswith("not_success_")})
    return out, {k: [float(x) for x in v] for k, v in intervals.items()}
