"""CSV export: ``id``, ``layer`` (only with several layers), ``wkt``, then the
union of property keys in first-seen order.

WKT comes from shapely with full precision and Z kept. CSV has no types: on
read-back every property is a string (numbers, booleans); nested values are
JSON-encoded text, ``None`` becomes an empty cell, and features
without geometry get an empty ``wkt`` (the reader skips such rows). Reading it
back also yields ``id`` (and ``layer``) as ordinary properties.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from waymark.formats._writer_util import value_text
from waymark.formats.crs import SourceCrs, from_wgs84
from waymark.formats.model import ExportLayer


def _pad(coords: Any) -> Any:
    """Make every position 3D (WKT cannot mix 2D and 3D)."""
    if coords and isinstance(coords[0], (int, float)):
        return list(coords) if len(coords) >= 3 else [coords[0], coords[1], 0.0]
    return [_pad(c) for c in coords]


def _padded(geom: dict[str, Any]) -> dict[str, Any]:
    if geom.get("type") == "GeometryCollection":
        return {**geom, "geometries": [_padded(g) for g in geom["geometries"]]}
    return {**geom, "coordinates": _pad(geom["coordinates"])}


def to_wkt(geom: dict[str, Any] | None) -> str:
    if not geom:
        return ""
    import shapely.geometry  # lazy: numpy/GEOS load only when exporting CSV

    try:
        shp = shapely.geometry.shape(geom)
    except Exception:  # noqa: BLE001 - shapely's errors for mixed 2D/3D positions
        shp = shapely.geometry.shape(_padded(geom))
    return shapely.to_wkt(shp, rounding_precision=-1, output_dimension=3, trim=True)


def write_csv(layers: list[ExportLayer], crs: SourceCrs | None = None) -> bytes:
    """CSV with a WKT column: WGS84 longitude/latitude, or x/y (easting first) in ``crs``."""
    transform = from_wgs84(crs) if crs is not None else None
    if transform is not None:
        layers = [ExportLayer(layer.name, layer.style, [
            {**f, "geometry": g} for f, g in zip(
                layer.features, transform.geometries([f.get("geometry") for f in layer.features]), strict=False)
        ]) for layer in layers]
    keys: dict[str, None] = {}
    for layer in layers:
        for f in layer.features:
            for k in f.get("properties") or {}:
                keys.setdefault(k, None)
    many = len(layers) > 1
    header = ["id", *(["layer"] if many else []), "wkt", *keys]
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for layer in layers:
        for f in layer.features:
            props = f.get("properties") or {}
            row = [str(f.get("id") or "")]
            if many:
                row.append(layer.name)
            row.append(to_wkt(f.get("geometry")))
            for k in keys:
                v = props.get(k)
                row.append("" if v is None else value_text(v)[0])
            w.writerow(row)
    return buf.getvalue().encode("utf-8")
