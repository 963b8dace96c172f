"""Make the trimmed Natural Earth inputs of the built-in basemap (run once by a maintainer).

    python basemap/trim.py /path/to/natural-earth-geojson

Reads ne_10m_populated_places_simple.json, ne_50m_rivers_lake_centerlines.json and
ne_10m_admin_1_states_provinces.topo.json (Natural Earth, public domain) and writes
places.csv, rivers.geojson and admin1.topo.json beside this file: only the columns the
basemap and the gazetteer use, coordinates rounded to ~100 m (places) and ~1 km (rivers,
first-level areas). Land and country borders come from the `world-atlas` npm package instead.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLACE_COLUMNS = ["name", "lon", "lat", "scalerank", "min_zoom", "pop_max", "capital",
                 "adm1name", "adm0name", "iso_a2"]


def _capital(props: dict) -> int:
    """2: national capital, 1: first-level admin capital, 0: other."""
    if props.get("adm0cap") or props.get("featurecla", "").startswith("Admin-0 capital"):
        return 2
    return 1 if props.get("featurecla", "").startswith("Admin-1") else 0


def places(source: Path) -> None:
    features = json.loads(source.read_text())["features"]
    rows = []
    for f in features:
        p = f["properties"]
        if not p.get("name") or p.get("featurecla") in ("Scientific station", "Meteorological Station",
                                                        "Historic place"):
            continue
        rows.append([p["name"], round(p["longitude"], 3), round(p["latitude"], 3),
                     int(p["scalerank"]), int(p.get("min_zoom") or 10), int(p.get("pop_max") or 0),
                     _capital(p), p.get("adm1name") or "", p.get("adm0name") or "",
                     p.get("iso_a2") or ""])
    rows.sort(key=lambda r: (r[3], -r[5]))
    with open(HERE / "places.csv", "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(PLACE_COLUMNS)
        writer.writerows(rows)


def _round(coords: list) -> list:
    out: list = []
    for lon, lat in coords:
        point = [round(lon, 2), round(lat, 2)]
        if not out or out[-1] != point:
            out.append(point)
    return out


def rivers(source: Path) -> None:
    features = []
    for f in json.loads(source.read_text())["features"]:
        g = f.get("geometry")
        if not g:
            continue
        lines = [g["coordinates"]] if g["type"] == "LineString" else g["coordinates"]
        lines = [line for line in (_round(c) for c in lines) if len(line) > 1]
        if lines:
            p = f["properties"]
            features.append({"type": "Feature", "properties": {
                "name": p.get("name") or "", "scalerank": int(p.get("scalerank") or 10)},
                "geometry": {"type": "MultiLineString", "coordinates": lines}})
    text = json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":"))
    (HERE / "rivers.geojson").write_text(text + "\n")


ADMIN1_STEP = 0.01  # degrees (~1 km): the quantisation of admin1.topo.json


def _decoded_arc(arc: list, transform: dict | None) -> list:
    """A TopoJSON arc as absolute positions (undoing its quantisation, if any)."""
    if not transform:
        return arc
    (sx, sy), (tx, ty) = transform["scale"], transform["translate"]
    x = y = 0
    out = []
    for dx, dy in arc:
        x, y = x + dx, y + dy
        out.append([x * sx + tx, y * sy + ty])
    return out


# The smallest triangle (square degrees) Visvalingam keeps on an arc between two areas of one
# country, drawn as a first-level border: 0.0003 is ~4 px high at zoom 8, ~1 px at zoom 6; on the
# other arcs (coasts, borders between countries: never drawn, they only place the names) 0.01.
ADMIN1_MIN_AREA = 0.0003
ADMIN1_MIN_AREA_UNDRAWN = 0.01


def _triangle(a: list, b: list, c: list) -> float:
    return abs((b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])) / 2


def _simplified_arc(arc: list, min_area: float) -> list:
    """Visvalingam-Whyatt: drop the point that makes the smallest triangle with its
    neighbours until none is smaller than min_area. Both ends stay (arcs are shared by the
    areas on either side, so they still meet), and a closed arc keeps four points."""
    keep = 4 if arc[0] == arc[-1] else 2
    prev = list(range(-1, len(arc) - 1))
    nxt = list(range(1, len(arc) + 1))
    area = [float("inf")] * len(arc)
    heap = []
    for i in range(1, len(arc) - 1):
        area[i] = _triangle(arc[i - 1], arc[i], arc[i + 1])
        heap.append((area[i], i))
    heapq.heapify(heap)
    left = len(arc)
    while heap and left > keep:
        a, i = heapq.heappop(heap)
        if a != area[i]:
            continue  # a stale entry: the point's triangle changed since
        if a >= min_area:
            break
        area[i] = -1.0  # dropped
        left -= 1
        p, n = prev[i], nxt[i]
        nxt[p], prev[n] = n, p
        for j in (p, n):
            if 0 < j < len(arc) - 1:
                area[j] = _triangle(arc[prev[j]], arc[j], arc[nxt[j]])
                heapq.heappush(heap, (area[j], j))
    return [point for point, a in zip(arc, area) if a != -1.0]


def _quantised_arc(arc: list) -> list:
    """Positions -> delta-encoded grid steps of ADMIN1_STEP; repeats dropped, both ends kept
    (so that arcs still meet where the areas they bound meet)."""
    grid: list = []
    for lon, lat in arc:
        point = [round((lon + 180) / ADMIN1_STEP), round((lat + 90) / ADMIN1_STEP)]
        if not grid or grid[-1] != point:
            grid.append(point)
    if len(grid) == 1:
        grid.append(grid[0])
    deltas = [grid[0]]
    deltas += [[b[0] - a[0], b[1] - a[1]] for a, b in itertools.pairwise(grid)]
    return deltas


def _inner_arcs(geometries: list) -> set[int]:
    """The arcs shared by two areas of one country (the first-level borders drawn)."""
    countries: dict[int, list[str]] = {}

    def walk(arcs: list | int, country: str) -> None:
        if isinstance(arcs, int):
            countries.setdefault(arcs if arcs >= 0 else ~arcs, []).append(country)
        else:
            for a in arcs:
                walk(a, country)

    for g in geometries:
        walk(g["arcs"], g["properties"]["gu"])
    return {i for i, c in countries.items() if len(c) == 2 and c[0] == c[1]}


def admin1(source: Path) -> None:
    """First-level areas as TopoJSON (shared arcs kept, so that borders come out once): the
    name and the country (`gu`, ISO 3166-1 alpha-3) of each; arcs simplified for zoom 8 and
    below (Visvalingam), positions on a 0.01° grid."""
    topo = json.loads(source.read_text())
    layer = next(iter(topo["objects"].values()))
    geometries = []
    for g in layer["geometries"]:
        if g.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        p = g["properties"]
        geometries.append({"type": g["type"], "arcs": g["arcs"],
                           "properties": {"name": p.get("name") or "", "gu": p.get("adm0_a3") or ""}})
    drawn = _inner_arcs(geometries)
    arcs = [_quantised_arc(_simplified_arc(_decoded_arc(arc, topo.get("transform")),
                                           ADMIN1_MIN_AREA if i in drawn else ADMIN1_MIN_AREA_UNDRAWN))
            for i, arc in enumerate(topo["arcs"])]
    out = {"type": "Topology",
           "transform": {"scale": [ADMIN1_STEP, ADMIN1_STEP], "translate": [-180, -90]},
           "objects": {"admin1": {"type": "GeometryCollection", "geometries": geometries}},
           "arcs": arcs}
    (HERE / "admin1.topo.json").write_text(json.dumps(out, separators=(",", ":"), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    places(folder / "ne_10m_populated_places_simple.json")
    rivers(folder / "ne_50m_rivers_lake_centerlines.json")
    admin1(folder / "ne_10m_admin_1_states_provinces.topo.json")
