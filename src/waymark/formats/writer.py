"""Single entry point for exporting layers; see each writer module for its mapping."""

from __future__ import annotations

from waymark.formats.csv_writer import write_csv
from waymark.formats.geojson_writer import write_geojson
from waymark.formats.gpx_writer import write_gpx
from waymark.formats.kml_writer import write_kml
from waymark.formats.model import ExportLayer, FormatError

_WRITERS = {"geojson": write_geojson, "json": write_geojson, "csv": write_csv,
            "gpx": write_gpx, "kml": write_kml}


def write(layers: list[ExportLayer], fmt: str) -> bytes:
    writer = _WRITERS.get((fmt or "").lower())
    if writer is None:
        raise FormatError(f"unsupported export format {fmt!r}")
    return writer(list(layers))
