"""KML / KMZ reader.

Why these choices:

* Placemarks are collected anywhere (Document/Folder nesting, or directly under
  ``<kml>``) into ONE layer named after the first Document (or Folder); the
  folder path is kept as a ``folder`` property ("A / B") instead of splitting
  layers, so a 87-folder ski map does not explode into 87 layers.
* Geometry: Point, LineString, LinearRing (-> Polygon, it encloses an area),
  Polygon (holes kept, unclosed rings closed), MultiGeometry (-> Multi* when all
  parts have one type, else GeometryCollection; nesting flattened), gx:Track /
  gx:MultiTrack (-> LineString / MultiLineString, ``when`` values kept as
  ``coordinateProperties.times``). Several geometries directly in one Placemark
  (spec-invalid, Google Location History does it) are combined the same way.
  Empty geometries (``<coordinates/>``) are dropped with a warning; a Placemark
  left without geometry keeps ``geometry: None``.
* Non-numeric or out-of-range coordinates -> FormatError with the line, or the
  Placemark is skipped with a warning when ``skip_invalid``.
* Properties: name, description, address, TimeStamp (``timestamp``), TimeSpan
  (``begin``/``end``), ExtendedData Data/value and SchemaData/SimpleData. A Data
  element carrying our ``wm:type="json"`` attribute is JSON-decoded (lossless
  round trip of our own exports); everything else stays a string.
* Styles: shared (styleUrl to a Style, a StyleMap's "normal" pair, a
  gx:CascadingStyle) then inline Style -> the simplestyle properties (``stroke``,
  ``stroke-width``, ``stroke-opacity``, ``fill``, ``fill-opacity``, ``marker-color``,
  ``marker-size`` from the icon scale; formats/simplestyle.py). KML colours are
  aabbggrr; we emit "#rrggbb" and an opacity (rounded to 2 decimals) only when alpha
  is not ff. The "highlight" style of a StyleMap is not kept: the map highlights the
  selected feature itself. ExtendedData wins over the style for the same key.
* NetworkLink / GroundOverlay / ScreenOverlay / PhotoOverlay are ignored with a
  warning (remote content is never fetched).
* KMZ: ``doc.kml`` or the first ``.kml`` entry; decompressed size is capped.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from waymark.formats import archive
from waymark.formats.geometry import close_ring, validate_geometry
from waymark.formats.model import (
    FormatError,
    ImportResult,
    ParsedFeature,
    ParsedLayer,
    ReadOptions,
    WarningCollector,
)
from waymark.formats.simplestyle import width
from waymark.formats.xml_safety import Node, parse_xml

WAYMARK_NS = "https://waymark.invalid/ns/kml/1"
MAX_KMZ_UNCOMPRESSED = 200 * 1024 * 1024
_GEOM_TAGS = {
    "Point", "LineString", "LinearRing", "Polygon", "MultiGeometry", "Track", "MultiTrack",
}
_IGNORED = {"NetworkLink", "GroundOverlay", "ScreenOverlay", "PhotoOverlay", "Tour"}
_COMMA_SPACE = re.compile(r"\s*,\s*")


def unzip_kmz(data: bytes, max_size: int = MAX_KMZ_UNCOMPRESSED) -> bytes:
    with archive.open_zip(data, "KMZ") as zf:
        names = [i for i in archive.files(zf) if i.filename.lower().endswith(".kml")]
        if not names:
            raise FormatError("KMZ archive contains no .kml file")
        info = next((i for i in names if i.filename.lower() == "doc.kml"), names[0])
        return archive.Inflater(zf, max_size).read(info)


def kml_color(text: str | None) -> tuple[str, float] | None:
    """aabbggrr (or bbggrr) -> ("#rrggbb", opacity)."""
    if not text:
        return None
    t = text.strip().lstrip("#").lower()
    if not re.fullmatch(r"[0-9a-f]{6}|[0-9a-f]{8}", t):
        return None
    a = int(t[:2], 16) if len(t) == 8 else 255
    t = t[-6:]
    return "#" + t[4:6] + t[2:4] + t[0:2], round(a / 255, 2)


def _style_from(node: Node) -> dict[str, Any]:
    """A <Style> as simplestyle properties (formats/simplestyle.py)."""
    style: dict[str, Any] = {}
    line = node.find("LineStyle")
    if line is not None:
        c = kml_color(line.findtext("color"))
        if c:
            style["stroke"] = c[0]
            if c[1] != 1.0:
                style["stroke-opacity"] = c[1]
        w = width(line.findtext("width"))
        if w is not None:
            style["stroke-width"] = w
    poly = node.find("PolyStyle")
    if poly is not None:
        c = kml_color(poly.findtext("color"))
        if c:
            style["fill"] = c[0]
            if c[1] != 1.0:
                style["fill-opacity"] = c[1]
        if poly.findtext("fill") == "0":
            style["fill-opacity"] = 0.0
        if poly.findtext("outline") == "0":
            style["stroke-width"] = 0.0
    icon = node.find("IconStyle")
    if icon is not None:
        c = kml_color(icon.findtext("color"))
        if c:
            style["marker-color"] = c[0]
        size = marker_size(icon.findtext("scale"))
        if size:
            style["marker-size"] = size
    return style


def marker_size(scale: str | None) -> str | None:
    """KML IconStyle scale -> simplestyle marker-size (1 is the default, "medium")."""
    v = width(scale)
    if v is None or v == 1:
        return None
    return "small" if v < 0.9 else "large" if v > 1.2 else "medium"


class _Reader:
    def __init__(self, skip_invalid: bool) -> None:
        self.skip_invalid = skip_invalid
        self.warnings = WarningCollector()
        self.styles: dict[str, dict[str, Any]] = {}
        self.stylemaps: dict[str, str] = {}
        self.features: list[ParsedFeature] = []
        self.ignored: dict[str, int] = {}
        self.empty_parts = 0

    # -- styles ---------------------------------------------------------
    def collect_styles(self, root: Node) -> None:
        for node in root.iter():
            sid = node.get("id")
            if not sid:
                continue
            if node.tag == "Style":
                self.styles[sid] = _style_from(node)
            elif node.tag == "CascadingStyle":
                inner = node.find("Style")
                if inner is not None:
                    self.styles[sid] = _style_from(inner)
            elif node.tag == "StyleMap":
                for pair in node.findall("Pair"):
                    if pair.findtext("key") == "normal":
                        url = pair.findtext("styleUrl")
                        inline = pair.find("Style")
                        if url:
                            self.stylemaps[sid] = url
                        elif inline is not None:
                            self.styles[sid] = _style_from(inline)

    def resolve(self, url: str | None, depth: int = 0) -> dict[str, Any]:
        if not url or depth > 5:
            return {}
        sid = url.rpartition("#")[2]
        if sid in self.styles:
            return self.styles[sid]
        if sid in self.stylemaps:
            return self.resolve(self.stylemaps[sid], depth + 1)
        return {}

    # -- geometry -------------------------------------------------------
    def coords(self, node: Node | None) -> list[Any]:
        text = node.text.strip() if node is not None else ""
        if not text or node is None:
            return []
        out = []
        for tup in _COMMA_SPACE.sub(",", text).split():
            parts = tup.split(",")
            try:
                pos = [float(v) for v in parts[:3] if v != ""]
            except ValueError:
                raise FormatError(f"invalid coordinates {tup!r}", line=node.line) from None
            if len(pos) < 2:
                raise FormatError(f"invalid coordinates {tup!r}", line=node.line)
            out.append(pos)
        return out

    def geometry(self, node: Node) -> list[dict[str, Any]]:
        """Primitive geometries (Point/LineString/Polygon) in this element."""
        tag = node.tag
        if tag == "Point":
            c = self.coords(node.find("coordinates"))
            return [{"type": "Point", "coordinates": c[0]}] if c else self.empty()
        if tag == "LineString":
            c = self.coords(node.find("coordinates"))
            return [{"type": "LineString", "coordinates": c}] if c else self.empty()
        if tag == "LinearRing":
            c = self.coords(node.find("coordinates"))
            return [{"type": "Polygon", "coordinates": [close_ring(c)]}] if c else self.empty()
        if tag == "Polygon":
            rings = []
            for holder in ("outerBoundaryIs", "innerBoundaryIs"):
                for b in node.findall(holder):
                    for ring in b.findall("LinearRing"):
                        c = self.coords(ring.find("coordinates"))
                        if c:
                            rings.append(close_ring(c))
                if holder == "outerBoundaryIs" and not rings:
                    return self.empty()
            return [{"type": "Polygon", "coordinates": rings}]
        if tag == "MultiGeometry":
            return [g for child in node.children if child.tag in _GEOM_TAGS
                    for g in self.geometry(child)]
        if tag == "Track":
            c, times = [], []
            for child in node.children:
                if child.tag == "coord":
                    t = child.text.strip().split()
                    try:
                        c.append([float(v) for v in t[:3]])
                    except ValueError:
                        raise FormatError(f"invalid gx:coord {child.text.strip()!r}",
                                          line=child.line) from None
                elif child.tag == "when":
                    times.append(child.text.strip())
            if not c:
                return self.empty()
            geom = {"type": "LineString" if len(c) > 1 else "Point",
                    "coordinates": c if len(c) > 1 else c[0]}
            if len(times) == len(c) and len(c) > 1:
                geom["_times"] = times
            return [geom]
        if tag == "MultiTrack":
            return [g for child in node.findall("Track") for g in self.geometry(child)]
        return []

    def empty(self) -> list[Any]:
        self.empty_parts += 1
        return []

    @staticmethod
    def combine(parts: list[dict[str, Any]], multi: bool) -> tuple[dict[str, Any] | None, object]:
        times = None
        if not parts:
            return None, None
        if len(parts) == 1 and not multi:
            g = parts[0]
            times = g.pop("_times", None)
            return g, times
        types = {p["type"] for p in parts}
        if len(types) == 1:
            t = types.pop()
            if t == "LineString" and any("_times" in p for p in parts):
                times = [p.pop("_times", None) for p in parts]
            return {"type": "Multi" + t, "coordinates": [p["coordinates"] for p in parts]}, times
        for p in parts:
            p.pop("_times", None)
        return {"type": "GeometryCollection", "geometries": parts}, None

    # -- placemarks -----------------------------------------------------
    def placemark(self, pm: Node, folder: list[str]) -> None:
        props: dict[str, Any] = {}
        for key in ("name", "description", "address"):
            v = pm.findtext(key)
            if v is not None:
                props[key] = v
        ts = pm.find("TimeStamp")
        if ts is not None and ts.findtext("when"):
            props["timestamp"] = ts.findtext("when")
        span = pm.find("TimeSpan")
        if span is not None:
            for k in ("begin", "end"):
                if span.findtext(k):
                    props[k] = span.findtext(k)
        if folder:
            props["folder"] = " / ".join(folder)
        ext = pm.find("ExtendedData")
        if ext is not None:  # Data, and SimpleData inside SchemaData (KML 2.2 §9.3)
            simple: list[Node] = []
            for d in ext.children:
                if d.tag == "SchemaData":
                    simple.extend(c for c in d.children if c.tag == "SimpleData")
                    continue
                name = d.get("name") if d.tag == "Data" else None
                if name is not None:
                    value = d.find("value")
                    v = value.text.strip() if value is not None else ""
                    if d.get("type") == "json":
                        with contextlib.suppress(ValueError):
                            v = json.loads(v)
                    props[name] = v
            for d in simple:
                if d.get("name") is not None:
                    props[d.get("name")] = d.text.strip()
        inline = pm.find("Style")
        style = {**self.resolve(pm.findtext("styleUrl")),
                 **(_style_from(inline) if inline is not None else {})}
        for key, value in style.items():
            props.setdefault(key, value)
        try:
            children = [c for c in pm.children if c.tag in _GEOM_TAGS]
            parts = [g for child in children for g in self.geometry(child)]
            multi = len(children) == 1 and children[0].tag in ("MultiGeometry", "MultiTrack")
            geom, times = self.combine(parts, multi)
            if geom is not None:
                geom = validate_geometry(geom)
        except FormatError as exc:
            err = exc.with_context(line=pm.line)
            if not self.skip_invalid:
                raise err from None
            self.warnings.add(f"{err}; placemark skipped")
            return
        if times is not None and "coordinateProperties" not in props:
            props["coordinateProperties"] = {"times": times}
        self.features.append(ParsedFeature(geom, props))

    def walk(self, node: Node, folder: list[str]) -> None:
        for child in node.children:
            tag = child.tag
            if tag == "Placemark":
                self.placemark(child, folder)
            elif tag == "Folder":
                name = child.findtext("name")
                self.walk(child, [*folder, name] if name else folder)
            elif tag == "Document":
                self.walk(child, folder)
            elif tag in _IGNORED:
                self.ignored[tag] = self.ignored.get(tag, 0) + 1


def read_kml(data: bytes, *, skip_invalid: bool = False,
             options: ReadOptions | None = None) -> ImportResult:
    root = parse_xml(data)
    if root.tag != "kml":
        raise FormatError(f"not a KML document (root element is <{root.tag}>)", line=root.line)
    r = _Reader(skip_invalid)
    r.collect_styles(root)
    r.walk(root, [])
    for tag, n in sorted(r.ignored.items()):
        r.warnings.add(f"{n} {tag} element(s) ignored (not supported)")
    if r.empty_parts:
        r.warnings.add(f"{r.empty_parts} empty geometry element(s) ignored")
    name = None
    for node in root.children:
        if node.tag in ("Document", "Folder"):
            name = node.findtext("name")
            break
    return ImportResult([ParsedLayer(name, r.features)], r.warnings.result())


def read_kmz(data: bytes, *, skip_invalid: bool = False,
             options: ReadOptions | None = None) -> ImportResult:
    return read_kml(unzip_kmz(data), skip_invalid=skip_invalid)
