"""Single entry point for importing bytes of a known format."""

from __future__ import annotations

from waymark.formats.csv_reader import read_csv
from waymark.formats.flatgeobuf import read_fgb
from waymark.formats.geojson_reader import read_geojson
from waymark.formats.geopackage import read_gpkg
from waymark.formats.gpx_reader import read_gpx
from waymark.formats.kml_reader import read_kml, read_kmz
from waymark.formats.model import FormatError, ImportResult, ReadOptions
from waymark.formats.shapefile import read_shapefile

_READERS = {
    "geojson": read_geojson,
    "json": read_geojson,
    "csv": read_csv,
    "gpx": read_gpx,
    "kml": read_kml,
    "kmz": read_kmz,
    "shapefile": read_shapefile,
    "gpkg": read_gpkg,
    "fgb": read_fgb,
}


def read(data: bytes, fmt: str, *, skip_invalid: bool = False,
         options: ReadOptions | None = None) -> ImportResult:
    """Parse ``data`` as ``fmt``; FormatError on anything that cannot be imported.

    With ``skip_invalid`` invalid features/rows/points are skipped and reported
    in ``ImportResult.warnings`` instead of failing the whole import (syntax
    errors and unsafe XML still fail). ``options`` carries what the person said
    about the file (coordinate system, CSV columns, tables to import, ...).
    """
    reader = _READERS.get((fmt or "").lower())
    if reader is None:
        raise FormatError(f"unsupported import format {fmt!r}")
    if not data or data.isspace():
        raise FormatError("file is empty")
    return reader(bytes(data), skip_invalid=skip_invalid, options=options or ReadOptions())
