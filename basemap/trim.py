"""Make the trimmed Natural Earth inputs of the built-in basemap (run once by a maintainer).

    python basemap/trim.py /path/to/natural-earth-geojson

Reads ne_10m_populated_places_simple.json and ne_50m_rivers_lake_centerlines.json (Natural
Earth, public domain) and writes places.csv and rivers.geojson beside this file: only the
columns the basemap and the gazetteer use, coordinates rounded to ~100 m (places) and ~1 km
(rivers). Land and country borders come from the `world-atlas` npm package instead.
"""

from __future__ import annotations

import csv
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


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    places(folder / "ne_10m_populated_places_simple.json")
    rivers(folder / "ne_50m_rivers_lake_centerlines.json")
