"""Which CSV columns hold the coordinates: the person's choice, else detection.

Detection, in order: an explicit ``wkt`` column; a latitude/longitude pair by name (common
spellings in several languages, and suffixes such as ``le_latitude_deg``/``_lat``); a WKT
column by name. A file whose first row is numbers (no header) is read header-less, and
the first pair of columns whose values fit latitude and longitude is taken (a column with
values beyond ±90 is the longitude). ``?lat=``/``?lon=``/``?wkt=`` name columns, or number
them from 1 (``header=false`` names columns ``column_1``, ``column_2``…).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from waymark.formats.model import FormatError, ReadOptions

LAT_NAMES = ("lat", "latitude", "latitude_deg", "lat_dd", "lat_deg", "reclat", "lat_wgs84",
             "latitude_wgs84", "point_y", "ycoord", "y_coord", "y", "breite", "breitengrad",
             "geogr_breite", "latitud", "latitudine", "breedte", "breedtegraad", "szerokosc",
             "szerokosc_geograficzna", "leveysaste", "latitud_dec", "shirota", "широта", "緯度",
             "위도", "纬度")
LON_NAMES = ("lon", "lng", "long", "longitude", "longitude_deg", "lon_dd", "lon_deg", "lng_dd",
             "reclong", "lon_wgs84", "longitude_wgs84", "point_x", "xcoord", "x_coord", "x",
             "lange", "laenge", "langengrad", "laengengrad", "geogr_lange", "longitud",
             "longitudine", "lengte", "lengtegraad", "dlugosc", "dlugosc_geograficzna",
             "pituusaste", "dolgota", "долгота", "経度", "경도", "经度")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "wkt_geom", "shape")
_LAT_SUFFIX = re.compile(r"(?:^|_)(?:latitude(?:_deg)?|lat)$")
_LON_SUFFIX = re.compile(r"(?:^|_)(?:longitude(?:_deg)?|lon|lng|long)$")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)$")


@dataclass(slots=True)
class Columns:
    """Resolved coordinate columns (0-based), and how they were found."""

    lat: int | None = None
    lon: int | None = None
    wkt: int | None = None
    detected: bool = False


def normalise(name: str) -> str:
    """"Längengrad" -> "langengrad", "LE Latitude-Deg" -> "le_latitude_deg"."""
    text = unicodedata.normalize("NFKD", name.strip().lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^\w]+", "_", text).strip("_")


def _by_name(names: list[str], known: tuple[str, ...], suffix: re.Pattern[str]) -> int | None:
    for name in known:
        if name in names:
            return names.index(name)
    hits = [i for i, n in enumerate(names) if suffix.search(n)]
    return hits[0] if len(hits) == 1 else None


def header_names(header: list[str]) -> list[str]:
    """Property names for the header cells (stripped, duplicates numbered)."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for h in header:
        h = h.strip()
        if h in seen:
            seen[h] += 1
            h = f"{h}_{seen[h]}"
        else:
            seen[h] = 1
        out.append(h)
    return out


def numbered(count: int) -> list[str]:
    return [f"column_{i + 1}" for i in range(count)]


def looks_headerless(first: list[str]) -> bool:
    """A first row of at least two numbers is data, not names."""
    return sum(bool(_NUMBER.match(c.strip())) for c in first) >= 2


def _column(spec: str, header: list[str], param: str) -> int:
    """A column named by the person: its name (any case) or its number from 1."""
    spec = spec.strip()
    if spec.isdigit():
        i = int(spec) - 1
        if not 0 <= i < len(header):
            raise FormatError(f"{param}={spec}: the file has {len(header)} columns", field=param)
        return i
    lowered = [h.lower() for h in header]
    if spec.lower() in lowered:
        return lowered.index(spec.lower())
    raise FormatError(f"{param}={spec!r}: no such column; columns: " + ", ".join(header),
                      field=param)


def resolve(header: list[str], sample: list[list[str]], options: ReadOptions,
            decimal: str, headerless: bool) -> Columns:
    """The coordinate columns for this file, or a FormatError that lists the columns."""
    if options.wkt:
        return Columns(wkt=_column(options.wkt, header, "wkt"))
    if options.lat or options.lon:
        if not (options.lat and options.lon):
            raise FormatError("give both lat= and lon= (or wkt=)",
                              field="lat" if not options.lat else "lon")
        return Columns(lat=_column(options.lat, header, "lat"),
                       lon=_column(options.lon, header, "lon"))
    names = [normalise(h) for h in header]
    if "wkt" in names:  # an explicit "wkt" column wins
        return Columns(wkt=names.index("wkt"), detected=True)
    lat, lon = _by_name(names, LAT_NAMES, _LAT_SUFFIX), _by_name(names, LON_NAMES, _LON_SUFFIX)
    if lat is not None and lon is not None and lat != lon:
        return Columns(lat=lat, lon=lon, detected=True)
    wkt = next((names.index(n) for n in WKT_NAMES if n in names), None)
    if wkt is not None:
        return Columns(wkt=wkt, detected=True)
    pair = _coordinate_pair(sample, decimal) if sample and headerless else None
    if pair is not None:
        return Columns(lat=pair[0], lon=pair[1], detected=True)
    raise FormatError(
        "no coordinate columns found: expected latitude/longitude columns (e.g. lat, lon) or "
        "a WKT column (wkt, geometry), or name them with lat=/lon= or wkt=; columns found: "
        + ", ".join(header), line=1)


def _coordinate_pair(sample: list[list[str]], decimal: str) -> tuple[int, int] | None:
    """(lat, lon) columns whose sample values are all numbers in range, by content."""
    width = max(len(r) for r in sample)
    ranges: list[float | None] = []
    for i in range(width):
        values = [parse_number(r[i], decimal) for r in sample if i < len(r) and r[i].strip()]
        if len(values) < 1 or any(v is None for v in values):
            ranges.append(None)
            continue
        ranges.append(max(abs(v) for v in values if v is not None))
    for i in range(width - 1):
        a, b = ranges[i], ranges[i + 1]
        if a is None or b is None:
            continue
        if a <= 90 and b <= 180:
            return (i, i + 1)
        if b <= 90 and a <= 180:
            return (i + 1, i)
    return None


def parse_number(raw: str, decimal: str = ".") -> float | None:
    raw = raw.strip()
    if decimal == ",":
        if "." in raw:
            return None
        raw = raw.replace(",", ".")
    try:
        return float(raw)
    except ValueError:
        if raw.count(",") == 1 and "." not in raw:  # a decimal comma in an ordinary file
            try:
                return float(raw.replace(",", "."))
            except ValueError:
                return None
        return None
