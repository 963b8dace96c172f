"""The bridge to GDAL/OGR (through pyogrio) for Shapefile, GeoPackage and FlatGeobuf.

Why GDAL: one maintained library reads and writes all three exactly as desktop GIS does
(decision 0015). What stays ours: the bytes GDAL sees (archives are unpacked and checked
in ``shapefile.py``; every buffer is checked for its format's signature before GDAL opens
it and the driver GDAL picked is checked again, so no other driver, and none that can
reach the network, ever parses an upload), limits on attribute tables, feature-level
validation with the feature index, and reprojection (``crs.py``).

GDAL's own functions work on files: writers use a private temporary directory that is
removed before they return (pyogrio cannot hand back several files from memory).
"""

from __future__ import annotations

import math
import tempfile
import warnings
from pathlib import Path
from typing import Any

import msgspec

from waymark.formats._writer_util import value_text
from waymark.formats.crs import SourceCrs, Transform, parse_crs, to_wgs84
from waymark.formats.geometry import validate_geometry
from waymark.formats.model import (
    MAX_COLUMNS,
    FormatError,
    ParsedFeature,
    ParsedLayer,
    ReadOptions,
    WarningCollector,
)

MAX_CELLS = 20_000_000  # features x columns of one layer: bounds memory on huge tables
_decode = msgspec.json.Decoder().decode


def _pyogrio() -> Any:
    import pyogrio  # lazy: GDAL loads only when one of its formats is used

    return pyogrio


def _gdal_error(exc: Exception) -> str:
    text = str(exc).split("; It might help", 1)[0]
    return text.replace("/vsimem/", "").strip() or type(exc).__name__


def list_layers(data: bytes, driver: str, what: str) -> list[str]:
    """Names of the vector layers (GeoPackage: tables with or without geometry)."""
    pyogrio = _pyogrio()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            info = pyogrio.read_info(data)
            layers = pyogrio.list_layers(data)
        except Exception as exc:  # noqa: BLE001 - pyogrio raises several error classes
            raise FormatError(f"not a readable {what}: {_gdal_error(exc)}") from None
    if info.get("driver") != driver:
        raise FormatError(f"not a {what} (GDAL sees {info.get('driver')!r})")
    return [str(name) for name, _ in layers]


def read_layer(data: bytes, *, driver: str, what: str, layer: str | None,
               options: ReadOptions, skip_invalid: bool, warnings_out: WarningCollector,
               name: str | None = None, location: dict[str, str] | None = None,
               ) -> tuple[ParsedLayer, str | None]:
    """One layer as WGS84 features, and the CRS it was reprojected from (or None)."""
    pyogrio = _pyogrio()
    where: dict[str, Any] = location or ({"layer": layer} if layer else {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            info = pyogrio.read_info(data, layer=layer)
            if info.get("driver") != driver:
                raise FormatError(f"not a {what} (GDAL sees {info.get('driver')!r})", **where)
            nfields, count = len(info["fields"]), int(info.get("features") or 0)
            if nfields > MAX_COLUMNS:
                raise FormatError(f"too many attribute columns ({nfields} > {MAX_COLUMNS})",
                                  **where)
            if nfields * count > MAX_CELLS:
                raise FormatError(f"attribute table too large ({count} features x {nfields} "
                                  f"columns > {MAX_CELLS} values)", **where)
            meta, _, wkb, columns = pyogrio.raw.read(data, layer=layer, datetime_as_string=True)
        except FormatError:
            raise
        except Exception as exc:  # noqa: BLE001 - GDAL/pyogrio errors become FormatErrors
            raise FormatError(f"cannot read {what}: {_gdal_error(exc)}", **where) from None
    source = parse_crs(options.crs) if options.crs else (
        parse_crs(meta["crs"], authority_order=False) if meta.get("crs") else None)
    transform = to_wgs84(source) if source is not None else None
    count = len(columns[0]) if columns else (0 if wkb is None else len(wkb))
    geoms = _geometries(wkb, count)
    if transform is not None:
        geoms = _reproject(transform, geoms, where)
    props = _properties(list(meta["fields"]), meta["ogr_types"], meta["ogr_subtypes"],
                        columns, len(geoms))
    features: list[ParsedFeature] = []
    for i, (geom, p) in enumerate(zip(geoms, props, strict=False)):
        if geom is not None:
            try:
                geom = validate_geometry(geom)
            except FormatError as exc:
                err = exc.with_context(index=i, **where)
                if source is None and "out of range" in exc.reason:
                    err = FormatError(f"{exc.reason}; the file does not say its coordinate "
                                      "system: give it with ?crs=EPSG:<code>", index=i, **where)
                if not skip_invalid:
                    raise err from None
                warnings_out.add(f"{err}; feature skipped")
                continue
        features.append(ParsedFeature(geom, p))
    return ParsedLayer(name or layer or info.get("layer_name"), features), (
        transform.label if transform else None)


def _geometries(wkb: Any, count: int) -> list[dict[str, Any] | None]:
    import numpy as np
    import shapely

    if wkb is None or len(wkb) == 0:
        return [None] * count
    shapes = shapely.from_wkb(wkb, on_invalid="ignore")
    # RFC 7946 ring order (outer counter-clockwise): Shapefiles store outer rings clockwise
    shapes = shapely.orient_polygons(shapes, exterior_cw=False)
    empty = shapely.is_missing(shapes) | shapely.is_empty(shapes)
    texts = shapely.to_geojson(np.where(empty, None, shapes))
    return [None if t is None else _decode(t) for t in texts.tolist()]


def _reproject(transform: Transform, geoms: list[dict[str, Any] | None], where: dict[str, Any]) -> list[dict[str, Any] | None]:
    try:
        return transform.geometries(geoms)
    except FormatError as exc:
        raise exc.with_context(**where) from None


def _properties(names: list[str], ogr_types: list[str], subtypes: list[str],
                columns: list[Any], count: int) -> list[dict[str, Any]]:
    """Row dicts; nulls are left out (a table has every column in every row, a feature
    only the properties it has)."""
    lists = []
    for ogr_type, subtype, col in zip(ogr_types, subtypes, columns, strict=False):
        values = col.tolist()
        if col.dtype.kind == "f":  # NaN is GDAL's null in float columns (nullable ints too)
            integer = ogr_type in ("OFTInteger", "OFTInteger64")
            values = [None if math.isnan(v) else (int(v) if integer and math.isfinite(v) else v)
                      for v in values]
        if subtype == "OFSTBoolean":
            values = [None if v is None else bool(v) for v in values]
        lists.append(values)
    if not lists:
        return [{} for _ in range(count)]
    return [{k: v for k, v in zip(names, row, strict=False) if v is not None} for row in zip(*lists, strict=False)]


# ---- writing ---------------------------------------------------------------------------
def field_columns(features: list[dict[str, Any]], keys: list[str]) -> tuple[list[Any], list[Any]]:
    """Typed numpy columns (and null masks) for the property ``keys`` of ``features``.

    A column whose values are all booleans, all integers or all numbers keeps that type;
    strings stay strings; anything else (nested objects, mixed values) is JSON text."""
    import numpy as np

    data: list[Any] = []
    masks: list[Any] = []
    for key in keys:
        values = [(f.get("properties") or {}).get(key) for f in features]
        present = [v for v in values if v is not None]
        mask: np.ndarray[Any, Any] | None = np.array([v is None for v in values], dtype=bool)
        if present and all(isinstance(v, bool) for v in present):
            col = np.array([bool(v) for v in values], dtype=bool)
        elif present and all(type(v) is int and -2**63 <= v < 2**63 for v in present):
            col = np.array([v or 0 for v in values], dtype="int64")
        elif present and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                             for v in present):
            col = np.array([math.nan if v is None else float(v) for v in values], dtype="float64")
        else:
            col = np.array([None if v is None else value_text(v)[0] for v in values],
                           dtype=object)
            mask = None
        data.append(col)
        masks.append(mask)
    return data, masks


def wkb_column(geoms: list[dict[str, Any] | None]) -> Any:
    import numpy as np
    import shapely

    texts = np.array([None if g is None else msgspec.json.encode(g).decode() for g in geoms],
                     dtype=object)
    shapes = shapely.from_geojson(texts, on_invalid="ignore")
    three_d = np.array([g is not None and has_z(g) for g in geoms], dtype=bool)
    out = np.empty(len(geoms), dtype=object)
    out[:] = None
    if len(geoms):
        wkb2 = shapely.to_wkb(shapes, output_dimension=2)
        wkb3 = shapely.to_wkb(shapes, output_dimension=3)
        out[:] = np.where(three_d, wkb3, wkb2)
    return out


def has_z(geom: dict[str, Any]) -> bool:
    if geom.get("type") == "GeometryCollection":
        return any(has_z(g) for g in geom.get("geometries") or ())
    c = geom.get("coordinates")
    while isinstance(c, list) and c and isinstance(c[0], list):
        c = c[0]
    return isinstance(c, list) and len(c) > 2


def write_layer(path: Path, name: str, features: list[dict[str, Any]], *, driver: str,
                geometry_type: str, crs: SourceCrs | None, transform: Transform | None,
                keys: list[str] | None = None, field_names: list[str] | None = None,
                layer_options: dict[str, Any] | None = None, append: bool = False) -> None:
    """Write one layer (features as {"geometry", "properties"}) with GDAL."""
    pyogrio = _pyogrio()
    geoms = [f.get("geometry") for f in features]
    if transform is not None:
        geoms = transform.geometries(geoms)
    if keys is None:
        keys = list(dict.fromkeys(k for f in features for k in (f.get("properties") or {})))
    data, masks = field_columns(features, keys)
    field_mask = masks if any(m is not None for m in masks) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyogrio.raw.write(
            str(path), wkb_column(geoms) if geometry_type != "None" else None, data,
            field_names or keys, field_mask=field_mask, layer=name, driver=driver,
            geometry_type=None if geometry_type == "None" else geometry_type,
            crs=crs.crs.to_wkt() if crs is not None else "OGC:CRS84",
            encoding="UTF-8" if driver == "ESRI Shapefile" else None,
            append=append, layer_options=layer_options or None)


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    """A private directory for GDAL's output files, removed by the caller's ``with``."""
    return tempfile.TemporaryDirectory(prefix="waymark-export-")
