"""write() output is accepted by read() and gives back the same data.

Documented lossiness checked here as well: CSV turns property values into
strings; KML/GPX bake the effective style (layer + feature) into the simplestyle
properties (an old ``_style`` becomes them too) and KML adds a ``folder`` property;
GPX adds ``gpx_type``.
"""

from __future__ import annotations

import copy
import json
import math

import pytest

from waymark.formats import ExportLayer, read, write
from waymark.formats.simplestyle import effective_style

TRICKY = 'Café <b>&amp; "quotes" \'single\'</b> ]]> 日本語 🗺'
LAYER_STYLE = {"color": "#3388ff", "weight": 3, "opacity": 0.5,
               "fillColor": "#ff0000", "fillOpacity": 0.25, "markerColor": "#112233"}


def _props(i: int, **extra) -> dict:
    return {"name": f"feature {i} {TRICKY}", "description": "line1\nline2 <p>&nbsp;</p>",
            "count": i, "ratio": 1 / 3, "ok": True, "missing": None,
            "nested": {"a": [1, 2.5, "x"], "b": None}, "key with space": TRICKY,
            "padded": "  spaces kept  ", **extra}


def sample_layers() -> list[ExportLayer]:
    feats = [
        {"id": "p2", "geometry": {"type": "Point", "coordinates": [0.1234567890123, -45.5]},
         "properties": _props(1, _style={"color": "#00ff00", "markerColor": "#abcdef"})},
        {"id": "p3", "geometry": {"type": "Point", "coordinates": [-179.999999, 89.9, 1234.5]},
         "properties": _props(2, **{"marker-color": "#aa5500", "marker-symbol": "park",
                                     "marker-size": "large", "label-text": "{name}"})},
        {"id": "l3", "geometry": {"type": "LineString",
                                  "coordinates": [[1, 2, 3], [1.5, 2.5, 3.5], [2, 3, 4]]},
         "properties": _props(3, coordinateProperties={
             "times": ["2024-01-01T00:00:00Z", "2024-01-01T00:00:05Z", "2024-01-01T00:00:09Z"]})},
        {"id": "ml", "geometry": {"type": "MultiLineString",
                                  "coordinates": [[[10, 10], [11, 11]], [[12, 12], [13, 13.5]]]},
         "properties": _props(4, stroke="#123456", **{"stroke-width": 2.5,
                                                       "stroke-opacity": 0.4})},
    ]
    areas = [
        {"id": "pg", "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
            [[2, 2], [2, 4], [4, 4], [4, 2], [2, 2]]]},
         "properties": _props(5, fill="#00ff00", **{"fill-opacity": 0.6, "stroke": "#FF0000"})},
        {"id": "mpg", "geometry": {"type": "MultiPolygon", "coordinates": [
            [[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[5, 5], [6, 5], [6, 6], [5, 5]]]]},
         "properties": _props(6)},
        {"id": "mp", "geometry": {"type": "MultiPoint", "coordinates": [[1, 1], [2, 2]]},
         "properties": _props(7)},
        {"id": "gc", "geometry": {"type": "GeometryCollection", "geometries": [
            {"type": "Point", "coordinates": [1, 2]},
            {"type": "LineString", "coordinates": [[1, 2], [3, 4]]}]}, "properties": _props(8)},
        {"id": "null", "geometry": None, "properties": {"name": "no geometry"}},
    ]
    return [ExportLayer("Tracks & <Points>", LAYER_STYLE, feats),
            ExportLayer("Areas", {}, areas)]


def assert_geometry_equal(a: dict | None, b: dict | None) -> None:
    if a is None or b is None:
        assert a is b
        return
    assert a["type"] == b["type"]
    if a["type"] == "GeometryCollection":
        assert len(a["geometries"]) == len(b["geometries"])
        for x, y in zip(a["geometries"], b["geometries"], strict=False):
            assert_geometry_equal(x, y)
    else:
        _coords_equal(a["coordinates"], b["coordinates"])


def _coords_equal(a, b) -> None:
    if isinstance(a, (int, float)):
        assert math.isclose(a, b, rel_tol=0, abs_tol=1e-9), (a, b)
        return
    assert len(a) == len(b), (a, b)
    for x, y in zip(a, b, strict=False):
        _coords_equal(x, y)


def _all_features(layers):
    return [(layer, f) for layer in layers for f in layer.features]


def test_geojson_round_trip_is_exact() -> None:
    layers = sample_layers()
    original = copy.deepcopy(layers)
    out = write(layers, "geojson")
    assert layers == original  # writers never mutate their input
    doc = json.loads(out)
    assert [f["id"] for f in doc["features"]] == [f["id"] for _, f in _all_features(layers)]
    assert doc["features"][0]["layer"] == "Tracks & <Points>"
    result = read(out, "geojson")
    got = result.layers[0].features
    assert len(got) == 9
    for (_, want), have in zip(_all_features(layers), got, strict=False):
        assert_geometry_equal(want["geometry"], have.geometry)
        assert have.properties == want["properties"]


def test_geojson_single_layer_name() -> None:
    layer = sample_layers()[1]
    assert read(write([layer], "geojson"), "geojson").layers[0].name == "Areas"


def test_csv_round_trip_strings() -> None:
    layers = sample_layers()
    out = write(layers, "csv")
    header = out.decode().splitlines()[0].split(",")
    assert header[:3] == ["id", "layer", "wkt"]
    result = read(out, "csv")
    expected = [(la, f) for la, f in _all_features(layers) if f["geometry"] is not None]
    got = result.layers[0].features
    assert len(got) == len(expected) == 8
    assert any("empty geometry" in w for w in result.warnings)  # the null-geometry row
    keys = header[3:]
    for (layer, want), have in zip(expected, got, strict=False):
        assert_geometry_equal(want["geometry"], have.geometry)
        props = dict(have.properties)
        assert props.pop("id") == want["id"] and props.pop("layer") == layer.name
        for k in keys:
            v = want["properties"].get(k)
            text = "" if v is None else v if isinstance(v, str) else json.dumps(
                v, ensure_ascii=False, separators=(",", ":"))
            assert props[k] == text, k
        assert json.loads(props["nested"]) == want["properties"]["nested"]


def test_csv_single_layer_has_no_layer_column() -> None:
    out = write([sample_layers()[1]], "csv")
    assert out.decode().startswith("id,wkt,")


def _expected_xml_props(layer, want, extra: dict) -> dict:
    props = {k: v for k, v in want["properties"].items() if k != "_style"}
    style = effective_style(layer.style, want["properties"])
    for key, value in style.items():
        if not (key.endswith("opacity") and value == 1):
            props.setdefault(key, value)
    return {**props, **extra}


def test_kml_round_trip() -> None:
    layers = sample_layers()
    out = write(layers, "kml")
    assert out.startswith(b"<?xml")
    result = read(out, "kml")
    got = result.layers[0].features
    assert len(got) == 9 and result.warnings == []
    for (layer, want), have in zip(_all_features(layers), got, strict=False):
        assert_geometry_equal(want["geometry"], have.geometry)
        assert have.properties == _expected_xml_props(layer, want, {"folder": layer.name})
    # kmz = zipped kml
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("doc.kml", out)
    assert read(buf.getvalue(), "kmz").feature_count == 9


def test_gpx_round_trip() -> None:
    layers = [sample_layers()[0]]
    out = write(layers, "gpx")
    result = read(out, "gpx")
    got = result.layers[0].features
    assert len(got) == 4 and result.warnings == []
    assert result.layers[0].name == "Tracks & <Points>"
    for (layer, want), have in zip(_all_features(layers), got, strict=False):
        assert_geometry_equal(want["geometry"], have.geometry)
        gpx_type = "waypoint" if want["geometry"]["type"] == "Point" else "track"
        assert have.properties == _expected_xml_props(layer, want, {"gpx_type": gpx_type})
    assert b"<time>2024-01-01T00:00:05Z</time>" in out  # times as real GPX elements
    assert b"gpx_style/0/2" in out


def test_gpx_route_stays_route_and_polygons_become_tracks() -> None:
    src = read(b'<gpx><rte><name>r</name><rtept lat="1" lon="2"/><rtept lat="3" lon="4"/>'
               b"</rte></gpx>", "gpx").layers[0].features[0]
    layers = [ExportLayer("x", {}, [
        {"id": "r", "geometry": src.geometry, "properties": src.properties}]
        + [f for f in sample_layers()[1].features if f["id"] in ("pg", "mp", "gc", "null")])]
    result = read(write(layers, "gpx"), "gpx")
    by_type = [(f.properties["gpx_type"], f.geometry["type"]) for f in result.layers[0].features]
    # wpt first (2 from MultiPoint, 1 from the collection), then rte, then trk
    assert by_type == [("waypoint", "Point")] * 3 + [("route", "LineString"),
                                                      ("track", "MultiLineString"),
                                                      ("track", "LineString")]
    assert result.layers[0].features[3].properties["name"] == "r"


@pytest.mark.parametrize("fmt", ["geojson", "csv", "gpx", "kml"])
def test_writers_handle_empty_and_control_characters(fmt: str) -> None:
    layers = [ExportLayer("e", {}, [{"id": "1", "geometry": {"type": "Point",
                                                             "coordinates": [1, 2]},
                                     "properties": {"name": "bell\x07 tab\t ok"}}])]
    result = read(write(layers, fmt), fmt)
    assert result.feature_count == 1
    expected = "bell tab\t ok" if fmt in ("gpx", "kml") else "bell\x07 tab\t ok"  # XML 1.0
    assert result.layers[0].features[0].properties["name"] == expected
    assert read(write([ExportLayer("empty", {}, [])], fmt), fmt).feature_count == 0


def test_unknown_export_format() -> None:
    from waymark.formats import FormatError
    with pytest.raises(FormatError, match="unsupported export format"):
        write([], "shp")
