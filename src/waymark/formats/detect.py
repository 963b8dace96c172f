"""Guess an upload's format from its content first, then its file name.

Why content first: users upload ".json" files holding KML, ".txt" CSVs and
extension-less blobs; the first bytes are a stronger signal than the name.
"""

from __future__ import annotations

import os
import re

from waymark.formats.model import FormatError

FORMATS = ("geojson", "csv", "gpx", "kml", "kmz")
_EXTENSIONS = {
    ".geojson": "geojson", ".json": "geojson", ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".gpx": "gpx", ".kml": "kml", ".kmz": "kmz",
}
_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(gpx|kml)[\s>/]")


def detect_format(filename: str | None, data: bytes) -> str:
    head = data[:4096]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    stripped = head.lstrip()
    if not stripped:
        raise FormatError("file is empty")
    if head.startswith(b"PK\x03\x04"):
        return "kmz"
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
        "unrecognised file format: expected GeoJSON, CSV, GPX, KML or KMZ"
        + (f" (file {filename!r})" if filename else "")
    )
