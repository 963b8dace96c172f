"""GeoJSON reader (RFC 7946 plus the legacy ``crs`` member).

Why msgspec: decoding is several times faster than ``json`` and the decoded
dicts are reused as-is (no copies), so a 100k-feature file is read and validated
in well under a second with memory close to the decoded object's own size.
``json`` is only used after a failure, to report the line of a syntax error.

Accepted top levels: FeatureCollection, Feature, bare geometry (including
GeometryCollection) and, leniently, a JSON array of Features. Foreign members
are ignored; a FeatureCollection ``name`` member (ogr2ogr, our own writer)
becomes the layer name. A legacy ``crs`` member (or the importer's ``?crs=``)
naming another coordinate system is reprojected to WGS84 (``crs.py`` for the axis
order rules); an unknown one is an error rather than a map plotted wrongly.
Feature ids are not kept (ParsedFeature has no id; the platform assigns its own).
"""

from __future__ import annotations

import gc
import json
from typing import Any

import msgspec

from waymark.formats.crs import SourceCrs, Transform, parse_crs, to_wgs84
from waymark.formats.geometry import GEOMETRY_TYPES, validate_geometry
from waymark.formats.model import (
    FormatError,
    ImportResult,
    ParsedFeature,
    ParsedLayer,
    ReadOptions,
    WarningCollector,
)

_decoder = msgspec.json.Decoder()


def _decode(data: bytes) -> Any:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data or data.isspace():
        raise FormatError("file is empty")
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError:
        pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FormatError("file is not valid UTF-8 text", line=line) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"invalid JSON: {exc.msg} (column {exc.colno})"
        raise FormatError(msg, line=exc.lineno) from None
    except RecursionError:
        raise FormatError("invalid JSON: nested too deeply") from None


def _source_crs(doc: dict[str, Any], options: ReadOptions) -> SourceCrs | None:
    """The coordinate system of the coordinates: ``?crs=`` wins over the ``crs`` member."""
    if options.crs:
        return parse_crs(options.crs)
    crs = doc.get("crs")
    if not crs:
        return None
    name = None
    if isinstance(crs, dict):
        props = crs.get("properties") or {}
        if isinstance(props, dict):
            name = props.get("name") or props.get("href")
    if not isinstance(name, str):
        raise FormatError("unsupported 'crs' member: expected {\"type\": \"name\", "
                          "\"properties\": {\"name\": \"EPSG:<code>\"}}", field="crs")
    return parse_crs(name)


def _reproject(items: list[Any], transform: Transform) -> list[Any]:
    """Copies of the Feature dicts with their geometries in WGS84."""
    def explain(i: int) -> None:
        geom = items[i].get("geometry")
        try:
            validate_geometry(geom)
        except FormatError as exc:
            raise exc.with_context(index=i) from None

    feats = [f if type(f) is dict else {} for f in items]
    geoms = [f.get("geometry") if type(f.get("geometry")) is dict else None for f in feats]
    new = transform.geometries(geoms, on_bad=explain)
    return [{**f, "geometry": g} if g is not None else items[i]
            for i, (f, g) in enumerate(zip(feats, new, strict=False))]


def _feature(obj: Any, index: int | None, skip_invalid: bool,
             warnings: WarningCollector) -> ParsedFeature | None:
    """Return a ParsedFeature or None (skipped)."""
    try:
        if type(obj) is not dict or obj.get("type") != "Feature":
            got = obj.get("type") if type(obj) is dict else type(obj).__name__
            raise FormatError(f"expected a Feature object, got {got!r}")
        props = obj.get("properties")
        if props is None:
            props = {}
        elif type(props) is not dict:
            raise FormatError("'properties' must be an object or null")
        geom = obj.get("geometry")
        if geom is not None:
            geom = validate_geometry(geom)
        return ParsedFeature(geom, props)
    except FormatError as exc:
        err = exc.with_context(index=index)
        if not skip_invalid:
            raise err from None
        warnings.add(f"{err}; feature skipped")
        return None


def read_geojson(data: bytes, *, skip_invalid: bool = False,
                 options: ReadOptions | None = None) -> ImportResult:
    # The cyclic GC would rescan the ever-growing heap of fresh dicts/lists many
    # times during decoding (no cycles are created here): pausing it makes
    # large files ~3x faster.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _read(data, skip_invalid, options or ReadOptions())
    finally:
        if was_enabled:
            gc.enable()


def _read(data: bytes, skip_invalid: bool, options: ReadOptions) -> ImportResult:
    doc = _decode(data)
    warnings = WarningCollector()
    name = None
    source = _source_crs(doc, options) if isinstance(doc, dict) else (
        parse_crs(options.crs) if options.crs else None)
    transform = to_wgs84(source) if source is not None else None
    reprojected_from = transform.label if transform else None
    items: Any
    if isinstance(doc, list):
        items, doc = doc, {}
    elif isinstance(doc, dict):
        gtype = doc.get("type")
        if gtype == "FeatureCollection":
            items = doc.get("features")
            if items is None:
                items = []
            if not isinstance(items, list):
                raise FormatError("'features' must be an array")
            if isinstance(doc.get("name"), str):
                name = doc["name"]
        elif gtype == "Feature":
            items = None
        elif gtype in GEOMETRY_TYPES:
            try:
                if transform is not None:
                    doc = _reproject([{"geometry": doc}], transform)[0]["geometry"]
                geom = validate_geometry(doc)
            except FormatError as exc:
                if not skip_invalid:
                    raise
                warnings.add(f"{exc}; geometry skipped")
                return ImportResult([ParsedLayer(None, [])], warnings.result())
            return ImportResult([ParsedLayer(None, [ParsedFeature(geom, {})])], [],
                                reprojected_from)
        else:
            raise FormatError(f"not GeoJSON: unknown top-level type {gtype!r}")
    else:
        raise FormatError("not GeoJSON: top level must be an object")

    if transform is not None:
        if items is None:
            doc = _reproject([doc], transform)[0]
        else:
            items = _reproject(items, transform)
    if items is None:  # single Feature
        feature = _feature(doc, None, skip_invalid, warnings)
        features = [feature] if feature is not None else []
    else:
        features = []
        append = features.append
        for i, obj in enumerate(items):
            feature = _feature(obj, i, skip_invalid, warnings)
            if feature is not None:
                append(feature)
    return ImportResult([ParsedLayer(name, features)], warnings.result(), reprojected_from)
