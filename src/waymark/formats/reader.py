"""Single entry point for importing bytes of a known format."""

from __future__ import annotations

from waymark.formats.csv_reader import CsvHead, read_csv
from waymark.formats.flatgeobuf import SIGNATURE as FGB_SIGNATURE
from waymark.formats.flatgeobuf import read_fgb
from waymark.formats.geojson_reader import read_geojson
from waymark.formats.geopackage import gpkg_tables, read_gpkg
from waymark.formats.gpx_reader import read_gpx
from waymark.formats.kml_reader import read_kml, read_kmz
from waymark.formats.model import FormatError, ImportResult, ReadOptions
from waymark.formats.shapefile import check_shapefile, read_shapefile

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


def check_head(data: bytes, fmt: str, options: ReadOptions | None = None) -> None:
    """The problems that show in a file's first bytes (CSV header and columns, archive
    members, GeoPackage tables, signatures), found in well under a second so that a big
    upload is refused before it is queued as a job. FormatError like ``read``."""
    options = options or ReadOptions()
    fmt = (fmt or "").lower()
    if fmt not in _READERS:
        raise FormatError(f"unsupported import format {fmt!r}")
    if not data or data.isspace():
        raise FormatError("file is empty")
    if fmt == "csv":
        CsvHead(data, options)
    elif fmt == "shapefile":
        check_shapefile(data)
    elif fmt == "gpkg":
        tables = gpkg_tables(data)
        missing = [t for t in options.layers or () if t not in tables]
        if missing:
            raise FormatError(f"no table {missing[0]!r} in this GeoPackage; tables: "
                              + ", ".join(tables), layer=missing[0])
    elif fmt == "fgb" and not data.startswith(FGB_SIGNATURE):
        raise FormatError("not a FlatGeobuf file (bad signature)")
    elif fmt in ("geojson", "json") and data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] not in (b"{", b"["):
        raise FormatError("not GeoJSON: the file does not start with a JSON object", line=1)
