"""FlatGeobuf: one layer per file, read and written with GDAL.

An export of several layers is one file with a ``layer`` column (as in the CSV export);
the file's own coordinate system is honoured on import.
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
from waymark.formats.ogr_io import read_layer, scratch_dir, write_layer

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
        write_layer(path, name, features, driver=DRIVER, geometry_type="Unknown", crs=crs,
                    transform=from_wgs84(crs) if crs is not None else None,
                    layer_options={"SPATIAL_INDEX": "YES" if index else "NO"})
        return path.read_bytes()
