"""GeoPackage: every vector table is a layer on import; a whole map is one file on export.

Reading: the tables to import can be chosen (``ReadOptions.layers``, the importer's table
picker); attribute-only tables come in as features without geometry. Each table's
``srs_id`` gives its coordinate system. Writing: one table per layer (names made unique),
in WGS84 or the export's ``?crs=``.
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
from waymark.formats.ogr_io import list_layers, read_layer, scratch_dir, write_layer

DRIVER = "GPKG"
SIGNATURE = b"SQLite format 3\x00"


def gpkg_tables(data: bytes) -> list[str]:
    """The tables a person can pick from (feature and attribute tables)."""
    if not data.startswith(SIGNATURE):
        raise FormatError("not a GeoPackage (it is not an SQLite database)")
    return list_layers(data, DRIVER, "GeoPackage")


def read_gpkg(data: bytes, *, skip_invalid: bool = False,
              options: ReadOptions | None = None) -> ImportResult:
    options = options or ReadOptions()
    tables = gpkg_tables(data)
    chosen = list(options.layers) if options.layers else tables
    unknown = [t for t in chosen if t not in tables]
    if unknown:
        raise FormatError(f"no table {unknown[0]!r} in this GeoPackage; tables: "
                          + ", ".join(tables), layer=unknown[0])
    if not chosen:
        raise FormatError("the GeoPackage holds no tables")
    warnings = WarningCollector()
    layers, sources = [], []
    for table in chosen:
        layer, crs_from = read_layer(data, driver=DRIVER, what="GeoPackage", layer=table,
                                     options=options, skip_invalid=skip_invalid,
                                     warnings_out=warnings)
        layers.append(layer)
        if crs_from and crs_from not in sources:
            sources.append(crs_from)
    return ImportResult(layers, warnings.result(), ", ".join(sources) or None)


def write_gpkg(layers: list[ExportLayer], crs: SourceCrs | None = None) -> bytes:
    transform = from_wgs84(crs) if crs is not None else None
    used: set[str] = set()
    with scratch_dir() as tmp:
        path = Path(tmp) / "export.gpkg"
        for i, layer in enumerate(layers):
            name = base = (layer.name or "layer")[:200]
            n = 1
            while name.lower() in used:
                n += 1
                name = f"{base} ({n})"
            used.add(name.lower())
            write_layer(path, name, layer.features, driver=DRIVER, geometry_type="Unknown",
                        crs=crs, transform=transform, append=i > 0)
        return path.read_bytes()
