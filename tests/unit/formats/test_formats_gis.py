"""Shapefile (zip), GeoPackage, FlatGeobuf and KMZ: real files made by GDAL, round trips
of our own exports (same features, properties, geometry within 1e-7°), and GDAL's own
command-line tools reading what we write."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from _new_formats import NEW_DATA, close, gdal_read, sample_layer

from waymark.formats import ExportLayer, ReadOptions, detect_format, read, write
from waymark.formats._writer_util import value_text
from waymark.formats.kml_writer import PIN_HREF

# file -> {layer: feature count}, counts as ogrinfo reports them (tests/data/geo/SOURCES.md)
FILES = {
    "shapefile/ne_110m_admin_0_countries.zip": {"ne_110m_admin_0_countries": 177},
    "shapefile/boundary_poole_bng.zip": {"boundary_poole_bng": 1},
    "shapefile/roads-seoul.zip": {"roads_seoul": 94},
    "gpkg/corpus_layers.gpkg": {"countries": 177, "poole_bng": 1, "earthquakes": 1707},
    "fgb/earthquakes.fgb": {"earthquakes": 1707},
    "fgb/ne_110m_admin_0_countries.fgb": {"ne_110m_admin_0_countries": 177},
    "fgb/boundary_poole_bng.fgb": {"boundary_poole_bng": 1},
}


def _read(rel: str, **kw):
    data = (NEW_DATA / rel).read_bytes()
    return read(data, detect_format(rel, data), **kw)


@pytest.mark.parametrize("rel", sorted(FILES))
def test_gdal_made_files_import_with_their_counts(rel: str) -> None:
    result = _read(rel)
    assert {layer.name: len(layer.features) for layer in result.layers} == FILES[rel]
    for layer in result.layers:
        for f in layer.features:
            assert f.geometry is None or f.geometry["type"] in (
                "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")


def test_shapefile_attributes_and_the_prj_reprojection() -> None:
    result = _read("shapefile/boundary_poole_bng.zip")
    assert result.reprojected_from == "EPSG:27700"
    f = result.layers[0].features[0]
    assert f.properties["NAME"] == "Poole (B)" and f.properties["NUMBER"] == 15
    assert "TYPE_COD0" not in f.properties  # null attributes are left out
    lon, lat = f.geometry["coordinates"][0][0]
    assert abs(lon - -1.94842818) < 1e-6 and abs(lat - 50.68146698) < 1e-6


def test_geopackage_tables_can_be_picked() -> None:
    result = _read("gpkg/corpus_layers.gpkg", options=ReadOptions(layers=("earthquakes",)))
    assert [layer.name for layer in result.layers] == ["earthquakes"]
    quake = result.layers[0].features[0]
    assert len(quake.geometry["coordinates"]) == 3  # depth kept as z
    assert result.reprojected_from is None  # EPSG:4979 is WGS84


def _by_name(result) -> dict[str, object]:
    out = {}
    for layer in result.layers:
        for f in layer.features:
            out.setdefault(f.properties["name"], []).append(f)
    return out


@pytest.mark.parametrize("fmt", ["shapefile", "gpkg", "fgb", "kmz", "csv", "geojson", "kml"])
def test_round_trip_keeps_features_properties_and_geometry(fmt: str) -> None:
    layer = sample_layer()
    # CSV: rows without coordinates are kept only when asked
    result = read(write([layer], fmt), fmt, options=ReadOptions(missing="keep"))
    got = _by_name(result)
    assert sorted(got) == sorted(f["properties"]["name"] for f in layer.features)
    for original in layer.features:
        (back,) = got[original["properties"]["name"]]
        props = {k: v for k, v in back.properties.items() if k not in ("id", "folder")}
        want = dict(original["properties"])
        if fmt == "csv":  # CSV has no types, and every row has every column
            want = {k: value_text(v)[0] for k, v in want.items()}
            props = {k: v for k, v in props.items() if v != ""}
        if fmt in ("kml", "kmz"):  # the layer's colour baked into each placemark
            assert props.pop("stroke") == layer.style["color"]
        assert props == want, (fmt, props)
        if original["geometry"] is None:
            assert back.geometry is None
            continue
        assert back.geometry["type"] == original["geometry"]["type"]
        coords = back.geometry["coordinates"]
        want = original["geometry"]["coordinates"]
        if fmt == "fgb":  # a FlatGeobuf of several geometry types is 2D (flatgeobuf.py)
            want = _drop_z(want)
        assert close(coords, want)


def _drop_z(c):
    if c and isinstance(c[0], (int, float)):
        return c[:2]
    return [_drop_z(x) for x in c]


def test_flatgeobuf_of_one_geometry_type_keeps_elevations() -> None:
    layer = ExportLayer("track", {}, [{"id": "t", "geometry": {"type": "LineString",
                                       "coordinates": [[7.0, 46.0, 500.5], [7.1, 46.1, 612.25]]},
                                       "properties": {"name": "climb"}}])
    back = read(write([layer], "fgb"), "fgb").layers[0].features[0]
    assert back.geometry["coordinates"] == [[7.0, 46.0, 500.5], [7.1, 46.1, 612.25]]


def test_shapefile_export_one_file_per_geometry_type_with_a_field_mapping() -> None:
    data = write([sample_layer()], "shapefile")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        rows = list(csv.DictReader(io.StringIO(zf.read("fields.csv").decode("utf-8"))))
        readme = zf.read("README.txt").decode()
    for kind in ("points", "lines", "polygons"):
        assert {f"Places_routes_{kind}.{ext}" for ext in ("shp", "shx", "dbf", "prj")} <= names
    assert "Places_routes_none.dbf" in names  # the feature without geometry
    renamed = {(r["field"], r["shapefile_field"]) for r in rows if r["field"] != r["shapefile_field"]}
    assert ("population_total_2020", "population") in renamed
    assert all(len(r["shapefile_field"].encode()) <= 10 for r in rows)
    assert "renamed" in readme


def test_exports_are_read_by_gdal(tmp_path: Path) -> None:
    layer = sample_layer()
    for fmt, name in (("gpkg", "x.gpkg"), ("fgb", "x.fgb"), ("shapefile", "x.zip"),
                      ("kmz", "x.kmz")):
        path = tmp_path / name
        path.write_bytes(write([layer], fmt))
        layers = gdal_read(path)
        features = [f for fc in layers.values() for f in fc["features"]]
        with_geometry = [f for f in features if f["geometry"]]
        assert len(with_geometry) == 5, (fmt, layers.keys())
        bern = next((f for f in with_geometry if "Bern ü" in (
            f["properties"].get("name"), f["properties"].get("Name"))), None)
        assert bern is not None, (fmt, [f["properties"] for f in with_geometry])
        assert close(bern["geometry"]["coordinates"][:2], [7.123456789, 46.987654321]), fmt
        if fmt in ("gpkg", "fgb"):
            assert bern["properties"]["population_total_2020"] == 133115
            assert len(features) == 6  # and the one without geometry


@pytest.mark.parametrize("fmt", ["shapefile", "gpkg", "fgb", "csv"])
def test_export_in_another_crs_reads_back_through_the_file_or_the_parameter(fmt: str) -> None:
    layer = ExportLayer("pts", {}, [{"id": "1", "geometry": {
        "type": "Point", "coordinates": [7.43863242, 46.95108277]}, "properties": {"name": "x"}}])
    data = write([layer], fmt, crs="EPSG:2056")
    if fmt == "csv":
        assert "POINT (26000" in data.decode()  # x = easting ~2 600 000
        result = read(data, "csv", options=ReadOptions(crs="EPSG:2056"))
    else:
        result = read(data, fmt)  # the .prj / srs_id / header says EPSG:2056
    assert result.reprojected_from == "EPSG:2056"
    assert close(result.layers[0].features[0].geometry["coordinates"],
                 [7.43863242, 46.95108277], 1e-7)


def test_kmz_bundles_the_pin_icon() -> None:
    data = write([sample_layer()], "kmz")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read(PIN_HREF).startswith(b"\x89PNG\r\n\x1a\n")
        kml = zf.read("doc.kml").decode()
    assert f"<href>{PIN_HREF}</href>" in kml


def test_map_export_to_flatgeobuf_keeps_the_layer_in_a_column() -> None:
    a, b = sample_layer("A"), sample_layer("B")
    result = read(write([a, b], "fgb"), "fgb")
    layers = {f.properties["layer"] for f in result.layers[0].features}
    assert layers == {"A", "B"}
    gpkg = read(write([a, b], "gpkg"), "gpkg")
    assert [layer.name for layer in gpkg.layers] == ["A", "B"]
