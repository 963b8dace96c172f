"""Coordinate systems: reading a source's CRS and reprojecting to/from WGS84 with pyproj.

Waymark stores WGS84 longitude/latitude (GeoJSON's CRS84). A source that says it is in
another system (GeoJSON ``crs``, a Shapefile ``.prj``, a GeoPackage ``srs_id``, or the
importer's ``?crs=``) is reprojected on import; exports may ask for another system.

Axis order (the classic lat/lon swap), the OGC convention:

* ``urn:ogc:def:crs:EPSG::N`` and ``http://www.opengis.net/def/crs/EPSG/0/N`` mean the
  axis order of the EPSG definition: ``urn:ogc:def:crs:EPSG::4326`` is latitude first
  (what GeoServer and WFS 1.1 write), EPSG:27700/2056/3857 are easting first.
* the legacy ``EPSG:N`` and files that carry their own definition (``.prj`` WKT,
  GeoPackage, FlatGeobuf) are x/y: longitude or easting first, as GIS software writes them.
* ``CRS84`` (``urn:ogc:def:crs:OGC:1.3:CRS84``) is longitude/latitude.

pyproj (PROJ) is imported lazily: plain WGS84 imports never load it. PROJ's network
access stays off (no grids are downloaded), so transformations use the best method
available offline (e.g. a Helmert transformation for OSGB36, accurate to a few metres).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from waymark.formats.model import FormatError

_CRS84 = re.compile(r"^(?:urn:ogc:def:crs:OGC:(?:1\.3|):CRS84|(?:OGC:)?CRS:?84|"
                    r"https?://www\.opengis\.net/def/crs/OGC/1\.3/CRS84)$", re.IGNORECASE)
_URN = re.compile(r"^(?:urn:ogc:def:crs:EPSG:[\d.]*:(\d+)|"
                  r"https?://www\.opengis\.net/def/crs/EPSG/[\d.]+/(\d+))$", re.IGNORECASE)
_LEGACY = re.compile(r"^EPSG:+(\d+)$", re.IGNORECASE)
_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2,
          "MultiPolygon": 3}


@dataclass(frozen=True, slots=True)
class SourceCrs:
    """A parsed coordinate system: its pyproj CRS, a label for people, the axis rule."""

    crs: Any  # pyproj.CRS
    label: str
    authority_order: bool

    @property
    def is_wgs84_lonlat(self) -> bool:
        """True when coordinates are already WGS84 longitude/latitude (nothing to do)."""
        from pyproj import CRS

        crs = self.crs.to_2d() if len(self.crs.axis_info) > 2 else self.crs
        if crs.equals(CRS.from_user_input("OGC:CRS84"), ignore_axis_order=True):
            return not self.authority_order or _lon_first(self.crs)
        return False


def _lon_first(crs: Any) -> bool:
    axis = crs.axis_info
    return bool(axis) and axis[0].direction.lower() in ("east", "west")


def parse_crs(text: str, *, authority_order: bool | None = None) -> SourceCrs:
    """A CRS from a name (``EPSG:27700``, a URN, ``CRS84``), WKT or PROJ JSON."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    name = (text or "").strip()
    if not name:
        raise FormatError("empty coordinate system name", field="crs")
    if _CRS84.match(name):
        return SourceCrs(CRS.from_user_input("OGC:CRS84"), "CRS84", False)
    m = _URN.match(name)
    legacy = _LEGACY.match(name)
    digits = (m.group(1) or m.group(2)) if m else legacy.group(1) if legacy else None
    if digits is not None:
        code = int(digits)
        try:
            crs = CRS.from_epsg(code)
        except CRSError:
            raise FormatError(f"unknown coordinate system EPSG:{code}", field="crs") from None
        order = bool(m) if authority_order is None else authority_order
        return SourceCrs(crs, f"EPSG:{code}", order)
    try:
        crs = CRS.from_user_input(name)
    except CRSError:
        shown = name if len(name) < 60 else name[:57] + "..."
        raise FormatError(f"unknown coordinate system {shown!r}; give it as EPSG:<code>",
                          field="crs") from None
    return SourceCrs(crs, label_of(crs), bool(authority_order))


def label_of(crs: Any) -> str:
    """"EPSG:27700" when the CRS matches an EPSG code, else its name."""
    auth = crs.to_authority(min_confidence=70)
    if auth:
        return f"{auth[0]}:{auth[1]}"
    return crs.name or "unnamed coordinate system"


def _flatten(gtype: str, coords: Any, xs: list[Any], ys: list[Any]) -> None:
    depth = _DEPTH[gtype]
    stack = [(coords, depth)]
    while stack:
        c, d = stack.pop()
        if d == 0:
            xs.append(float(c[0]))
            ys.append(float(c[1]))
        else:
            stack.extend((x, d - 1) for x in reversed(c))


def _rebuild(coords: Any, depth: int, it: Any) -> Any:
    if depth == 0:
        x, y = next(it)
        return [x, y, *coords[2:3]]
    return [_rebuild(c, depth - 1, it) for c in coords]


def _parts(geom: dict[str, Any]) -> list[dict[str, Any]]:
    if geom.get("type") == "GeometryCollection":
        return [g for part in geom.get("geometries") or () for g in _parts(part)]
    return [geom]


def _rebuilt(geom: dict[str, Any], it: Any) -> dict[str, Any]:
    if geom.get("type") == "GeometryCollection":
        return {**geom, "geometries": [_rebuilt(g, it) for g in geom["geometries"]]}
    return {**geom, "coordinates": _rebuild(geom["coordinates"], _DEPTH[geom["type"]], it)}


class Transform:
    """Reprojects whole lists of GeoJSON geometries in one PROJ call (fast for 100k)."""

    def __init__(self, source: Any, target: Any, *, always_xy: bool, label: str) -> None:
        import warnings

        from pyproj import Transformer

        self.label = label
        with warnings.catch_warnings():  # "best transformation is not available": no grids
            warnings.simplefilter("ignore", UserWarning)
            self._t = Transformer.from_crs(source, target, always_xy=always_xy)

    def geometries(self, geoms: list[dict[str, Any] | None], on_bad: Any = None) -> list[dict[str, Any] | None]:
        """New geometry dicts (inputs untouched). ``on_bad(i)`` is called for a geometry
        whose structure cannot be walked and must raise; unusable results raise too."""
        import numpy as np

        xs: list[float] = []
        ys: list[float] = []
        ends = []
        for i, g in enumerate(geoms):
            if g is not None:
                try:
                    for part in _parts(g):
                        _flatten(part["type"], part["coordinates"], xs, ys)
                except (KeyError, TypeError, IndexError, ValueError):
                    if on_bad is not None:
                        on_bad(i)
                    raise FormatError("geometry cannot be reprojected: malformed coordinates",
                                      index=i) from None
            ends.append(len(xs))
        if not xs:
            return list(geoms)
        tx, ty = self._t.transform(np.asarray(xs, dtype="float64"),
                                   np.asarray(ys, dtype="float64"))
        bad = ~(np.isfinite(tx) & np.isfinite(ty))
        if bad.any():
            first = int(np.argmax(bad))
            index = next(i for i, end in enumerate(ends) if end > first)
            raise FormatError(f"coordinates ({xs[first]}, {ys[first]}) cannot be reprojected "
                              f"from {self.label}: outside the area where it is defined",
                              index=index)
        it = zip(tx.tolist(), ty.tolist(), strict=False)
        return [None if g is None else _rebuilt(g, it) for g in geoms]


def to_wgs84(source: SourceCrs) -> Transform | None:
    """The transform from ``source`` to WGS84 longitude/latitude, None when not needed."""
    if source.is_wgs84_lonlat:
        return None
    return Transform(source.crs, "OGC:CRS84", always_xy=not source.authority_order,
                     label=source.label)


def from_wgs84(target: SourceCrs) -> Transform | None:
    """The transform for exports: WGS84 to ``target``, x/y (easting or longitude first)."""
    if target.is_wgs84_lonlat or label_of(target.crs) in ("EPSG:4326", "OGC:CRS84"):
        return None
    return Transform("OGC:CRS84", target.crs, always_xy=True, label=target.label)
