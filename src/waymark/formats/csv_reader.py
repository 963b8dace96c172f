"""CSV reader: points from latitude/longitude columns, or any geometry from WKT.

Why: spreadsheets are the most common "import my places" source. Values other
than the geometry columns are kept as strings (lossless; CSV has no types).
The coordinate/WKT columns are consumed and not copied into properties.

* Encoding: UTF-8 (BOM stripped), falling back to cp1252 with a warning.
* Delimiter: ``?delimiter=``, else the most frequent of ``,`` ``;`` tab ``|`` in
  the first line. ``decimal=comma`` reads "12,5"; a lone decimal comma is
  accepted anyway when it cannot be a delimiter.
* Header: ``header=false`` (or a first row of numbers) means no header; columns
  are then ``column_1``… Coordinate columns: ``csv_columns.py``.
* Rows with empty coordinates are reported (a warning naming the line) and
  skipped, or kept without geometry with ``missing=keep``; non-numeric or
  out-of-range coordinates raise FormatError naming the physical line (header =
  line 1), or are skipped (kept without geometry with ``missing=keep``) with a
  warning when ``skip_invalid``.
* ``?crs=`` says the coordinates are in another system (x/y or WKT in it).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import replace
from itertools import islice
from typing import Any

from waymark.formats.crs import Transform, parse_crs, to_wgs84
from waymark.formats.csv_columns import (
    Columns,
    header_names,
    looks_headerless,
    numbered,
    parse_number,
    resolve,
)
from waymark.formats.geometry import MAX_LAT, MAX_LON, close_ring, validate_geometry
from waymark.formats.model import (
    MAX_COLUMNS,
    FormatError,
    ImportResult,
    ParsedFeature,
    ParsedLayer,
    ReadOptions,
    WarningCollector,
)

DELIMITERS = (",", ";", "\t", "|")
SAMPLE_ROWS = 20
_DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|",
                    "space": " "}


def _decode(data: bytes, warnings: WarningCollector) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        warnings.add("file is not valid UTF-8; decoded as Windows-1252")
        return data.decode("cp1252", errors="replace")


def _wkt_geometry(raw: str) -> dict[str, Any]:
    try:
        import shapely.wkt  # lazy: numpy/GEOS load only when a CSV has a WKT column

        geom = shapely.wkt.loads(raw)
    except Exception as exc:  # noqa: BLE001 - shapely raises GEOSException / ShapelyError / ValueError
        if "closed" in str(exc).lower():
            return _close_wkt(raw)
        raise FormatError(f"invalid WKT geometry: {str(exc).splitlines()[0]}") from None
    if geom.is_empty:
        raise FormatError("WKT geometry is empty")
    geometry: dict[str, Any] = json.loads(shapely.to_geojson(geom))
    return geometry


def _close_wkt(raw: str) -> dict[str, Any]:
    """Unclosed POLYGON ring(s): re-read the rings as a MULTILINESTRING and close them."""
    text = raw.strip()
    if not text.upper().startswith("POLYGON"):
        raise FormatError("invalid WKT geometry: polygon rings must be closed")
    import shapely.wkt

    try:
        lines = json.loads(shapely.to_geojson(shapely.wkt.loads("MULTILINESTRING" + text[7:])))
    except Exception as exc:  # noqa: BLE001 - as in _wkt_geometry
        raise FormatError(f"invalid WKT geometry: {str(exc).splitlines()[0]}") from None
    return {"type": "Polygon", "coordinates": [close_ring(r) for r in lines["coordinates"]]}


def _delimiter(text: str, options: ReadOptions) -> str:
    if options.delimiter:
        d = _DELIMITER_NAMES.get(options.delimiter.lower(), options.delimiter)
        if len(d) != 1:
            raise FormatError(f"delimiter must be one character (or comma, semicolon, tab, "
                              f"pipe), got {options.delimiter!r}", field="delimiter")
        return d
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in DELIMITERS}
    if options.decimal == ",":
        counts[","] = 0
    return max(DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","


class CsvHead:
    """The file's layout from its first lines: delimiter, header, coordinate columns."""

    def __init__(self, data: bytes, options: ReadOptions) -> None:
        self.warnings = WarningCollector()
        self.text = _decode(data, self.warnings)
        if not self.text.strip():
            raise FormatError("file is empty")
        self.decimal = "," if options.decimal in (",", "comma") else "."
        self.delimiter = _delimiter(self.text, options)
        if csv.field_size_limit() < 256 * 1024 * 1024:
            csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        self.reader = csv.reader(io.StringIO(self.text, newline=""), delimiter=self.delimiter)
        try:
            first = next(self.reader)
        except csv.Error as exc:
            raise FormatError(f"malformed CSV: {exc}", line=1) from None
        try:
            self.sample = list(islice(self.reader, SAMPLE_ROWS))
        except csv.Error as exc:
            raise FormatError(f"malformed CSV: {exc}", line=self.reader.line_num) from None
        self.headerless = not options.header or (
            not (options.lat or options.lon or options.wkt) and looks_headerless(first))
        if self.headerless:
            self.sample.insert(0, first)
            width = max(len(r) for r in self.sample)
            self.header = numbered(width)
        else:
            self.header = header_names(first)
        if len(self.header) > MAX_COLUMNS:
            raise FormatError(f"too many columns ({len(self.header)} > {MAX_COLUMNS})", line=1)
        self.columns: Columns = resolve(self.header, self.sample, options, self.decimal,
                                        self.headerless)
        if self.headerless and self.columns.detected:
            assert self.columns.lat is not None and self.columns.lon is not None  # detected
            self.warnings.add(
                f"no header row: columns {self.columns.lat + 1} and {self.columns.lon + 1} "
                "read as latitude and longitude")


def read_csv(data: bytes, *, skip_invalid: bool = False,
             options: ReadOptions | None = None) -> ImportResult:
    options = options or ReadOptions()
    head = CsvHead(data, options)
    warnings, header, cols = head.warnings, head.header, head.columns
    keep_missing = options.missing == "keep"
    transform = to_wgs84(parse_crs(options.crs)) if options.crs else None
    geo_cols = {i for i in (cols.lat, cols.lon, cols.wkt) if i is not None}
    prop_cols = [(i, h) for i, h in enumerate(header) if i not in geo_cols]
    ncols = len(header)
    features: list[ParsedFeature] = []
    lines: list[int] = []
    append = features.append
    # re-read from the start: the head consumed the first rows
    reader = csv.reader(io.StringIO(head.text, newline=""), delimiter=head.delimiter)
    prev_end = 0
    if not head.headerless:
        next(reader)
        prev_end = reader.line_num
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
            props = {h: row[i] for i, h in prop_cols}
            try:
                geom = _row_geometry(row, cols, header, head.decimal, transform is None)
            except FormatError as exc:
                err = exc.with_context(line=line)
                if not skip_invalid:
                    raise err from None
                warnings.add(f"{err}; " + ("kept without geometry" if keep_missing
                                           else "row skipped"))
                if keep_missing:
                    append(ParsedFeature(None, props))
                    lines.append(line)
                continue
            if geom is None:
                what = "geometry" if cols.wkt is not None else "coordinates"
                warnings.add(f"line {line}: empty {what}, "
                             + ("kept without geometry" if keep_missing else "row skipped"))
                if not keep_missing:
                    continue
            append(ParsedFeature(geom, props))
            lines.append(line)
    except csv.Error as exc:
        raise FormatError(f"malformed CSV: {exc}", line=reader.line_num) from None
    if transform is not None:
        _reproject(features, lines, transform, skip_invalid, warnings)
    if extra_rows:
        warnings.add(f"{extra_rows} row(s) had more fields than the header; extra fields ignored")
    return ImportResult([ParsedLayer(None, features)], warnings.result(),
                        transform.label if transform else None)


def _row_geometry(row: list[str], cols: Columns, header: list[str], decimal: str,
                  check: bool) -> dict[str, Any] | None:
    """The row's geometry (None when its coordinates are empty); ``check``: in WGS84."""
    if cols.wkt is None:
        assert cols.lat is not None and cols.lon is not None  # resolve(): no WKT, both set
        lat_raw, lon_raw = row[cols.lat].strip(), row[cols.lon].strip()
        if not lat_raw or not lon_raw:
            return None
        return _point(lat_raw, lon_raw, header[cols.lat], header[cols.lon], decimal, check)
    raw = row[cols.wkt].strip()
    if not raw:
        return None
    try:
        geom = _wkt_geometry(raw)
        return validate_geometry(geom) if check else geom
    except FormatError as exc:
        raise exc.with_context(field=header[cols.wkt]) from None


def _reproject(features: list[ParsedFeature], lines: list[int], transform: Transform,
               skip_invalid: bool,
               warnings: WarningCollector) -> None:
    geoms = transform.geometries([f.geometry for f in features])
    for f, g, line in zip(features, geoms, lines, strict=False):
        if g is not None:
            try:
                f.geometry = validate_geometry(g)
            except FormatError as exc:
                err = exc.with_context(line=line)
                if not skip_invalid:
                    raise err from None
                warnings.add(f"{err}; kept without geometry")
                f.geometry = None


def _point(lat_raw: str, lon_raw: str, lat_name: str, lon_name: str, decimal: str,
           check: bool) -> dict[str, Any]:
    lat = parse_number(lat_raw, decimal)
    if lat is None:
        raise FormatError(f"latitude {lat_raw!r} is not a number", field=lat_name)
    lon = parse_number(lon_raw, decimal)
    if lon is None:
        raise FormatError(f"longitude {lon_raw!r} is not a number", field=lon_name)
    if check and not -MAX_LAT <= lat <= MAX_LAT:
        raise FormatError(f"latitude {lat_raw} out of range [-90, 90]", field=lat_name)
    if check and not -MAX_LON <= lon <= MAX_LON:
        raise FormatError(f"longitude {lon_raw} out of range [-180, 180]", field=lon_name)
    return {"type": "Point", "coordinates": [lon, lat]}


def csv_preview(data: bytes, options: ReadOptions, rows: int = 10) -> dict[str, Any]:
    """The first rows as a table for the importer's column picker, with what detection
    found (``detected``) or why it failed (``error``)."""
    error = None
    try:
        head = CsvHead(data, options)
    except FormatError as exc:
        if exc.field in ("lat", "lon", "wkt", "delimiter") or "coordinate columns" not in exc.reason:
            raise
        error = str(exc)
        head = CsvHead(data, replace(options, wkt="1", lat=None, lon=None))  # rows, no columns
    cols = head.columns
    return {"delimiter": head.delimiter, "header": not head.headerless,
            "columns": head.header, "rows": head.sample[:rows], "error": error,
            "detected": None if error else {
                "lat": _name(head.header, cols.lat), "lon": _name(head.header, cols.lon),
                "wkt": _name(head.header, cols.wkt)}}


def _name(header: list[str], i: int | None) -> str | None:
    return None if i is None else header[i]
