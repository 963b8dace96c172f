"""Import/export of map data: GeoJSON, CSV, GPX, KML/KMZ, Shapefile, GeoPackage, FlatGeobuf.

Pure functions over bytes (no web, DB or file I/O) so they run the same in the
request path, in background jobs and in tests.
"""

from waymark.formats.detect import detect_format
from waymark.formats.geometry import geometry_bbox, validate_geometry
from waymark.formats.model import (
    ExportLayer,
    FormatError,
    ImportResult,
    ParsedFeature,
    ParsedLayer,
    ReadOptions,
)
from waymark.formats.reader import check_head, read
from waymark.formats.writer import write

__all__ = [
    "ExportLayer",
    "FormatError",
    "ImportResult",
    "ParsedFeature",
    "ParsedLayer",
    "ReadOptions",
    "check_head",
    "detect_format",
    "geometry_bbox",
    "read",
    "validate_geometry",
    "write",
]
