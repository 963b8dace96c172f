"""GPX 1.0/1.1 reader (namespaced or not, BOM tolerated).

Mapping (close to togeojson so users see familiar results):

* ``wpt`` -> Point; ``rte`` -> LineString; ``trk`` -> LineString (one non-empty
  segment) or MultiLineString (several). Empty segments are dropped; a route or
  track without points is skipped with a warning; one with a single point is
  imported as a Point (with a warning) since a line needs two positions.
* ``ele`` becomes the z coordinate (an empty/non-numeric ``ele`` is ignored).
* Times: waypoints get a ``time`` property; routes/tracks get
  ``coordinateProperties: {"times": [...]}`` (togeojson's convention) aligned
  with the coordinates (a list of lists for MultiLineString), ``None`` where a
  point has no time; omitted when no point has a time.
* name/desc/cmt/type/sym are copied (``sym``, the waypoint symbol, is kept for
  icons); ``gpx_type`` is "waypoint"|"route"|"track".
* Route points keep their name/desc/cmt/sym/type and turn instruction (``<turn>``
  or a turn element in extensions): as per-point lists of the route
  (``coordinateProperties.names``, ``descs``, ``cmts``, ``syms``, ``types``,
  ``turns``, aligned like ``times``), or with ``route_points="points"`` as Point
  features of their own (``gpx_type: "route_point"``, ``route``: its name).
* Styles become simplestyle properties (formats/simplestyle.py): TopoGrafix
  ``gpx_style:line`` color/opacity/width -> ``stroke``/``stroke-opacity``/
  ``stroke-width``; the colour of Garmin ``gpxx:DisplayColor`` (16 named colours),
  OsmAnd ``osmand:color`` (#rrggbb or #aarrggbb) and TopoGrafix GPX 1.0
  ``topografix:color`` -> ``stroke`` on routes and tracks, ``marker-color`` on
  waypoints.
* Waymark's own ``<extensions><wm:prop name=.. type="json">`` (written by our
  GPX writer) restore properties exactly.
* Non-numeric / out-of-range lat/lon -> FormatError naming the element's line
  (skipped with a warning when ``skip_invalid``).
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any, NoReturn

from waymark.formats.geometry import MAX_LAT, MAX_LON
from waymark.formats.model import (
    FormatError,
    ImportResult,
    ParsedFeature,
    ParsedLayer,
    ReadOptions,
    WarningCollector,
)
from waymark.formats.simplestyle import hex_color
from waymark.formats.xml_safety import Node, parse_xml

WAYMARK_NS = "https://waymark.invalid/ns/gpx/1"
GARMIN_COLORS = {
    "Black": "#000000", "DarkRed": "#8b0000", "DarkGreen": "#006400",
    "DarkYellow": "#b5b500", "DarkBlue": "#00008b", "DarkMagenta": "#8b008b",
    "DarkCyan": "#008b8b", "LightGray": "#d3d3d3", "DarkGray": "#a9a9a9",
    "Red": "#ff0000", "Green": "#00ff00", "Yellow": "#ffff00", "Blue": "#0000ff",
    "Magenta": "#ff00ff", "Cyan": "#00ffff", "White": "#ffffff",
}  # "Transparent" deliberately absent: no colour to apply
_TEXT_FIELDS = ("name", "desc", "cmt", "type", "sym")
#: per-point lists kept on a route: coordinateProperties key -> rtept element
POINT_LISTS = {"names": "name", "descs": "desc", "cmts": "cmt", "syms": "sym", "types": "type",
               "turns": "turn"}


def _set_color(style: dict[str, Any], key: str, text: str | None) -> None:
    """A GPX colour ("RRGGBB", "#rrggbb", or Android's "#AARRGGBB") as "#rrggbb"."""
    t = (text or "").strip().lstrip("#")
    color = hex_color(t[-6:] if len(t) == 8 else t)
    if color:
        style[key] = color


class _Skip(Exception):
    pass


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


class _Reader:
    def __init__(self, skip_invalid: bool) -> None:
        self.skip_invalid = skip_invalid
        self.warnings = WarningCollector()

    def point(self, node: Node) -> tuple[list[Any], str | None]:
        """Position [lon, lat(, ele)] and time of a wpt/rtept/trkpt."""
        lat_s, lon_s = node.get("lat"), node.get("lon")
        for label, raw, bound in (("latitude", lat_s, MAX_LAT), ("longitude", lon_s, MAX_LON)):
            attr = label[:3]
            if raw is None:
                self.invalid(f"<{node.tag}> has no {attr} attribute", node, attr)
            try:
                v = float(raw)
            except ValueError:
                self.invalid(f"{label} {raw!r} is not a number", node, attr)
            if not -bound <= v <= bound:  # also catches nan
                self.invalid(f"{label} {raw} out of range [-{bound:.0f}, {bound:.0f}]", node, attr)
        pos = [float(lon_s), float(lat_s)]
        ele = _float(node.findtext("ele"))
        if ele is not None:
            pos.append(ele)
        return pos, node.findtext("time")

    def invalid(self, reason: str, node: Node, field: str | None = None) -> NoReturn:
        err = FormatError(reason, line=node.line, field=field)
        if not self.skip_invalid:
            raise err
        self.warnings.add(f"{err}; point skipped")
        raise _Skip

    def props(self, node: Node, gpx_type: str) -> dict[str, Any]:
        props: dict[str, Any] = {}
        for f in _TEXT_FIELDS:
            v = node.findtext(f)
            if v is not None:
                props[f] = v
        props["gpx_type"] = gpx_type
        style: dict[str, Any] = {}
        color_key = "marker-color" if gpx_type == "waypoint" else "stroke"
        for child in node.children:  # GPX 1.0: private elements sit in the element itself
            if child.tag == "color" and "topografix" in child.ns.lower():
                _set_color(style, color_key, child.text)
        ext = node.find("extensions")
        if ext is not None:
            self.extensions(ext, props, style, color_key)
        for key, value in style.items():
            props.setdefault(key, value)
        return props

    def extensions(self, ext: Node, props: dict[str, Any], style: dict[str, Any], color_key: str) -> None:
        for child in ext.iter():
            ns = child.ns.lower()
            if child.tag == "line" and "gpx_style" in ns:
                _set_color(style, "stroke", child.findtext("color"))
                op = _float(child.findtext("opacity"))
                if op is not None and op != 1.0 and 0 <= op <= 1:  # 1 is the default, as in KML
                    style["stroke-opacity"] = op
                w = _float(child.findtext("width"))
                if w is not None and w >= 0:
                    style["stroke-width"] = w
            elif child.tag == "DisplayColor":
                color = GARMIN_COLORS.get((child.text or "").strip())
                if color:
                    style[color_key] = color
            elif child.tag == "color" and ("osmand" in ns or "topografix" in ns):
                _set_color(style, color_key, child.text)
            elif child.tag == "prop" and child.ns == WAYMARK_NS:
                name = child.get("name")
                if name is None:
                    continue
                value = child.text
                if child.get("type") == "json":
                    with contextlib.suppress(ValueError):
                        value = json.loads(value)
                props[name] = value

    def points(self, nodes: list[Node], kept: list[Any] | None = None) -> tuple[list[Any], list[Any]]:
        coords, times = [], []
        for n in nodes:
            try:
                pos, t = self.point(n)
            except _Skip:
                continue
            coords.append(pos)
            times.append(t)
            if kept is not None:
                kept.append(n)
        return coords, times

    def route(self, node: Node, mode: str) -> list[ParsedFeature]:
        """A route line; its points' names, descriptions, symbols and turn instructions
        become per-point lists of the route, or (``mode == "points"``) points of their own."""
        kept: list[Node] = []
        coords, times = self.points(node.findall("rtept"), kept)
        line = self.line(node, [(coords, times)], "route")
        if line is None:
            return []
        texts = {key: [_point_text(n, tag) for n in kept] for key, tag in POINT_LISTS.items()}
        texts = {k: v for k, v in texts.items() if any(t is not None for t in v)}
        if mode != "points":
            if texts and line.geometry and line.geometry["type"] == "LineString":
                cp = line.properties.setdefault("coordinateProperties", {})
                if isinstance(cp, dict):
                    cp.update(texts)
            return [line]
        route_name = node.findtext("name")
        points = []
        for i, (n, pos) in enumerate(zip(kept, coords, strict=False)):
            props = {f: t for f in _TEXT_FIELDS if (t := _point_text(n, f)) is not None}
            if (turn := _point_text(n, "turn")) is not None:
                props["turn"] = turn
            if times[i] is not None:
                props["time"] = times[i]
            props["gpx_type"] = "route_point"
            if route_name:
                props["route"] = route_name
            points.append(ParsedFeature({"type": "Point", "coordinates": pos}, props))
        return [line, *points]

    def waypoint(self, node: Node) -> ParsedFeature | None:
        try:
            pos, t = self.point(node)
        except _Skip:
            return None
        props = self.props(node, "waypoint")
        if t is not None:
            props.setdefault("time", t)
        return ParsedFeature({"type": "Point", "coordinates": pos}, props)

    def line(self, node: Node, segments: list[tuple[list[Any], list[Any]]], gpx_type: str) -> ParsedFeature | None:
        segments = [s for s in segments if s[0]]
        lines = [s for s in segments if len(s[0]) >= 2]
        label = f"line {node.line}: {gpx_type}"
        name = node.findtext("name")
        if name:
            label += f" {name!r}"
        if not lines:
            if not segments:
                self.warnings.add(f"{label} has no points, skipped")
                return None
            self.warnings.add(f"{label} has a single point, imported as a point")
            props = self.props(node, gpx_type)
            coords, times = segments[0]
            if times[0] is not None:
                props.setdefault("time", times[0])
            return ParsedFeature({"type": "Point", "coordinates": coords[0]}, props)
        if len(lines) < len(segments):
            self.warnings.add(f"{label}: single-point segment(s) dropped")
        props = self.props(node, gpx_type)
        has_times = any(t is not None for _, ts in lines for t in ts)
        if len(lines) == 1:
            geom = {"type": "LineString", "coordinates": lines[0][0]}
            times = lines[0][1]
        else:
            geom = {"type": "MultiLineString", "coordinates": [c for c, _ in lines]}
            times = [ts for _, ts in lines]
        if has_times and "coordinateProperties" not in props:
            props["coordinateProperties"] = {"times": times}
        return ParsedFeature(geom, props)


def _point_text(node: Node, tag: str) -> str | None:
    """Text of a route point's element; ``turn`` also from extensions (OsmAnd, Garmin)."""
    value = node.findtext(tag)
    if value is None and tag == "turn":
        ext = node.find("extensions")
        if ext is not None:
            for child in ext.iter():
                if child.tag in ("turn", "TurnInstruction", "instruction") and child.text.strip():
                    return child.text.strip()
    return value


def read_gpx(data: bytes, *, skip_invalid: bool = False,
             options: ReadOptions | None = None) -> ImportResult:
    root = parse_xml(data)
    if root.tag != "gpx":
        raise FormatError(f"not a GPX document (root element is <{root.tag}>)", line=root.line)
    r = _Reader(skip_invalid)
    features: list[ParsedFeature] = []
    for node in root.children:
        if node.tag == "wpt":
            f = r.waypoint(node)
        elif node.tag == "rte":
            features.extend(r.route(node, (options or ReadOptions()).route_points))
            continue
        elif node.tag == "trk":
            segs = [r.points(s.findall("trkpt")) for s in node.findall("trkseg")]
            f = r.line(node, segs, "track")
        else:
            continue
        if f is not None:
            features.append(f)
    meta = root.find("metadata")
    name = (meta.findtext("name") if meta is not None else None) or root.findtext("name")
    return ImportResult([ParsedLayer(name, features)], r.warnings.result())
