"""FlatGeobuf: one layer per file, read and written with GDAL.

An export of several layers is one file with a ``layer`` column (as in the CSV export);
the file's own coordinate system is honoured on import. A FlatGeobuf file is 2D or 3D as a
whole, and GDAL writes elevations only for a file of one geometry type: there a layer that
mixes 2D and 3D gets elevation 0 on its 2D positions; a file of several geometry types is
written 2D (elevations are kept by GeoJSON, GPX, KML, GeoPackage and Shapefile exports).
"""

from __future__ import annotations

from pathlib import Path

from waymark.formats.crs import SourceCrs, from_wgs84
from waymark.formats.model import (
    ExportLayer,
    FormatError,
    ImportResult,
    ReadOptions,
    WarningCollector,
)
from waymark.formats.ogr_io import has_z, read_layer, scratch_dir, write_layer

DRIVER = "FlatGeobuf"
SIGNATURE = b"fgb\x03"


def read_fgb(data: bytes, *, skip_invalid: bool = False,
             options: ReadOptions | None = None) -> ImportResult:
    if not data.startswith(SIGNATURE):
        raise FormatError("not a FlatGeobuf file (bad signature)")
    warnings = WarningCollector()
    layer, crs_from = read_layer(data, driver=DRIVER, what="FlatGeobuf", layer=None,
                                 options=options or ReadOptions(), skip_invalid=skip_invalid,
                                 warnings_out=warnings)
    return ImportResult([layer], warnings.result(), crs_from)


def write_fgb(layers: list[ExportLayer], crs: SourceCrs | None = None) -> bytes:
    many = len(layers) > 1
    features = [{**f, "properties": {"layer": layer.name, **(f.get("properties") or {})}}
                if many else f for layer in layers for f in layer.features]
    name = layers[0].name if len(layers) == 1 and layers[0].name else "waymark"
    with scratch_dir() as tmp:
        path = Path(tmp) / "export.fgb"
        # GDAL's spatial index cannot hold features without geometry
        index = all(f.get("geometry") for f in features)
        types = {f["geometry"]["type"] for f in features if f.get("geometry")}
        gtype = types.pop() if len(types) == 1 else "Unknown"
        if gtype != "Unknown" and any(f.get("geometry") and has_z(f["geometry"]) for f in features):
            gtype += " Z"
        write_layer(path, name, features, driver=DRIVER, geometry_type=gtype, crs=crs,
                    transform=from_wgs84(crs) if crs is not None else None,
                    layer_options={"SPATIAL_INDEX": "YES" if index else "NO"})
        return path.read_bytes()
