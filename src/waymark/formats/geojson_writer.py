"""GeoJSON export (RFC 7946 FeatureCollection).

Feature ``id`` is kept as the GeoJSON feature id. With one layer the collection
gets a ``name`` foreign member (as ogr2ogr writes; our reader uses it as the
layer name). With several layers every feature gets a ``layer`` foreign member
holding its layer name, and the collection a ``waymark`` member listing the
layers and their styles; foreign members keep the properties untouched so
read(write(x)) returns exactly the same geometries and properties.
"""

from __future__ import annotations

from typing import Any

import msgspec

from waymark.formats.model import ExportLayer

_encoder = msgspec.json.Encoder()


def write_geojson(layers: list[ExportLayer]) -> bytes:
    features = []
    many = len(layers) > 1
    for layer in layers:
        for f in layer.features:
            out: dict[str, Any] = {"type": "Feature"}
            if f.get("id") is not None:
                out["id"] = f["id"]
            out["geometry"] = f.get("geometry")
            out["properties"] = f.get("properties") or {}
            if many:
                out["layer"] = layer.name
            features.append(out)
    doc: dict[str, Any] = {"type": "FeatureCollection"}
    if len(layers) == 1:
        doc["name"] = layers[0].name
    else:
        doc["waymark"] = {"layers": [{"name": la.name, "style": la.style} for la in layers]}
    doc["features"] = features
    return _encoder.encode(doc)
