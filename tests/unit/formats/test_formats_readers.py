"""Reader behaviour per format on small inline inputs (the corpus covers real files)."""

from __future__ import annotations

import json

import pytest
from _geo_corpus import DATA_DIR

from waymark.formats import FormatError, detect_format, read
from waymark.formats.simplestyle import SIMPLESTYLE


def _gj(obj) -> bytes:
    return json.dumps(obj).encode()


def _one(data: bytes, fmt: str):
    result = read(data, fmt)
    assert result.feature_count == 1, result
    return result.layers[0].features[0]


# ---------------------------------------------------------------- GeoJSON
def test_geojson_top_levels() -> None:
    point = {"type": "Point", "coordinates": [1, 2, 3]}
    assert _one(_gj(point), "geojson").geometry == point
    gc = {"type": "GeometryCollection", "geometries": [point]}
    assert _one(_gj(gc), "geojson").geometry == gc
    f = _one(_gj({"type": "Feature", "geometry": None, "properties": None, "id": 7}), "geojson")
    assert f.geometry is None and f.properties == {}
    assert read(_gj({"type": "FeatureCollection", "features": []}), "geojson").feature_count == 0


def test_geojson_drops_m_and_ignores_foreign_members() -> None:
    doc = {"type": "FeatureCollection", "generator": "x", "bbox": [0, 0, 1, 1],
           "features": [{"type": "Feature", "foo": 1, "properties": {"a": 1},
                         "geometry": {"type": "LineString",
                                      "coordinates": [[1, 2, 3, 4], [2, 3]]}}]}
    f = _one(_gj(doc), "geojson")
    assert f.geometry["coordinates"] == [[1, 2, 3], [2, 3]]
    assert doc["features"][0]["geometry"]["coordinates"][0] == [1, 2, 3, 4]  # input untouched
    assert f.properties == {"a": 1}


@pytest.mark.parametrize("name", ["urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326", "CRS:84",
                                  "EPSG:4979"])
def test_geojson_wgs84_crs_accepted(name: str) -> None:
    doc = {"type": "Point", "coordinates": [1, 2], "crs": {"type": "name",
                                                          "properties": {"name": name}}}
    assert _one(_gj(doc), "geojson").geometry["coordinates"] == [1, 2]


def test_geojson_unknown_crs_rejected() -> None:
    doc = {"type": "FeatureCollection", "features": [],
           "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::999999"}}}
    with pytest.raises(FormatError, match="unknown coordinate system EPSG:999999") as info:
        read(_gj(doc), "geojson")
    assert info.value.field == "crs"


@pytest.mark.parametrize("geom,msg", [
    ({"type": "Point", "coordinates": [None]}, "needs longitude and latitude"),
    ({"type": "Point", "coordinates": []}, "empty Point"),
    ({"type": "Point", "coordinates": ["1", "2"]}, "must be numbers"),
    ({"type": "LineString", "coordinates": []}, "at least 2 positions"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "not closed"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "at least 4 positions"),
    ({"type": "Circle", "coordinates": [0, 0]}, "unknown geometry type"),
    ({"type": "GeometryCollection", "geometries": []}, "empty GeometryCollection"),
    ({"type": "Point", "coordinates": [0, 95]}, "latitude 95 out of range"),
])
def test_geojson_invalid_geometry_names_feature(geom: dict, msg: str) -> None:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [0, 0]}},
        {"type": "Feature", "properties": {}, "geometry": geom}]}
    with pytest.raises(FormatError, match=msg) as info:
        read(_gj(doc), "geojson")
    assert info.value.index == 1 and str(info.value).startswith("feature 1: ")


def test_geojson_nan_rejected() -> None:
    with pytest.raises(FormatError, match="finite"):
        read(b'{"type":"Point","coordinates":[NaN, 1]}', "geojson")


# ---------------------------------------------------------------- CSV
@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
def test_csv_delimiters_and_bom(delim: str) -> None:
    text = delim.join(["Name", "LAT", "Lng", "code"]) + "\n" + delim.join(
        ["Zürich", "47.37", "8.54", "007"]) + "\n"
    f = _one(b"\xef\xbb\xbf" + text.encode(), "csv")
    assert f.geometry == {"type": "Point", "coordinates": [8.54, 47.37]}
    assert f.properties == {"Name": "Zürich", "code": "007"}  # strings kept as-is


def test_csv_decimal_comma_and_quoted_multiline_line_numbers() -> None:
    data = b'name;lat;lon\n"two\nlines";47,5;8,25\nbad;x;1\n'
    with pytest.raises(FormatError) as info:
        read(data, "csv")
    assert info.value.line == 4  # physical line: the quoted row spans lines 2-3
    result = read(data, "csv", skip_invalid=True)
    assert result.layers[0].features[0].geometry["coordinates"] == [8.25, 47.5]
    assert result.layers[0].features[0].properties == {"name": "two\nlines"}
    assert result.warnings == ["line 4, field 'lat': latitude 'x' is not a number; row skipped"]


def test_csv_empty_coordinates_skipped_with_bounded_warnings() -> None:
    rows = "\n".join(f"p{i},," for i in range(30))
    result = read(f"name,lat,lon\nok,1,2\n{rows}\n".encode(), "csv")
    assert result.feature_count == 1
    assert result.warnings[0] == "line 3: empty coordinates, row skipped"
    assert len(result.warnings) == 21 and result.warnings[-1] == "... and 10 more warnings"


def test_csv_wkt_column() -> None:
    data = (b'id,WKT,name\n1,"POLYGON Z ((0 0 1, 1 0 1, 1 1 1, 0 0 1))",a\n'
            b'2,"LINESTRING (0 0, 1 1)",b\n3,"POLYGON ((0 0, 1 0, 1 1))",unclosed\n')
    feats = read(data, "csv").layers[0].features
    assert feats[0].geometry["coordinates"][0][0] == [0.0, 0.0, 1.0]
    assert feats[1].geometry["type"] == "LineString"
    assert feats[2].geometry["coordinates"] == [[[0, 0], [1, 0], [1, 1], [0, 0]]]
    assert feats[0].properties == {"id": "1", "name": "a"}
    with pytest.raises(FormatError, match="line 2, field 'geom': invalid WKT"):
        read(b"geom\nPOINT (1\n", "csv")


def test_csv_latin1_fallback() -> None:
    f = _one("name,lat,lon\nSão Paulo,-23.5,-46.6\n".encode("cp1252"), "csv")
    assert f.properties["name"] == "São Paulo"


# ---------------------------------------------------------------- GPX
GPX = b"""\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">
  <wpt lat="46.5" lon="7.5"><ele>0</ele><time>2020-01-01T00:00:00Z</time><name>Hut</name>
    <sym>Flag</sym><type>hut</type><cmt>c</cmt><desc>d</desc></wpt>
  <trk><name>T</name>
    <trkseg><trkpt lat="1" lon="2"><ele>5</ele><time>t1</time></trkpt>
            <trkpt lat="1.5" lon="2.5"><ele></ele></trkpt></trkseg>
    <trkseg></trkseg>
    <trkseg><trkpt lat="3" lon="4"/><trkpt lat="5" lon="6"/></trkseg>
  </trk>
</gpx>"""


def test_gpx_waypoint_and_multisegment_track() -> None:
    feats = read(GPX, "gpx").layers[0].features
    wpt, trk = feats
    assert wpt.geometry == {"type": "Point", "coordinates": [7.5, 46.5, 0.0]}  # ele 0 kept
    assert wpt.properties == {"name": "Hut", "desc": "d", "cmt": "c", "type": "hut",
                              "sym": "Flag", "gpx_type": "waypoint",
                              "time": "2020-01-01T00:00:00Z"}
    assert trk.geometry == {"type": "MultiLineString", "coordinates": [
        [[2.0, 1.0, 5.0], [2.5, 1.5]], [[4.0, 3.0], [6.0, 5.0]]]}
    assert trk.properties["coordinateProperties"] == {"times": [["t1", None], [None, None]]}


def test_gpx_10_without_namespace_and_route() -> None:
    data = b"""<gpx version="1.0"><rte><name>R</name><rtept lat="1" lon="2"/>
    <rtept lat="3" lon="4"/></rte></gpx>"""
    f = _one(data, "gpx")
    assert f.geometry["type"] == "LineString" and f.properties["gpx_type"] == "route"
    assert "coordinateProperties" not in f.properties


def test_gpx_bad_coordinate_line_and_skip() -> None:
    data = b'<gpx>\n<wpt lat="1" lon="2"/>\n<wpt lat="x" lon="2"/>\n</gpx>'
    with pytest.raises(FormatError, match="line 3, field 'lat': latitude 'x' is not a number"):
        read(data, "gpx")
    assert read(data, "gpx", skip_invalid=True).feature_count == 1


# ---------------------------------------------------------------- KML
KML = b"""<?xml version="1.0"?>
<kml xmlns="http://earth.google.com/kml/2.1" xmlns:gx="http://www.google.com/kml/ext/2.2">
<Document><name>Doc</name>
  <Style id="s"><LineStyle><color>7f0000ff</color><width>4</width></LineStyle>
    <PolyStyle><color>ff00ff00</color></PolyStyle><IconStyle><color>ffff0000</color></IconStyle>
  </Style>
  <StyleMap id="m"><Pair><key>normal</key><styleUrl>#s</styleUrl></Pair></StyleMap>
  <Folder><name>A</name><Folder><name>B</name>
    <Placemark><name><![CDATA[<b>bold</b>]]></name><styleUrl>#m</styleUrl>
      <ExtendedData><Data name="k"><value>v</value></Data>
        <SchemaData schemaUrl="#x"><SimpleData name="s">1</SimpleData></SchemaData></ExtendedData>
      <Polygon><outerBoundaryIs><LinearRing><coordinates>0,0 1,0 1,1</coordinates>
      </LinearRing></outerBoundaryIs><innerBoundaryIs><LinearRing>
      <coordinates>0.2,0.2 0.4,0.2 0.4,0.4 0.2,0.2</coordinates></LinearRing></innerBoundaryIs>
      </Polygon></Placemark>
  </Folder></Folder>
  <Placemark><name>mg</name><MultiGeometry><Point><coordinates>1,2</coordinates></Point>
    <LineString><coordinates>1,2 3,4</coordinates></LineString></MultiGeometry></Placemark>
  <Placemark><name>pts</name><MultiGeometry><Point><coordinates>1, 2</coordinates></Point>
    <Point><coordinates>3,4,5</coordinates></Point></MultiGeometry></Placemark>
  <Placemark><name>track</name><gx:Track><when>t1</when><when>t2</when>
    <gx:coord>1 2 3</gx:coord><gx:coord>4 5 6</gx:coord></gx:Track></Placemark>
  <Placemark><name>nogeom</name><Style><LineStyle><width>2</width></LineStyle></Style></Placemark>
  <GroundOverlay><name>ignored</name></GroundOverlay>
</Document></kml>"""


def test_kml_features() -> None:
    result = read(KML, "kml")
    assert result.layers[0].name == "Doc"
    poly, mg, pts, track, nogeom = result.layers[0].features
    assert poly.geometry["coordinates"][0] == [[0, 0], [1, 0], [1, 1], [0, 0]]  # closed
    assert len(poly.geometry["coordinates"]) == 2
    assert poly.properties == {
        "name": "<b>bold</b>", "folder": "A / B", "k": "v", "s": "1",
        "stroke": "#ff0000", "stroke-opacity": 0.5, "stroke-width": 4.0,
        "fill": "#00ff00", "marker-color": "#0000ff"}
    assert mg.geometry["type"] == "GeometryCollection"
    assert pts.geometry == {"type": "MultiPoint", "coordinates": [[1, 2], [3, 4, 5]]}
    assert track.geometry == {"type": "LineString", "coordinates": [[1, 2, 3], [4, 5, 6]]}
    assert track.properties["coordinateProperties"] == {"times": ["t1", "t2"]}
    assert nogeom.geometry is None and nogeom.properties == {"name": "nogeom",
                                                           "stroke-width": 2.0}
    assert result.warnings == ["1 GroundOverlay element(s) ignored (not supported)"]


def test_kml_bad_coordinates_skip_invalid() -> None:
    data = b"<kml><Placemark><Point><coordinates>no,no</coordinates></Point></Placemark></kml>"
    result = read(data, "kml", skip_invalid=True)
    assert result.feature_count == 0 and "placemark skipped" in result.warnings[0]


def test_kml_corpus_styles() -> None:
    data = (DATA_DIR / "kml/togeojson/styles.kml").read_bytes()
    point, polygon = read(data, "kml").layers[0].features
    assert point.properties["stroke"] == "#fbc02d"  # StyleMap normal -> CascadingStyle
    assert {k: v for k, v in polygon.properties.items() if k in SIMPLESTYLE} == {
        "stroke": "#303f9f", "stroke-width": 2.13333, "fill": "#ffee58", "fill-opacity": 0.25}


# ---------------------------------------------------------------- detection
@pytest.mark.parametrize("name,data,fmt", [
    ("a.geojson", b'{"type":"FeatureCollection"}', "geojson"),
    (None, b'\xef\xbb\xbf  [{"type":"Feature"}]', "geojson"),
    ("data.json", b'<?xml version="1.0"?><kml xmlns="x"/>', "kml"),
    (None, b'<?xml version="1.0"?>\n<!-- c -->\n<gpx version="1.1">', "gpx"),
    ("x.bin", b'<kml:kml xmlns:kml="http://www.opengis.net/kml/2.2">', "kml"),
    (None, b"PK\x03\x04rest", "kmz"),
    ("points.CSV", b"a,b\n1,2", "csv"),
    ("points.txt", b"name\tlat\tlon\n", "csv"),
    (None, b"lat;lon\n1;2", "csv"),
])
def test_detect_format(name, data, fmt) -> None:
    assert detect_format(name, data) == fmt
