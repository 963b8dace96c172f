"""Helpers for the Shapefile/GeoPackage/FlatGeobuf tests: the project's own test files and
GDAL's command-line tools as an outside reader of our exports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from waymark.formats import ExportLayer

#: files made with ogr2ogr from the corpus (tests/data/geo/SOURCES.md)
NEW_DATA = Path(__file__).resolve().parents[2] / "data" / "geo"


def ogrinfo() -> str:
    """ogrinfo from gdal-bin: required in CI, a skip (naming the package) elsewhere."""
    path = shutil.which("ogrinfo")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ogrinfo not found: apt-get install gdal-bin")
        pytest.skip("ogrinfo not found: apt-get install gdal-bin")
    return path


def gdal_read(path: Path) -> dict[str, dict]:
    """{layer: GeoJSON FeatureCollection} of a file as GDAL's ogr2ogr sees it (WGS84)."""
    ogrinfo()
    out = {}
    source = f"/vsizip/{path}" if path.suffix == ".zip" else str(path)
    listing = subprocess.run([ogrinfo(), "-ro", "-q", source], capture_output=True,
                             text=True, check=True, timeout=120).stdout
    names = [line.split(":", 1)[1].strip().rsplit(" (", 1)[0]
             for line in listing.splitlines() if ":" in line and line.strip()[:1].isdigit()]
    for name in names:
        target = path.parent / f"gdal-{abs(hash(name))}.geojson"
        subprocess.run([shutil.which("ogr2ogr"), "-f", "GeoJSON", "-t_srs", "OGC:CRS84",
                        str(target), source, name], check=True, timeout=120,
                       capture_output=True)
        out[name] = json.loads(target.read_text(encoding="utf-8"))
    return out


def sample_layer(name: str = "Places & routes") -> ExportLayer:
    """Scalar properties of every kind, 2D and 3D geometry of every type, one feature
    without geometry, long and non-ASCII attribute names."""
    feats = [
        {"id": "p1", "geometry": {"type": "Point", "coordinates": [7.123456789, 46.987654321]},
         "properties": {"name": "Bern ü", "population_total_2020": 133115, "area_km2": 51.62,
                        "capital": True, "Höhe über Meer": 540}},
        {"id": "p2", "geometry": {"type": "Point", "coordinates": [-0.1275, 51.507222, 35.0]},
         "properties": {"name": "London", "population_total_2020": 8961989, "capital": False}},
        {"id": "l1", "geometry": {"type": "LineString", "coordinates": [
            [6.1, 46.2], [6.6, 46.5], [7.4, 46.95]]},
         "properties": {"name": "Genève–Bern", "population_total_2020": 0}},
        {"id": "a1", "geometry": {"type": "Polygon", "coordinates": [
            [[8.0, 47.0], [8.5, 47.0], [8.5, 47.5], [8.0, 47.0]],
        ]}, "properties": {"name": "Triangle"}},
        {"id": "a2", "geometry": {"type": "MultiPolygon", "coordinates": [
            [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]],
             [[0.2, 0.2], [0.2, 0.4], [0.4, 0.4], [0.2, 0.2]]],
            [[[2.0, 2.0], [3.0, 2.0], [3.0, 3.0], [2.0, 2.0]]]]},
         "properties": {"name": "Two parts, a hole"}},
        {"id": "n1", "geometry": None, "properties": {"name": "No place", "note": "kept"}},
    ]
    return ExportLayer(name, {"color": "#ff0000"}, feats)


def close(a, b, tol: float = 1e-7) -> bool:
    """Coordinates (nested lists) equal within ``tol`` degrees."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= tol
    return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(
        close(x, y, tol) for x, y in zip(a, b, strict=False))
