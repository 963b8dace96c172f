"""Exporting layers and maps to GeoJSON, CSV, GPX, KML/KMZ, Shapefile, GeoPackage,
FlatGeobuf, and whole-map bundles.

A bundle is one JSON document with the map, its layers (name, style, order, visibility) and
every feature; importing it creates an identical map under new ids.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from waymark import jsonutil
from waymark.db.models import Feature, Layer, Map
from waymark.errors import Invalid
from waymark.formats import ExportLayer, FormatError, write
from waymark.formats.simplestyle import upgrade_legacy
from waymark.maps.layers import list_layers
from waymark.maps.service import check_visibility, create_map
from waymark.maps.styles import check_style

FORMATS = {"geojson": ("application/geo+json", "geojson"), "csv": ("text/csv", "csv"),
           "gpx": ("application/gpx+xml", "gpx"), "kml": ("application/vnd.google-earth.kml+xml", "kml"),
           "kmz": ("application/vnd.google-earth.kmz", "kmz"),
           "shapefile": ("application/zip", "shp.zip"),
           "gpkg": ("application/geopackage+sqlite3", "gpkg"),
           "fgb": ("application/flatgeobuf", "fgb")}
BUNDLE_FORMAT = "waymark-bundle"
BUNDLE_VERSION = 1


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "export"


def _features(session: Session, layer: Layer) -> list[dict[str, Any]]:
    rows = session.execute(select(Feature.uuid, Feature.geometry, Feature.properties)
                           .where(Feature.layer_id == layer.id).order_by(Feature.id))
    return [{"id": uuid, "geometry": jsonutil.loads(g), "properties": jsonutil.loads(p)}
            for uuid, g, p in rows]


def _export_layer(session: Session, layer: Layer) -> ExportLayer:
    """A layer for the file writers; a feature style stored the old way (``_style``) goes
    out under the simplestyle names other tools understand."""
    features = _features(session, layer)
    for f in features:
        f["properties"] = upgrade_legacy(f["properties"])
    return ExportLayer(name=layer.name, style=jsonutil.loads(layer.style), features=features)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Invalid(f"format must be one of {', '.join(FORMATS)} (or bundle for a map)",
                      details={"field": "format"})
    return fmt


def export_layers(session: Session, layers: list[Layer], fmt: str,
                  name: str, crs: str | None = None) -> tuple[bytes, str, str]:
    """Returns (body, content type, file name); ``crs`` reprojects where the format can."""
    check_format(fmt)
    try:
        data = write([_export_layer(session, layer) for layer in layers], fmt, crs=crs)
    except FormatError as exc:
        raise Invalid(f"cannot export: {exc}", details=exc.to_details()) from None
    content_type, ext = FORMATS[fmt]
    return data, content_type, f"{_slug(name)}.{ext}"


def make_bundle(session: Session, map_: Map) -> dict[str, Any]:
    layers = []
    for layer in list_layers(session, map_):
        layers.append({"name": layer.name, "style": jsonutil.loads(layer.style),
                       "visible": layer.visible, "position": layer.position,
                       "features": _features(session, layer)})
    return {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
            "map": {"title": map_.title, "description": map_.description,
                    "visibility": map_.visibility, "basemap": map_.basemap,
                    "default_view": jsonutil.loads(map_.default_view),
                    "controls": jsonutil.loads(map_.controls) if map_.controls else None},
            "layers": layers}


def parse_bundle(data: bytes) -> dict[str, Any]:
    try:
        bundle = jsonutil.loads(data)
    except Exception as exc:  # noqa: BLE001 - msgspec raises DecodeError with position
        raise Invalid(f"bundle is not valid JSON: {exc}", code="invalid_bundle") from None
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise Invalid("not a Waymark map bundle (missing \"format\": \"waymark-bundle\")",
                      code="invalid_bundle")
    if bundle.get("version") != BUNDLE_VERSION:
        raise Invalid(f"unsupported bundle version {bundle.get('version')!r}", code="invalid_bundle")
    if not isinstance(bundle.get("map"), dict) or not isinstance(bundle.get("layers"), list):
        raise Invalid("bundle needs a map object and a layers list", code="invalid_bundle")
    check_visibility(bundle["map"].get("visibility", "private"))
    for i, layer in enumerate(bundle["layers"]):
        if not isinstance(layer, dict) or not isinstance(layer.get("features", []), list):
            raise Invalid(f"layer {i} of the bundle is malformed", code="invalid_bundle",
                          details={"layer_index": i})
        try:
            check_style(layer.get("style"))
        except Invalid as exc:
            raise Invalid(f"layer {i} of the bundle: {exc}", code="invalid_bundle",
                          details={"layer_index": i, **exc.details}) from None
    return bundle


def create_map_from_bundle(session: Session, owner_id: int, bundle: dict[str, Any]) -> Map:
    """Create the map shell; features are added by the importer (same path as file imports)."""
    return create_map(session, owner_id, bundle["map"], with_default_layer=False)
