"""Single entry point for exporting layers; see each writer module for its mapping."""

from __future__ import annotations

from collections.abc import Callable

from waymark.formats.crs import parse_crs
from waymark.formats.csv_writer import write_csv
from waymark.formats.flatgeobuf import write_fgb
from waymark.formats.geojson_writer import write_geojson
from waymark.formats.geopackage import write_gpkg
from waymark.formats.gpx_writer import write_gpx
from waymark.formats.kml_writer import write_kml, write_kmz
from waymark.formats.model import ExportLayer, FormatError
from waymark.formats.shapefile import write_shapefile

_WRITERS: dict[str, Callable[..., bytes]] = {"geojson": write_geojson, "json": write_geojson, "csv": write_csv,
            "gpx": write_gpx, "kml": write_kml, "kmz": write_kmz,
            "shapefile": write_shapefile, "gpkg": write_gpkg, "fgb": write_fgb}
#: formats whose files can say their coordinate system (others are WGS84 by definition)
CRS_FORMATS = ("shapefile", "gpkg", "csv", "fgb")


def write(layers: list[ExportLayer], fmt: str, *, crs: str | None = None) -> bytes:
    """Export ``layers``; ``crs`` (e.g. "EPSG:2056") reprojects where the format allows."""
    fmt = (fmt or "").lower()
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise FormatError(f"unsupported export format {fmt!r}")
    if crs:
        if fmt not in CRS_FORMATS:
            raise FormatError(f"{fmt} files are WGS84 by definition; crs is only for "
                              + ", ".join(CRS_FORMATS), field="crs")
        return writer(list(layers), parse_crs(crs, authority_order=False))
    return writer(list(layers))
