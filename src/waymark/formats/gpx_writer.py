"""GPX 1.1 export.

* Point -> ``wpt``; MultiPoint -> one ``wpt`` per point.
* LineString -> ``trk`` with one ``trkseg`` (``rte`` when the feature came from
  a GPX route, i.e. ``gpx_type == "route"``); MultiLineString -> one ``trk``
  with a ``trkseg`` per line.
* Polygon / MultiPolygon -> ``trk`` with one ``trkseg`` per ring (lossy: GPX
  has no areas, so they read back as (Multi)LineStrings).
* GeometryCollection -> its members exported separately with the same
  properties; features without geometry are skipped (GPX needs coordinates).
* name/desc/cmt/type/sym (and ``time`` for waypoints) become GPX elements;
  per-point times come from ``coordinateProperties.times``; a route's per-point
  names/descs/cmts/syms/types/turns become its ``rtept`` elements. Every other
  property, and the effective style (layer colours and widths overridden by the
  feature's simplestyle properties), goes to ``<extensions><wm:prop name=".."
  [type="json"]>`` so it round-trips exactly; for other apps a line's colour,
  opacity and width are also written as TopoGrafix ``gpx_style:line`` and a
  waypoint's colour as OsmAnd ``osmand:color``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # nosec B405 - builds export XML only; input is parsed by defusedxml
from collections.abc import Set as AbstractSet
from typing import Any

from waymark.formats._writer_util import num, split_geometry, value_text, xml_text
from waymark.formats.gpx_reader import POINT_LISTS, WAYMARK_NS
from waymark.formats.model import ExportLayer
from waymark.formats.simplestyle import effective_style, hex_color

GPX_NS = "http://www.topografix.com/GPX/1/1"
STYLE_NS = "http://www.topografix.com/GPX/gpx_style/0/2"
OSMAND_NS = "https://osmand.net"
_ELEMENTS = ("name", "cmt", "desc", "sym", "type")  # order from the GPX schema (after ele/time)
_SKIP = {"gpx_type", "coordinateProperties", "_style"}

_PREFIX = {GPX_NS: "", WAYMARK_NS: "wm:", STYLE_NS: "gpxstyle:", OSMAND_NS: "osmand:"}


def _q(tag: str, ns: str = GPX_NS) -> str:
    # literal prefixes declared on the root: no global ElementTree namespace registry
    return _PREFIX[ns] + tag


def _text(parent: ET.Element, tag: str, value: Any, ns: str = GPX_NS) -> None:
    el = ET.SubElement(parent, _q(tag, ns))
    el.text = xml_text(value if isinstance(value, str) else str(value))


def _point(parent: ET.Element, tag: str, pos: Any, time: Any = None,
           texts: dict[str, Any] | None = None) -> ET.Element:
    el = ET.SubElement(parent, _q(tag), {"lat": num(pos[1]), "lon": num(pos[0])})
    if len(pos) > 2 and pos[2] is not None:
        _text(el, "ele", num(pos[2]))
    if isinstance(time, str) and time and time == time.strip():
        _text(el, "time", time)
    for key in _ELEMENTS:  # a route point's name, description, symbol...
        if texts and texts.get(key) is not None:
            _text(el, key, texts[key])
    if texts and texts.get("turn") is not None:
        _text(ET.SubElement(el, _q("extensions")), "turn", texts["turn"], WAYMARK_NS)
    return el


def _point_lists(cp: Any, count: int) -> dict[str, list[Any]]:
    """The route's per-point texts (coordinateProperties.names, ...) that GPX elements can
    carry exactly: aligned with the points, strings without edge spaces or nulls."""
    if not isinstance(cp, dict):
        return {}
    out = {}
    for key in POINT_LISTS:
        values = cp.get(key)
        if isinstance(values, list) and len(values) == count and all(
                v is None or (isinstance(v, str) and v and v == v.strip()) for v in values):
            out[key] = values
    return out


def _meta(el: ET.Element, props: dict[str, Any], style: dict[str, Any],
          extra_skip: AbstractSet[str] = frozenset()) -> None:
    plain = {k for k in _ELEMENTS if isinstance(props.get(k), str) and props[k]
             and props[k] == props[k].strip()}
    for key in _ELEMENTS:
        if key in plain:
            _text(el, key, props[key])
    own = {k: v for k, v in props.items()
           if k not in plain and k not in _SKIP and k not in extra_skip}
    for key, value in style.items():
        own.setdefault(key, value)
    is_line = el.tag != _q("wpt")
    line_color = hex_color(style.get("stroke")) if is_line else None
    marker_color = hex_color(style.get("marker-color")) if not is_line else None
    if not own and not line_color and not marker_color:
        return
    ext = ET.SubElement(el, _q("extensions"))
    if line_color:
        line = ET.SubElement(ext, _q("line", STYLE_NS))
        _text(line, "color", line_color[1:].upper(), STYLE_NS)
        for key, tag in (("stroke-opacity", "opacity"), ("stroke-width", "width")):
            value = style.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                _text(line, tag, num(value), STYLE_NS)
    if marker_color:
        _text(ext, "color", marker_color, OSMAND_NS)
    for key, value in own.items():
        text, is_json = value_text(value)
        attrs = {"name": xml_text(str(key))}
        if is_json:
            attrs["type"] = "json"
        prop = ET.SubElement(ext, _q("prop", WAYMARK_NS), attrs)
        prop.text = xml_text(text)


def _times(props: dict[str, Any]) -> Any:
    cp = props.get("coordinateProperties")
    return cp.get("times") if isinstance(cp, dict) else None


def _feature(root: ET.Element, layer: ExportLayer, f: dict[str, Any], wpts: ET.Element,
             others: ET.Element) -> None:
    props = f.get("properties") or {}
    style = effective_style(layer.style, props)
    times = _times(props)
    for geom in split_geometry(f.get("geometry")):
        gtype, coords = geom["type"], geom["coordinates"]
        if gtype in ("Point", "MultiPoint"):
            for pos in [coords] if gtype == "Point" else coords:
                el = _point(wpts, "wpt", pos, props.get("time"))
                t = props.get("time")
                as_element = isinstance(t, str) and t and t == t.strip()
                _meta(el, props, style, {"time"} if as_element else set())
            continue
        if gtype == "LineString":
            segments, seg_times = [coords], [times] if times else None
        elif gtype == "MultiLineString":
            segments = coords
            seg_times = times if times and len(times) == len(coords) else None
        elif gtype == "Polygon":
            segments, seg_times = coords, None
        elif gtype == "MultiPolygon":
            segments, seg_times = [r for poly in coords for r in poly], None
        else:
            continue
        is_route = gtype == "LineString" and props.get("gpx_type") == "route"
        el = ET.SubElement(others, _q("rte" if is_route else "trk"))
        usable = seg_times is not None and all(
            isinstance(ts, list) and len(ts) == len(seg) for ts, seg in zip(seg_times, segments, strict=False))
        _meta(el, props, style)
        cp = props.get("coordinateProperties")
        lists = _point_lists(cp, len(segments[0])) if is_route else {}
        if cp is not None and not (isinstance(cp, dict) and set(cp) <= {"times", *lists}
                                   and (usable or "times" not in cp)):
            el_ext = el.find(_q("extensions"))
            if el_ext is None:
                el_ext = ET.SubElement(el, _q("extensions"))
            prop = ET.SubElement(el_ext, _q("prop", WAYMARK_NS),
                                 {"name": "coordinateProperties", "type": "json"})
            prop.text = xml_text(json.dumps(cp, ensure_ascii=False))
        for i, seg in enumerate(segments):
            ts = seg_times[i] if usable and seg_times else [None] * len(seg)
            if is_route:
                for j, (pos, t) in enumerate(zip(seg, ts, strict=False)):
                    texts = {POINT_LISTS[k]: v[j] for k, v in lists.items()}
                    _point(el, "rtept", pos, t, texts)
            else:
                trkseg = ET.SubElement(el, _q("trkseg"))
                for pos, t in zip(seg, ts, strict=False):
                    _point(trkseg, "trkpt", pos, t)


def write_gpx(layers: list[ExportLayer]) -> bytes:
    root = ET.Element("gpx", {"version": "1.1", "creator": "Waymark", "xmlns": GPX_NS,
                              "xmlns:wm": WAYMARK_NS, "xmlns:gpxstyle": STYLE_NS,
                              "xmlns:osmand": OSMAND_NS})
    if len(layers) == 1 and layers[0].name:
        meta = ET.SubElement(root, _q("metadata"))
        _text(meta, "name", layers[0].name)
    wpts = ET.Element("wpts")  # GPX order: all wpt, then rte, then trk
    rtes_trks = ET.Element("lines")
    for layer in layers:
        for f in layer.features:
            _feature(root, layer, f, wpts, rtes_trks)
    root.extend(list(wpts))
    routes = [e for e in rtes_trks if e.tag == _q("rte")]
    root.extend(routes + [e for e in rtes_trks if e.tag != _q("rte")])
    gpx: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return gpx
