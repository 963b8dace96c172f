"""Hostile and broken Shapefile zips, GeoPackages and FlatGeobufs, built from the real
test files (tests/data/geo) so that only the one thing under test is wrong.

Each entry: (id, file name, bytes, text the error message must contain, details it must
carry). Used by the formats unit tests and by the import API tests."""

from __future__ import annotations

import io
import sqlite3
import tempfile
import zipfile
from pathlib import Path

from _new_formats import NEW_DATA


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _shapefile_members() -> dict[str, bytes]:
    with zipfile.ZipFile(NEW_DATA / "shapefile/roads-seoul.zip") as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _renamed(prefix: str, drop: str | None = None) -> dict[str, bytes]:
    return {prefix + n: d for n, d in _shapefile_members().items()
            if drop is None or not n.endswith(drop)}


def _plain_sqlite() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plain.sqlite"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE places (name TEXT, lat REAL, lon REAL)")
            db.execute("INSERT INTO places VALUES ('a', 1, 2)")
        return path.read_bytes()


def _wide_gpkg(columns: int = 1001) -> bytes:
    """A real GeoPackage whose one table has more columns than we accept."""
    import numpy as np
    import pyogrio
    import shapely

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide.gpkg"
        geom = np.array([shapely.to_wkb(shapely.Point(1, 2))], dtype=object)
        pyogrio.raw.write(str(path), geom, [np.array([i], dtype="int64") for i in range(columns)],
                          [f"c{i}" for i in range(columns)], layer="wide", driver="GPKG",
                          geometry_type="Point", crs="EPSG:4326")
        return path.read_bytes()


def _no_prj_projected() -> bytes:
    """The British National Grid boundary without its .prj: metres read as degrees."""
    with zipfile.ZipFile(NEW_DATA / "shapefile/boundary_poole_bng.zip") as zf:
        return _zip({n: zf.read(n) for n in zf.namelist()
                     if not n.endswith((".prj", "/"))})


ZIP_BOMB = _zip({"roads_seoul.shp": _shapefile_members()["roads_seoul.shp"],
                 "roads_seoul.shx": _shapefile_members()["roads_seoul.shx"],
                 "roads_seoul.dbf": b"\0" * (8 * 1024 * 1024)})  # 8 MB of zeros: ratio > 1000
FGB = (NEW_DATA / "fgb/earthquakes.fgb").read_bytes()

BAD_FILES = [
    ("shp-zip-bomb", "bomb.zip", ZIP_BOMB, "zip bomb", {"member": "roads_seoul.dbf"}),
    ("shp-path-traversal", "evil.zip", _zip(_renamed("../")), "leaves the archive",
     {"member": "../roads_seoul.cpg"}),
    ("shp-absolute-path", "abs.zip", _zip(_renamed("/tmp/")), "absolute",
     {"member": "/tmp/roads_seoul.cpg"}),
    ("shp-missing-dbf", "nodbf.zip", _zip(_renamed("data/", drop=".dbf")),
     "roads_seoul.dbf is missing", {"member": "data/roads_seoul.shp"}),
    ("shp-bad-header", "badshp.zip", _zip({**_renamed(""), "roads_seoul.shp": b"garbage" * 20}),
     "bad file header", {"member": "roads_seoul.shp"}),
    ("shp-broken-dbf", "baddbf.zip", _zip({**_renamed(""), "roads_seoul.dbf": b"\x03" + b"\xff" * 40}),
     "not a dBASE table", {"member": "roads_seoul.dbf"}),
    ("shp-dbf-rows-mismatch", "rows.zip", _zip({**_renamed(""), "roads_seoul.shx":
                                               _shapefile_members()["roads_seoul.shx"][:-8]}),
     "the .dbf has 94 rows for 93 shapes", {"member": "roads_seoul.dbf"}),
    ("shp-no-shp", "nothing.zip", _zip({"readme.txt": b"hello"}), "no .shp file", {}),
    ("shp-no-prj-projected", "noprj.zip", _no_prj_projected(), "?crs=EPSG:<code>",
     {"feature_index": 0, "member": "poole/boundary_poole_bng.shp"}),
    ("gpkg-plain-sqlite", "plain.gpkg", _plain_sqlite(), "not a GeoPackage", {}),
    ("gpkg-too-wide", "wide.gpkg", _wide_gpkg(), "too many attribute columns",
     {"layer": "wide"}),
    ("gpkg-truncated", "cut.gpkg", (NEW_DATA / "gpkg/corpus_layers.gpkg").read_bytes()[:5000],
     "GeoPackage", {}),
    ("fgb-truncated", "cut.fgb", FGB[: len(FGB) // 3], "FlatGeobuf", {}),
]
