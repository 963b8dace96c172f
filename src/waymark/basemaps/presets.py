"""Basemap presets: the built-in Natural Earth archive plus what the operator configures.

WAYMARK_BASEMAPS is a JSON list of presets:

    [{"name": "osm", "title": "OpenStreetMap", "type": "xyz",
      "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
      "attribution": "&copy; OpenStreetMap contributors", "max_zoom": 19}]

type is `xyz` (raster tiles by URL template), `wmts` (a RESTful template with {TileMatrix},
{TileRow}, {TileCol}, or a KVP endpoint with `layer`, `tile_matrix_set`, `style`, `format`)
or `pmtiles` (a vector archive by http(s) URL, or `objects:<key>` for one in Waymark's own
object storage, served with range requests at /basemaps/<name>.pmtiles). The built-in
preset `natural-earth` is always there. A map's `basemap` names a preset; "default" (and an
unknown name) means WAYMARK_DEFAULT_BASEMAP. The CSP allows exactly the origins of these
presets (security/headers.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

BUILTIN = "natural-earth"
TYPES = ("xyz", "wmts", "pmtiles")
FLAVORS = ("light", "dark", "white", "grayscale", "black")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
OBJECTS = "objects:"


class PresetError(ValueError):
    """A preset is malformed; the message names the preset and the field."""


@dataclass(frozen=True)
class Basemap:
    name: str
    title: str
    type: str
    url: str  # xyz/wmts: Leaflet template; pmtiles: URL or objects:<key>
    attribution: str = ""
    max_zoom: int = 19
    flavor: str = ""  # pmtiles in the Protomaps schema: light, dark, white, grayscale, black
    builtin: bool = False

    @property
    def object_key(self) -> str | None:
        return self.url[len(OBJECTS):] if self.url.startswith(OBJECTS) else None

    def client(self, builtin_url: str) -> dict[str, Any]:
        """What the page needs to draw it (URLs resolved to ones the browser can fetch)."""
        url = self.url
        if self.builtin:
            url = builtin_url
        elif self.object_key is not None:
            url = f"/basemaps/{self.name}.pmtiles"
        out = asdict(self)
        out.update(url=url)
        return out


def _wmts_template(name: str, raw: dict[str, Any]) -> str:
    """A Leaflet {z}/{x}/{y} template for a WMTS endpoint in the GoogleMapsCompatible grid."""
    url = str(raw["url"])
    if "{TileMatrix}" in url:
        return url.replace("{TileMatrix}", "{z}").replace("{TileCol}", "{x}").replace("{TileRow}", "{y}")
    if not raw.get("layer"):
        raise PresetError(f"basemap {name!r}: a KVP WMTS url needs \"layer\"")
    query = urlencode({"SERVICE": "WMTS", "REQUEST": "GetTile", "VERSION": "1.0.0",
                       "LAYER": raw["layer"], "STYLE": raw.get("style", "default"),
                       "TILEMATRIXSET": raw.get("tile_matrix_set", "GoogleMapsCompatible"),
                       "FORMAT": raw.get("format", "image/png")})
    return f"{url}{'&' if '?' in url else '?'}{query}&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}"


def _preset(raw: Any, index: int) -> Basemap:
    if not isinstance(raw, dict):
        raise PresetError(f"basemap {index}: each preset is an object")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise PresetError(f"basemap {index}: \"name\" must be 1-50 of a-z, 0-9, - and _")
    kind = raw.get("type", "xyz")
    if kind not in TYPES:
        raise PresetError(f"basemap {name!r}: \"type\" must be one of {', '.join(TYPES)}")
    url = raw.get("url")
    if not isinstance(url, str) or not url:
        raise PresetError(f"basemap {name!r}: \"url\" is required")
    if url.startswith(OBJECTS):
        if kind != "pmtiles" or not url[len(OBJECTS):]:
            raise PresetError(f"basemap {name!r}: objects:<key> is for pmtiles archives")
    elif not (url.startswith("/") and not url.startswith("//")):
        parts = urlsplit(url.replace("{", "").replace("}", ""))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PresetError(f"basemap {name!r}: \"url\" must be http(s)://…, /path or objects:<key>")
    if kind == "wmts":
        url = _wmts_template(name, raw)
    elif kind == "xyz" and not all(p in url for p in ("{z}", "{x}", "{y}")):
        raise PresetError(f"basemap {name!r}: an xyz url needs {{z}}, {{x}} and {{y}}")
    max_zoom = raw.get("max_zoom", 19)
    if not isinstance(max_zoom, int) or not 0 <= max_zoom <= 24:
        raise PresetError(f"basemap {name!r}: \"max_zoom\" must be an integer 0-24")
    flavor = raw.get("flavor", "light" if kind == "pmtiles" else "")
    if kind == "pmtiles" and flavor not in FLAVORS:
        raise PresetError(f"basemap {name!r}: \"flavor\" must be one of {', '.join(FLAVORS)}")
    return Basemap(name=name, title=str(raw.get("title") or name), type=kind, url=url,
                   attribution=str(raw.get("attribution", "")), max_zoom=max_zoom, flavor=flavor)


def builtin_preset() -> Basemap:
    return Basemap(name=BUILTIN, title="Natural Earth (built in)", type="pmtiles", url="",
                   attribution='<a href="https://www.naturalearthdata.com/">Natural Earth</a>',
                   max_zoom=19, builtin=True)


@dataclass(frozen=True)
class Presets:
    items: tuple[Basemap, ...]
    default: str

    def get(self, name: str | None) -> Basemap:
        """The preset a map's `basemap` names ("default" or unknown: the default one)."""
        by_name = {b.name: b for b in self.items}
        return by_name.get(name or "", by_name[self.default])

    def names(self) -> list[str]:
        return [b.name for b in self.items]

    def origins(self) -> list[str]:
        """scheme://host[:port] of every preset served from elsewhere (for the CSP)."""
        out: list[str] = []
        for b in self.items:
            origin = url_origin(b.url)
            if origin and origin not in out:
                out.append(origin)
        return out


def url_origin(url: str) -> str | None:
    """scheme://host[:port] of an absolute http(s) URL template, else None (same origin)."""
    parts = urlsplit(url.replace("{s}", "a").replace("{z}", "0").replace("{x}", "0")
                     .replace("{y}", "0").replace("{r}", ""))
    if parts.scheme in ("http", "https") and parts.netloc:
        host = parts.netloc.rsplit("@", 1)[-1]
        if "{s}" in url:  # subdomain template such as https://{s}.tile.example.org
            host = "*." + host.split(".", 1)[1]
        return f"{parts.scheme}://{host}"
    return None


def load_presets(basemaps: str, default: str = "", legacy_url: str = "",
                 legacy_attribution: str = "") -> Presets:
    """Presets from WAYMARK_BASEMAPS (JSON), plus WAYMARK_BASEMAP_URL as preset "custom"."""
    items = [builtin_preset()]
    if legacy_url:
        items.append(Basemap(name="custom", title="Custom tiles", type="xyz", url=legacy_url,
                             attribution=legacy_attribution, max_zoom=19))
    if basemaps.strip():
        try:
            raw = json.loads(basemaps)
        except json.JSONDecodeError as exc:
            raise PresetError(f"WAYMARK_BASEMAPS is not valid JSON: {exc}") from None
        if not isinstance(raw, list):
            raise PresetError("WAYMARK_BASEMAPS must be a JSON list of presets")
        for i, item in enumerate(raw):
            preset = _preset(item, i)
            if preset.name in {b.name for b in items}:
                raise PresetError(f"basemap {preset.name!r} is defined twice")
            items.append(preset)
    default = default or ("custom" if legacy_url else BUILTIN)
    if default not in {b.name for b in items}:
        raise PresetError(f"WAYMARK_DEFAULT_BASEMAP={default!r} is not a preset "
                          f"(presets: {', '.join(b.name for b in items)})")
    return Presets(tuple(items), default)

