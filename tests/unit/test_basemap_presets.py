"""Basemap presets from settings: validation with messages naming the preset and field,
WMTS templates, the default, and a CSP that allows exactly the configured tile origins."""

from __future__ import annotations

import json

import pytest

from waymark.basemaps.presets import BUILTIN, PresetError, load_presets
from waymark.security.headers import basemap_csp
from waymark.settings import SettingsError, load_settings

OSM = {"name": "osm", "title": "OpenStreetMap", "type": "xyz",
       "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
       "attribution": "&copy; OpenStreetMap contributors", "max_zoom": 19}
TOPO = {"name": "topo", "type": "xyz", "url": "https://{s}.tile.opentopomap.org/{z}/{x}/{y}.png",
        "max_zoom": 17}
PLANET = {"name": "planet", "type": "pmtiles", "url": "https://maps.example.org/planet.pmtiles"}
STORED = {"name": "stored", "type": "pmtiles", "url": "objects:basemaps/planet.pmtiles"}


def test_builtin_is_always_there_and_the_default() -> None:
    presets = load_presets("")
    assert presets.names() == [BUILTIN]
    assert presets.get("default").name == BUILTIN
    assert presets.get("no-such-basemap").name == BUILTIN


def test_configured_presets_and_default() -> None:
    presets = load_presets(json.dumps([OSM, TOPO, PLANET, STORED]), "osm")
    assert presets.names() == [BUILTIN, "osm", "topo", "planet", "stored"]
    assert presets.get("default").name == "osm"
    assert presets.get("topo").max_zoom == 17
    stored = presets.get("stored").client("/static/dist/basemap/x.pmtiles")
    assert stored["url"] == "/basemaps/stored.pmtiles"
    builtin = presets.get(BUILTIN).client("/static/dist/basemap/x.pmtiles")
    assert builtin["url"] == "/static/dist/basemap/x.pmtiles" and builtin["builtin"]


def test_wmts_templates() -> None:
    rest = load_presets(json.dumps([{"name": "w", "type": "wmts",
                                     "url": "https://wmts.example.org/1.0.0/ortho/default/GoogleMapsCompatible/{TileMatrix}/{TileRow}/{TileCol}.jpeg"}]))
    assert rest.get("w").url.endswith("/GoogleMapsCompatible/{z}/{y}/{x}.jpeg")
    kvp = load_presets(json.dumps([{"name": "k", "type": "wmts", "url": "https://wmts.example.org/wmts",
                                    "layer": "ortho", "format": "image/jpeg"}]))
    url = kvp.get("k").url
    assert url.startswith("https://wmts.example.org/wmts?SERVICE=WMTS&REQUEST=GetTile")
    assert "LAYER=ortho" in url and "FORMAT=image%2Fjpeg" in url
    assert url.endswith("TILEMATRIX={z}&TILEROW={y}&TILECOL={x}")


@pytest.mark.parametrize(("raw", "message"), [
    ("{", "not valid JSON"),
    ('{"name": "x"}', "JSON list"),
    (json.dumps([{"name": "Bad Name", "url": "https://a/{z}/{x}/{y}"}]), "basemap 0: \"name\""),
    (json.dumps([{"name": "a", "type": "vector", "url": "https://a"}]), "basemap 'a': \"type\""),
    (json.dumps([{"name": "a", "url": "https://a/tiles"}]), "needs {z}, {x} and {y}"),
    (json.dumps([{"name": "a", "url": "ftp://a/{z}/{x}/{y}"}]), "\"url\" must be"),
    (json.dumps([{"name": "a", "url": "objects:x", "type": "xyz"}]), "objects:<key> is for pmtiles"),
    (json.dumps([{"name": "a", "url": "https://a/{z}/{x}/{y}", "max_zoom": 30}]), "max_zoom"),
    (json.dumps([OSM, OSM]), "defined twice"),
    (json.dumps([{"name": "w", "type": "wmts", "url": "https://w/wmts"}]), "needs \"layer\""),
])
def test_bad_presets_are_refused_with_the_reason(raw: str, message: str) -> None:
    with pytest.raises(PresetError, match=message.replace("{", r"\{").replace("}", r"\}")
                       .replace("(", r"\(").replace(")", r"\)")):
        load_presets(raw)


def test_settings_refuse_bad_presets_and_unknown_default() -> None:
    with pytest.raises(SettingsError, match="WAYMARK_BASEMAPS is not valid JSON"):
        load_settings(environ={"WAYMARK_BASEMAPS": "["})
    with pytest.raises(SettingsError, match="WAYMARK_DEFAULT_BASEMAP='nope' is not a preset"):
        load_settings(environ={"WAYMARK_DEFAULT_BASEMAP": "nope"})


def test_legacy_url_is_the_custom_preset_and_default() -> None:
    presets = load_presets("", "", "https://tiles.example.org/{z}/{x}/{y}.png", "Example")
    assert presets.default == "custom"
    assert presets.get("default").attribution == "Example"


def test_csp_allows_exactly_the_configured_origins() -> None:
    presets = load_presets(json.dumps([OSM, TOPO, PLANET, STORED]))
    csp = basemap_csp(presets)
    assert ("img-src 'self' data: blob: https://tile.openstreetmap.org "
            "https://*.tile.opentopomap.org;") in csp
    assert "connect-src 'self' https://maps.example.org;" in csp
    assert "frame-ancestors 'none'" in csp
    only_builtin = basemap_csp(load_presets(""))
    assert "img-src 'self' data: blob:;" in only_builtin
    assert "connect-src 'self';" in only_builtin
    assert "frame-ancestors *" in basemap_csp(presets, "*")
