"""Guess an upload's format from its content first, then its file name.

Why content first: users upload ".json" files holding KML, ".txt" CSVs and
extension-less blobs; the first bytes are a stronger signal than the name.
"""

from __future__ import annotations

import os
import re

from waymark.formats.model import FormatError

FORMATS = ("geojson", "csv", "gpx", "kml", "kmz", "shapefile", "gpkg", "fgb")
_EXTENSIONS = {
    ".geojson": "geojson", ".json": "geojson", ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".gpx": "gpx", ".kml": "kml", ".kmz": "kmz", ".zip": "shapefile", ".gpkg": "gpkg",
    ".fgb": "fgb",
}
_SHAPEFILE_PART = re.compile(rb"\.(shp|shx|dbf)$", re.IGNORECASE)
_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(gpx|kml)[\s>/]")


def detect_format(filename: str | None, data: bytes) -> str:
    head = data[:4096]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    stripped = head.lstrip()
    if not stripped:
        raise FormatError("file is empty")
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(filename, data)
    if head.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    if head.startswith(b"fgb\x03"):
        return "fgb"
    if _SHAPEFILE_PART.search((filename or "").encode()):
        raise FormatError("a Shapefile is several files: upload the .shp, .shx, .dbf (and "
                          ".prj) together in one .zip")
    if stripped[:1] == b"<":
        m = _ROOT.search(head)
        if m:
            return m.group(1).decode()
        raise FormatError("unrecognised XML document: expected GPX or KML")
    if stripped[:1] in (b"{", b"["):
        return "geojson"
    ext = os.path.splitext(filename or "")[1].lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    first_line = stripped.split(b"\n", 1)[0]
    if any(d in first_line for d in (b",", b";", b"\t", b"|")):
        return "csv"
    raise FormatError(
        "unrecognised file format: expected GeoJSON, CSV, GPX, KML, KMZ, a zipped Shapefile, "
        "GeoPackage or FlatGeobuf"
        + (f" (file {filename!r})" if filename else "")
    )


def _zip_kind(filename: str | None, data: bytes) -> str:
    """A zip holding a .kml is a KMZ, one holding a .shp or .dbf a Shapefile; otherwise
    the file name decides (the reader then says what the archive lacks)."""
    import io
    import zipfile

    ext = os.path.splitext(filename or "")[1].lower()
    try:
        names = [n.lower() for n in zipfile.ZipFile(io.BytesIO(data)).namelist()]
    except (zipfile.BadZipFile, ValueError, EOFError):
        names = []  # the reader reports the broken archive
    if any(n.endswith(".kml") for n in names):
        return "kmz"
    if any(n.endswith((".shp", ".dbf")) for n in names):
        return "shapefile"
    return "kmz" if ext == ".kmz" else "shapefile" if ext == ".zip" else "kmz"
