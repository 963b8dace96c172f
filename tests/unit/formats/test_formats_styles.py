"""Per-feature styles through KML and GPX: their style elements become the simplestyle
properties on import (shared and inline KML styles, StyleMap pairs, GPX colour extensions
of TopoGrafix, Garmin and OsmAnd) and are written back on export, so a file keeps its look
through Waymark."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # nosec B405 - parses our own test output
from collections import Counter
from pathlib import Path

import pytest
from _geo_corpus import DATA_DIR

from waymark.formats import ExportLayer, read, write
from waymark.formats.simplestyle import SIMPLESTYLE, effective_style, upgrade_legacy

CARTO = Path(__file__).resolve().parents[2] / "data" / "cartography"


def _style(props: dict) -> dict:
    return {k: v for k, v in props.items() if k in SIMPLESTYLE}


def _export(features, style=None) -> list[ExportLayer]:
    return [ExportLayer("styled", style or {}, [
        {"id": str(i), "geometry": f.geometry, "properties": f.properties}
        for i, f in enumerate(features)])]


def test_time_zones_kml_keeps_each_zone_colour_through_import_and_export() -> None:
    zones = read((CARTO / "timezones.kml").read_bytes(), "kml").layers[0].features
    assert len(zones) == 38
    # each placemark -> StyleMap -> its "normal" Style (alpha d2 fill, 4c white outline)
    first = zones[0]
    assert first.properties["name"] == "GMT -12:00"
    assert _style(first.properties) == {"fill": "#cdd661", "fill-opacity": 0.82, "stroke": "#ffffff",
                                        "stroke-opacity": 0.3, "stroke-width": 1.0}
    fills = Counter(z.properties["fill"] for z in zones)
    assert fills == {"#5fb85b": 8, "#fffeea": 8, "#cdd661": 7, "#9c930c": 6, "#fff799": 6,
                     "#e2f6f8": 3}
    assert all(z.properties["fill-opacity"] == 0.82 for z in zones)  # not the highlight's 0.85

    again = read(write(_export(zones), "kml"), "kml").layers[0].features
    assert [_style(z.properties) for z in again] == [_style(z.properties) for z in zones]
    # and a GeoJSON export carries the same properties for geojson.io, Placemark, uMap
    as_geojson = read(write(_export(zones), "geojson"), "geojson").layers[0].features
    assert [z.properties for z in as_geojson] == [z.properties for z in zones]


KML_STYLES = b"""<?xml version="1.0"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document>
  <Style id="shared"><LineStyle><color>800000ff</color><width>3</width></LineStyle></Style>
  <Style id="hi"><LineStyle><color>ff00ffff</color><width>6</width></LineStyle></Style>
  <StyleMap id="pair"><Pair><key>normal</key><styleUrl>#shared</styleUrl></Pair>
    <Pair><key>highlight</key><styleUrl>#hi</styleUrl></Pair></StyleMap>
  <StyleMap id="inline-pair"><Pair><key>normal</key><Style><IconStyle><color>ff00ff00</color>
    <scale>1.6</scale></IconStyle></Style></Pair>
    <Pair><key>highlight</key><Style><IconStyle><color>ffffffff</color></IconStyle></Style></Pair>
  </StyleMap>
  <Placemark><name>shared</name><styleUrl>#shared</styleUrl>
    <LineString><coordinates>0,0 1,1</coordinates></LineString></Placemark>
  <Placemark><name>pair</name><styleUrl>#pair</styleUrl>
    <LineString><coordinates>0,0 1,1</coordinates></LineString></Placemark>
  <Placemark><name>inline over shared</name><styleUrl>#shared</styleUrl>
    <Style><LineStyle><width>8</width></LineStyle><PolyStyle><color>4000ff00</color>
    <outline>1</outline></PolyStyle></Style>
    <Polygon><outerBoundaryIs><LinearRing><coordinates>0,0 1,0 1,1 0,0</coordinates>
    </LinearRing></outerBoundaryIs></Polygon></Placemark>
  <Placemark><name>inline pair</name><styleUrl>#inline-pair</styleUrl>
    <Point><coordinates>1,2</coordinates></Point></Placemark>
  <Placemark><name>hollow</name><Style><PolyStyle><fill>0</fill><outline>0</outline></PolyStyle>
    </Style><Polygon><outerBoundaryIs><LinearRing><coordinates>0,0 1,0 1,1 0,0</coordinates>
    </LinearRing></outerBoundaryIs></Polygon></Placemark>
</Document></kml>"""


def test_kml_shared_inline_and_paired_styles_become_simplestyle_properties() -> None:
    shared, pair, inline, inline_pair, hollow = read(KML_STYLES, "kml").layers[0].features
    red_half = {"stroke": "#ff0000", "stroke-opacity": 0.5, "stroke-width": 3.0}
    assert _style(shared.properties) == red_half
    assert _style(pair.properties) == red_half  # the normal style of the pair
    assert _style(inline.properties) == {**red_half, "stroke-width": 8.0, "fill": "#00ff00",
                                         "fill-opacity": 0.25}
    assert _style(inline_pair.properties) == {"marker-color": "#00ff00", "marker-size": "large"}
    assert _style(hollow.properties) == {"fill-opacity": 0.0, "stroke-width": 0.0}


def test_kml_round_trip_of_simplestyle_properties_is_exact() -> None:
    props = [
        {"name": "pin", "marker-color": "#7e7e7e", "marker-size": "small", "marker-symbol": "cafe",
         "label-text": "{name}", "label-show": "always"},
        {"name": "line", "stroke": "#123abc", "stroke-width": 2.5, "stroke-opacity": 0.35},
        {"name": "area", "stroke": "#ABCDEF", "fill": "#00aa00", "fill-opacity": 0.1,
         "stroke-opacity": 0.123},
    ]
    geoms = [{"type": "Point", "coordinates": [1, 2]},
             {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
             {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}]
    layer = ExportLayer("x", {}, [{"id": str(i), "geometry": g, "properties": p}
                                  for i, (g, p) in enumerate(zip(geoms, props, strict=False))])
    kml = write([layer], "kml")
    back = [f.properties for f in read(kml, "kml").layers[0].features]
    assert back == [{**p, "folder": "x"} for p in props]
    # the colours other viewers see are in the <Style>s: aabbggrr, alpha from the opacity
    root = ET.fromstring(kml)  # noqa: S314  # nosec B314 - our own output
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    colors = {s.get("id"): [c.text for c in s.iter("{http://www.opengis.net/kml/2.2}color")]
              for s in root.iterfind(".//k:Style", ns)}
    assert sorted(colors.values()) == [["1fefcdab", "1a00aa00"], ["59bc3a12"], ["ff7e7e7e"]]
    # only what a Style cannot carry exactly is repeated in ExtendedData
    data_names = {d.get("name") for d in root.iterfind(".//k:Data", ns)}
    assert data_names == {"marker-size", "marker-symbol", "label-text", "label-show", "stroke",
                          "stroke-opacity"}


def test_layer_style_is_baked_and_legacy_style_is_upgraded() -> None:
    legacy = {"name": "old", "_style": {"color": "#00ff00", "weight": 5, "markerColor": "#111111"}}
    assert upgrade_legacy(legacy) == {"name": "old", "stroke": "#00ff00", "stroke-width": 5,
                                      "marker-color": "#111111"}
    assert upgrade_legacy({"a": 1}) == {"a": 1}
    layer_style = {"color": "#0000ff", "weight": 2, "fill": False, "popup": {"fields": []}}
    assert effective_style(layer_style, {"stroke-width": 7}) == {
        "stroke": "#0000ff", "stroke-width": 7, "fill-opacity": 0}
    feature = {"id": "1", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
               "properties": legacy}
    back = read(write([ExportLayer("l", layer_style, [feature])], "kml"), "kml")
    assert _style(back.layers[0].features[0].properties) == {
        "stroke": "#00ff00", "stroke-width": 5.0, "marker-color": "#111111", "fill-opacity": 0.0}


# ---------------------------------------------------------------- GPX
@pytest.mark.parametrize("rel,expected", [
    # TopoGrafix gpx_style:line in <extensions> (ExpertGPS)
    ("gpx/togeojson/style.gpx", {"stroke": "#893380", "stroke-width": 0.792}),
    # TopoGrafix GPX 1.0 private element right in <trk>
    ("gpx/togeojson/blue_hills.gpx", {"stroke": "#00ffff"}),
    # Garmin gpxx:TrackExtension/DisplayColor
    ("gpx/gpxgo/file.gpx", {"stroke": "#00ffff"}),
])
def test_gpx_corpus_colours(rel: str, expected: dict) -> None:
    features = read((DATA_DIR / rel).read_bytes(), "gpx").layers[0].features
    lines = [f for f in features if f.properties["gpx_type"] != "waypoint"]
    assert _style(lines[0].properties) == expected


def test_gpx_transparent_garmin_colour_is_no_colour() -> None:
    data = (DATA_DIR / "gpx/togeojson/multitrackgpx.gpx").read_bytes()
    assert all(not _style(f.properties) for f in read(data, "gpx").layers[0].features)


OSMAND = b"""<?xml version="1.0"?>
<gpx version="1.1" creator="OsmAnd" xmlns="http://www.topografix.com/GPX/1/1"
     xmlns:osmand="https://osmand.net">
  <wpt lat="1" lon="2"><name>camp</name><extensions><osmand:color>#b4e53935</osmand:color>
    </extensions></wpt>
  <trk><name>walk</name><extensions><osmand:color>#1e88e5</osmand:color></extensions>
    <trkseg><trkpt lat="1" lon="2"/><trkpt lat="2" lon="3"/></trkseg></trk>
</gpx>"""


def test_gpx_osmand_colours() -> None:
    wpt, trk = read(OSMAND, "gpx").layers[0].features
    assert _style(wpt.properties) == {"marker-color": "#e53935"}  # #AARRGGBB: alpha dropped
    assert _style(trk.properties) == {"stroke": "#1e88e5"}


def test_gpx_colour_round_trip_and_what_other_apps_read() -> None:
    features = read((DATA_DIR / "gpx/togeojson/style.gpx").read_bytes(), "gpx").layers[0].features
    features += read(OSMAND, "gpx").layers[0].features
    gpx = write(_export(features), "gpx")
    back = read(gpx, "gpx").layers[0].features
    # waypoints come first in a GPX file: compare per name
    before = {f.properties.get("name"): _style(f.properties) for f in features}
    after = {f.properties.get("name"): _style(f.properties) for f in back}
    assert after == before and len(after) == 23
    root = ET.fromstring(gpx)  # noqa: S314  # nosec B314 - our own output
    style_ns = "{http://www.topografix.com/GPX/gpx_style/0/2}"
    colors = [c.text for c in root.iter(style_ns + "color")]
    assert len(colors) == 22 and colors[0] == "893380"  # RRGGBB, as ExpertGPS writes it
    assert [c.text for c in root.iter("{https://osmand.net}color")] == ["#e53935"]
