"""CSV reader: points from latitude/longitude columns, or any geometry from WKT.

Why: spreadsheets are the most common "import my places" source. Values other
than the geometry columns are kept as strings (lossless; CSV has no types).
The coordinate/WKT columns are consumed and not copied into properties.

* Encoding: UTF-8 (BOM stripped), falling back to cp1252 with a warning.
* Delimiter: the most frequent of ``,`` ``;`` tab ``|`` in the header line.
* Coordinates: columns named like lat/latitude/latitude_deg/y/reclat/... and
  lon/lng/long/longitude/longitude_deg/x/reclong/... (case-insensitive); a
  decimal comma ("12,5") is accepted. Otherwise a wkt/geometry/geom/the_geom
  column parsed with shapely (unclosed polygon rings are closed).
* Rows with empty coordinates are skipped with a warning; non-numeric or
  out-of-range coordinates raise FormatError naming the physical line (header =
  line 1), or are skipped with a warning when ``skip_invalid``.
"""

from __future__ import annotations

import csv
import io
import json
import sys


from waymark.formats.geometry import MAX_LAT, MAX_LON, close_ring, validate_geometry
from waymark.formats.model import (
    FormatError,
    ImportResult,
    ParsedFeature,
    ParsedLayer,
    WarningCollector,
)

LAT_NAMES = ("lat", "latitude", "latitude_deg", "lat_dd", "lat_deg", "reclat", "lat_wgs84",
             "latitude_wgs84", "point_y", "ycoord", "y_coord", "y")
LON_NAMES = ("lon", "lng", "long", "longitude", "longitude_deg", "lon_dd", "lon_deg", "lng_dd",
             "reclong", "lon_wgs84", "longitude_wgs84", "point_x", "xcoord", "x_coord", "x")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "wkt_geom", "shape")
DELIMITERS = (",", ";", "\t", "|")


def _decode(data: bytes, warnings: WarningCollector) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        warnings.add("file is not valid UTF-8; decoded as Windows-1252")
        return data.decode("cp1252", errors="replace")


def _find(header_lc: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header_lc:
            return header_lc.index(name)
    return None


def _number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        if raw.count(",") == 1 and "." not in raw:
            return float(raw.replace(",", "."))
        raise


def _wkt_geometry(raw: str) -> dict:
    try:
        import shapely.wkt  # lazy: numpy/GEOS load only when a CSV has a WKT column

        geom = shapely.wkt.loads(raw)
    except Exception as exc:  # shapely raises GEOSException / ShapelyError / ValueError
        if "closed" in str(exc).lower():
            return _close_wkt(raw)
        raise FormatError(f"invalid WKT geometry: {str(exc).splitlines()[0]}") from None
    if geom.is_empty:
        raise FormatError("WKT geometry is empty")
    return json.loads(shapely.to_geojson(geom))


def _close_wkt(raw: str) -> dict:
    """Unclosed POLYGON ring(s): re-read the rings as a MULTILINESTRING and close them."""
    text = raw.strip()
    if not text.upper().startswith("POLYGON"):
        raise FormatError("invalid WKT geometry: polygon rings must be closed")
    import shapely.wkt

    try:
        lines = json.loads(shapely.to_geojson(shapely.wkt.loads("MULTILINESTRING" + text[7:])))
    except Exception as exc:
        raise FormatError(f"invalid WKT geometry: {str(exc).splitlines()[0]}") from None
    return {"type": "Polygon", "coordinates": [close_ring(r) for r in lines["coordinates"]]}


def read_csv(data: bytes, *, skip_invalid: bool = False) -> ImportResult:
    warnings = WarningCollector()
    text = _decode(data, warnings)
    if not text.strip():
        raise FormatError("file is empty")
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in DELIMITERS}
    delimiter = max(DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","
    if csv.field_size_limit() < 256 * 1024 * 1024:
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise FormatError(f"malformed CSV: {exc}", line=1) from None
    header = [h.strip() for h in header]
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        if h in seen:
            seen[h] += 1
            header[i] = f"{h}_{seen[h]}"
        else:
            seen[h] = 1
    lc = [h.lower() for h in header]
    lat_i, lon_i = _find(lc, LAT_NAMES), _find(lc, LON_NAMES)
    wkt_i = None
    if "wkt" in lc or lat_i is None or lon_i is None:  # an explicit "wkt" column wins
        lat_i = lon_i = None
        wkt_i = _find(lc, WKT_NAMES)
        if wkt_i is None:
            raise FormatError(
                "no coordinate columns found: expected latitude/longitude columns "
                "(e.g. lat, lon) or a WKT column (wkt, geometry); columns found: "
                + ", ".join(header),
                line=1,
            )
    geo_cols = {i for i in (lat_i, lon_i, wkt_i) if i is not None}
    prop_cols = [(i, h) for i, h in enumerate(header) if i not in geo_cols]
    ncols = len(header)
    features: list[ParsedFeature] = []
    append = features.append
    prev_end = 1
    extra_rows = 0
    try:
        for row in reader:
            line = prev_end + 1
            prev_end = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) < ncols:
                row = row + [""] * (ncols - len(row))
            elif len(row) > ncols:
                extra_rows += 1
            try:
                if wkt_i is None:
                    lat_raw, lon_raw = row[lat_i].strip(), row[lon_i].strip()
                    if not lat_raw or not lon_raw:
                        warnings.add(f"line {line}: empty coordinates, row skipped")
                        continue
                    geom = _point(lat_raw, lon_raw, header[lat_i], header[lon_i])
                else:
                    raw = row[wkt_i].strip()
                    if not raw:
                        warnings.add(f"line {line}: empty geometry, row skipped")
                        continue
                    try:
                        geom = validate_geometry(_wkt_geometry(raw))
                    except FormatError as exc:
                        raise exc.with_context(field=header[wkt_i]) from None
            except FormatError as exc:
                err = exc.with_context(line=line)
                if not skip_invalid:
                    raise err from None
                warnings.add(f"{err}; row skipped")
                continue
            append(ParsedFeature(geom, {h: row[i] for i, h in prop_cols}))
    except csv.Error as exc:
        raise FormatError(f"malformed CSV: {exc}", line=reader.line_num) from None
    if extra_rows:
        warnings.add(f"{extra_rows} row(s) had more fields than the header; extra fields ignored")
    return ImportResult([ParsedLayer(None, features)], warnings.result())


def _point(lat_raw: str, lon_raw: str, lat_name: str, lon_name: str) -> dict:
    try:
        lat = _number(lat_raw)
    except ValueError:
        raise FormatError(f"latitude {lat_raw!r} is not a number", field=lat_name) from None
    try:
        lon = _number(lon_raw)
    except ValueError:
        raise FormatError(f"longitude {lon_raw!r} is not a number", field=lon_name) from None
    if not -MAX_LAT <= lat <= MAX_LAT:
        raise FormatError(f"latitude {lat_raw} out of range [-90, 90]", field=lat_name)
    if not -MAX_LON <= lon <= MAX_LON:
        raise FormatError(f"longitude {lon_raw} out of range [-180, 180]", field=lon_name)
    return {"type": "Point", "coordinates": [lon, lat]}
