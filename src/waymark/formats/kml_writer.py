"""KML 2.2 export: one Document, one Folder per layer, one Placemark per feature.

* ``name``/``description`` become elements; every other property becomes
  ``ExtendedData/Data`` (non-string values JSON-encoded and flagged with a
  ``wm:type="json"`` attribute that our reader honours; other tools see text).
* Styles: the effective style (layer colours and widths overridden by the
  feature's simplestyle properties, formats/simplestyle.py) is written as a shared
  ``<Style>`` (one per distinct style) referenced by ``styleUrl``, so reading the
  file back yields that effective style as simplestyle properties. The colours,
  widths and opacities live only in the Style; ``marker-size`` is also the icon
  scale for other viewers, and stays in ExtendedData with ``marker-symbol`` and the
  label. Opacity goes through the 8-bit KML alpha: it reads back rounded to 2
  decimals, and an opacity of 1 is implied (not returned).
* Geometry: Multi* and GeometryCollection -> MultiGeometry (collections are
  flattened; a collection whose members all share a type reads back as the
  matching Multi* type). Features without geometry are written without one.
* Our reader puts the folder (layer) name in a ``folder`` property.
* KMZ: the same document as ``doc.kml`` with a bundled pin icon for points.
"""

from __future__ import annotations

import io
import json
import struct
import xml.etree.ElementTree as ET  # nosec B405 - builds export XML only; input is parsed by defusedxml
import zipfile
import zlib
from typing import Any

from waymark.formats._writer_util import num, split_geometry, value_text, xml_text
from waymark.formats.kml_reader import WAYMARK_NS
from waymark.formats.model import ExportLayer
from waymark.formats.simplestyle import COLOR_KEYS, effective_style, hex_color

#: style properties a <Style> can carry
IN_STYLE = {"stroke", "stroke-width", "stroke-opacity", "fill", "fill-opacity", "marker-color"}
SCALES = {"small": 0.75, "medium": 1.0, "large": 1.5}

PIN_HREF = "files/pin.png"
KML_NS = "http://www.opengis.net/kml/2.2"
_ELEMENTS = ("name", "description")


def _plain(v: Any) -> bool:
    """Strings that survive the reader's whitespace stripping."""
    return isinstance(v, str) and bool(v) and v == v.strip()


def _q(tag: str) -> str:
    return tag  # default namespace declared literally on <kml> (no global ET registry)


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, _q(tag))
    if text is not None:
        el.text = xml_text(text)
    return el


def _color(hex_rgb: Any, opacity: Any) -> str | None:
    """"#rrggbb" + opacity -> KML aabbggrr."""
    if not isinstance(hex_rgb, str):
        return None
    h = hex_rgb.strip().lstrip("#").lower()
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    if len(h) != 6 or any(c not in "0123456789abcdef" for c in h):
        return None
    try:
        a = 255 if opacity is None else max(0, min(255, round(float(opacity) * 255)))
    except (TypeError, ValueError):
        a = 255
    return f"{a:02x}{h[4:6]}{h[2:4]}{h[0:2]}"


def _carried(key: str, value: Any) -> bool:
    """Does the <Style> give this value back exactly (so ExtendedData need not repeat it)?"""
    if key not in IN_STYLE:
        return False
    if key in COLOR_KEYS:
        return isinstance(value, str) and hex_color(value) == value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if key == "stroke-width":
        return value >= 0
    return 0 <= value < 1 and round(round(value * 255) / 255, 2) == value


def _style_element(parent: ET.Element, sid: str, style: dict[str, Any], icon_href: str | None) -> None:
    el = ET.SubElement(parent, _q("Style"), {"id": sid})
    marker = _color(style.get("marker-color"), None)
    scale = SCALES.get(style.get("marker-size") or "")
    if marker or icon_href or scale:
        icon = _sub(el, "IconStyle")
        if marker:
            _sub(icon, "color", marker)
        if scale:
            _sub(icon, "scale", num(scale))
        if icon_href:  # a white pin, tinted by the colour above
            _sub(_sub(icon, "Icon"), "href", icon_href)
    line_color = _color(style.get("stroke"), style.get("stroke-opacity"))
    line_width = style.get("stroke-width")
    if not isinstance(line_width, (int, float)) or isinstance(line_width, bool):
        line_width = None
    if line_color or line_width is not None:
        line = _sub(el, "LineStyle")
        if line_color:
            _sub(line, "color", line_color)
        if line_width is not None:
            _sub(line, "width", num(line_width))
    fill = _color(style.get("fill"), style.get("fill-opacity"))
    if fill:
        _sub(_sub(el, "PolyStyle"), "color", fill)
    elif style.get("fill-opacity") == 0:
        _sub(_sub(el, "PolyStyle"), "fill", "0")


def _coords(positions: Any) -> str:
    return " ".join(",".join(num(v) for v in p[:3]) for p in positions)


def _primitive(parent: ET.Element, gtype: str, coords: Any) -> None:
    if gtype == "Point":
        _sub(_sub(parent, "Point"), "coordinates", _coords([coords]))
    elif gtype == "LineString":
        _sub(_sub(parent, "LineString"), "coordinates", _coords(coords))
    elif gtype == "Polygon":
        poly = _sub(parent, "Polygon")
        for i, ring in enumerate(coords):
            holder = _sub(poly, "outerBoundaryIs" if i == 0 else "innerBoundaryIs")
            _sub(_sub(holder, "LinearRing"), "coordinates", _coords(ring))


def _geometry(pm: ET.Element, geom: dict[str, Any] | None) -> None:
    if not geom:
        return
    gtype = geom["type"]
    if gtype in ("Point", "LineString", "Polygon"):
        _primitive(pm, gtype, geom["coordinates"])
        return
    multi = _sub(pm, "MultiGeometry")
    if gtype == "GeometryCollection":
        for part in split_geometry(geom):
            _geometry(multi, part)
    else:
        for coords in geom["coordinates"]:
            _primitive(multi, gtype[5:], coords)


def write_kml(layers: list[ExportLayer], icon_href: str | None = None) -> bytes:
    root = ET.Element("kml", {"xmlns": KML_NS, "xmlns:wm": WAYMARK_NS})
    doc = _sub(root, "Document")
    _sub(doc, "name", (layers[0].name or "") if len(layers) == 1 else "Waymark export")
    style_ids: dict[str, str] = {}
    folders = []
    for layer in layers:
        folder = ET.Element(_q("Folder"))
        _sub(folder, "name", layer.name or "")
        for f in layer.features:
            props = f.get("properties") or {}
            attrs = {"id": xml_text(str(f["id"]))} if f.get("id") is not None else {}
            pm = ET.SubElement(folder, _q("Placemark"), attrs)
            as_element = {k for k in _ELEMENTS if _plain(props.get(k))}
            for key in _ELEMENTS:
                if key in as_element:
                    _sub(pm, key, props[key])
            style = {k: v for k, v in effective_style(layer.style, props).items()
                     if k in IN_STYLE or k == "marker-size"}
            if style or (icon_href and _has_point(f.get("geometry"))):
                key = json.dumps(style, sort_keys=True)
                if key not in style_ids:
                    style_ids[key] = f"style{len(style_ids) + 1}"
                    _style_element(doc, style_ids[key], style, icon_href)
                _sub(pm, "styleUrl", "#" + style_ids[key])
            extra = {k: v for k, v in props.items()
                     if k not in as_element and not _carried(k, v) and k != "_style"}
            if extra:
                ext = _sub(pm, "ExtendedData")
                for k, v in extra.items():
                    text, is_json = value_text(v)
                    if not is_json and text != text.strip():  # keep edge whitespace exactly
                        text, is_json = json.dumps(text, ensure_ascii=False), True
                    data = ET.SubElement(ext, _q("Data"), {"name": xml_text(str(k))})
                    if is_json:
                        data.set("wm:type", "json")
                    _sub(data, "value", text)
            _geometry(pm, f.get("geometry"))
        folders.append(folder)
    doc.extend(folders)
    kml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return kml


def _has_point(geom: dict[str, Any] | None) -> bool:
    return any(g["type"] in ("Point", "MultiPoint") for g in split_geometry(geom))


def write_kmz(layers: list[ExportLayer]) -> bytes:
    """KMZ: ``doc.kml`` plus the pin icon it refers to (``files/pin.png``), so Google Earth
    and other KML viewers show coloured pins without fetching anything."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("doc.kml", write_kml(layers, icon_href=PIN_HREF))
        out.writestr(PIN_HREF, pin_png())
    return buf.getvalue()


def pin_png(size: int = 32) -> bytes:
    """A white round marker with a grey rim on a transparent background, as PNG bytes
    (drawn here so no image file or imaging library is needed)."""
    c = (size - 1) / 2
    rows = []
    for y in range(size):
        row = bytearray(b"\x00")  # PNG filter type 0 for the row
        for x in range(size):
            d = ((x - c) ** 2 + (y - c) ** 2) ** 0.5
            if d <= c - 3:
                row += bytes((255, 255, 255, 255))
            elif d <= c:
                row += bytes((90, 90, 90, 255))
            else:
                row += bytes(4)
        rows.append(bytes(row))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))
