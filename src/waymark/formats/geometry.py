"""GeoJSON geometry validation and bounding boxes in pure Python.

Why pure Python: building a shapely object per feature costs more than checking
the coordinate lists, and imports of 100k features must stay fast. Rules:

* known types only; ``coordinates`` nested to the right depth;
* positions hold 2 or 3 finite numbers (a 4th "M" value or more is dropped);
  lon in [-180, 180], lat in [-90, 90], with a tolerance of ``COORD_TOLERANCE``
  (0.01 degree, ~1 km) because real datasets carry float noise from
  reprojection at the antimeridian (Natural Earth has lon 180.0033); such
  values are kept as they are;
* LineString >= 2 positions; polygon rings >= 4 positions and closed
  (GeoJSON input with unclosed rings is rejected; the KML and CSV/WKT readers
  close rings themselves before validating, because those sources often omit
  the closing position);
* empty geometries (``[]``, ``[null]``) are errors;
* topological validity (self-intersections ...) is NOT checked and nothing is
  "fixed": real-world data has such geometries and they still display fine.

``validate_geometry`` returns the geometry, a new dict only when positions had
to be trimmed (never mutates its input).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from waymark.formats.model import FormatError

GEOMETRY_TYPES = (
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
)
_isfinite = math.isfinite
COORD_TOLERANCE = 0.01
MAX_LON = 180.0 + COORD_TOLERANCE
MAX_LAT = 90.0 + COORD_TOLERANCE


def _fail(msg: str) -> FormatError:
    return FormatError(msg)


def _position(p: Any, where: str) -> Any:
    """Check one position; return it, or a trimmed copy if it had an M value."""
    if type(p) is not list and type(p) is not tuple:
        raise _fail(f"{where}: position must be an array of numbers, got {p!r}")
    n = len(p)
    if n < 2:
        raise _fail(f"{where}: position needs longitude and latitude, got {list(p)!r}")
    x = p[0]
    y = p[1]
    tx = type(x)
    ty = type(y)
    if (tx is not float and tx is not int) or (ty is not float and ty is not int):
        raise _fail(f"{where}: coordinates must be numbers, got {list(p)!r}")
    if not (-MAX_LON <= x <= MAX_LON):
        if not _isfinite(x):
            raise _fail(f"{where}: coordinate is not a finite number ({x!r})")
        raise _fail(f"{where}: longitude {x} out of range [-180, 180]")
    if not (-MAX_LAT <= y <= MAX_LAT):
        if not _isfinite(y):
            raise _fail(f"{where}: coordinate is not a finite number ({y!r})")
        raise _fail(f"{where}: latitude {y} out of range [-90, 90]")
    if n >= 3:
        z = p[2]
        tz = type(z)
        if (tz is not float and tz is not int) or not _isfinite(z):
            raise _fail(f"{where}: elevation must be a finite number, got {z!r}")
        if n > 3:
            return [x, y, z]
    return p


def _positions(coords: Any, where: str, minimum: int) -> Any:
    if type(coords) is not list and type(coords) is not tuple:
        raise _fail(f"{where}: expected an array of positions")
    if len(coords) < minimum:
        raise _fail(f"{where}: needs at least {minimum} positions, got {len(coords)}")
    out = None
    for i, p in enumerate(coords):
        q = _position(p, f"{where}, position {i}")
        if q is not p:
            if out is None:
                out = list(coords[:i])
            out.append(q)
        elif out is not None:
            out.append(p)
    return coords if out is None else out


def _ring(coords: Any, where: str) -> Any:
    coords = _positions(coords, where, 4)
    a = coords[0]
    b = coords[-1]
    if a[0] != b[0] or a[1] != b[1]:
        raise _fail(f"{where}: ring is not closed (first and last positions differ)")
    return coords


def _polygon(coords: Any, where: str) -> Any:
    if type(coords) is not list or not coords:
        raise _fail(f"{where}: Polygon needs at least one ring")
    out = None
    for i, ring in enumerate(coords):
        r = _ring(ring, f"{where}, ring {i}")
        if r is not ring and out is None:
            out = list(coords)
        if out is not None:
            out[i] = r
    return coords if out is None else out


def _multi(coords: Any, where: str, part: Callable[[Any, str], Any], kind: str) -> Any:
    if type(coords) is not list or not coords:
        raise _fail(f"{where}: empty {kind}")
    out = None
    for i, c in enumerate(coords):
        r = part(c, f"{where}, part {i}")
        if r is not c and out is None:
            out = list(coords)
        if out is not None:
            out[i] = r
    return coords if out is None else out


def _coords(gtype: str, coords: Any, where: str) -> Any:
    if gtype == "Point":
        if type(coords) is list and not coords:
            raise _fail(f"{where}: empty Point")
        return _position(coords, where)
    if gtype == "LineString":
        return _positions(coords, where, 2)
    if gtype == "Polygon":
        return _polygon(coords, where)
    if gtype == "MultiPoint":
        return _multi(coords, where, _position, gtype)
    if gtype == "MultiLineString":
        return _multi(coords, where, lambda c, w: _positions(c, w, 2), gtype)
    if gtype == "MultiPolygon":
        return _multi(coords, where, _polygon, gtype)
    raise _fail(f"unknown geometry type {gtype!r}")


def validate_geometry(geom: dict[str, Any], _where: str | None = None) -> dict[str, Any]:
    """Validate a GeoJSON geometry dict; raise FormatError with the reason."""
    if type(geom) is not dict:
        raise _fail(f"geometry must be an object, got {type(geom).__name__}")
    gtype = geom.get("type")
    where = _where or str(gtype)
    if gtype == "GeometryCollection":
        parts = geom.get("geometries")
        if type(parts) is not list or not parts:
            raise _fail(f"{where}: empty GeometryCollection")
        new = [validate_geometry(g, f"{where}, geometry {i}") for i, g in enumerate(parts)]
        if any(a is not b for a, b in zip(new, parts, strict=False)):
            return {**geom, "geometries": new}
        return geom
    if gtype not in GEOMETRY_TYPES:
        raise _fail(f"unknown geometry type {gtype!r}")
    if "coordinates" not in geom:
        raise _fail(f"{where}: missing 'coordinates'")
    coords = geom["coordinates"]
    new = _coords(gtype, coords, where)
    if new is not coords:
        return {**geom, "coordinates": new}
    return geom


def _walk_positions(geom: dict[str, Any]) -> Iterator[Any]:
    gtype = geom.get("type")
    if gtype == "GeometryCollection":
        for g in geom.get("geometries") or ():
            if g:
                yield from _walk_positions(g)
        return
    coords = geom.get("coordinates")
    if not coords:
        return
    depth = {"Point": 0, "MultiPoint": 1, "LineString": 1,
             "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}.get(gtype or "")
    if depth is None:
        return
    if depth == 0:
        yield coords
        return
    stack = [(coords, depth)]
    while stack:
        c, d = stack.pop()
        if d == 1:
            yield from c
        else:
            stack.extend((x, d - 1) for x in c)


def geometry_bbox(geom: dict[str, Any] | None) -> tuple[float, float, float, float] | None:
    """(minx, miny, maxx, maxy) of a geometry dict, None for null/empty geometry."""
    if not geom:
        return None
    minx = miny = math.inf
    maxx = maxy = -math.inf
    for p in _walk_positions(geom):
        x = p[0]
        y = p[1]
        # comparisons, not min()/max(): this loop sees every position of an import, and a
        # builtin call per position made it many times slower
        if x < minx:  # noqa: PLR1730
            minx = x
        if x > maxx:  # noqa: PLR1730
            maxx = x
        if y < miny:  # noqa: PLR1730
            miny = y
        if y > maxy:  # noqa: PLR1730
            maxy = y
    if minx == math.inf:
        return None
    return (minx, miny, maxx, maxy)


def close_ring(ring: list[Any]) -> list[Any]:
    """Append the first position when a ring is not closed (KML, WKT sources)."""
    if ring and (ring[0][0] != ring[-1][0] or ring[0][1] != ring[-1][1]):
        return [*ring, ring[0]]
    return ring
