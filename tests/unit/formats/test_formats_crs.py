"""Reprojection to WGS84 against known coordinates, and the axis-order rules (crs.py)."""

from __future__ import annotations

import json

import pytest
from _new_formats import close

from waymark.formats import FormatError, ReadOptions, read


def _point_geojson(x: float, y: float, crs: str | None = None) -> bytes:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "p"},
         "geometry": {"type": "Point", "coordinates": [x, y]}}]}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(doc).encode()


# (source CRS, coordinates in it, WGS84 lon/lat, tolerance in degrees, where the truth comes from)
KNOWN = [
    # Ordnance Survey's worked example (Caister water tower): ETRS89 52°39'28.8282"N
    # 1°42'57.8663"E by OSTN15; without that grid PROJ uses a Helmert transformation, good
    # to a few metres (5e-5 degrees)
    ("urn:ogc:def:crs:EPSG::27700", (651409.903, 313177.270), (1.7160740, 52.6580078), 5e-5),
    # swisstopo: the projection centre of LV95 (Bern) is 46°57'03.9"N 7°26'19.1"E in WGS84
    ("EPSG:2056", (2600000.0, 1200000.0), (7.438639, 46.951083), 5e-5),
    # Web Mercator is a formula: x = R·λ, y = R·ln(tan(π/4 + φ/2)) with R = 6378137 m
    ("EPSG:3857", (1113194.9079327357, 6446275.841017158), (10.0, 50.0), 1e-9),
    # the classic swap: the EPSG definition of 4326 is latitude first (GeoServer, WFS 1.1)
    ("urn:ogc:def:crs:EPSG::4326", (46.951083, 7.438639), (7.438639, 46.951083), 1e-12),
    ("http://www.opengis.net/def/crs/EPSG/0/4326", (-33.8568, 151.2153), (151.2153, -33.8568),
     1e-12),
]


@pytest.mark.parametrize("crs,xy,lonlat,tol", KNOWN, ids=[k[0] for k in KNOWN])
def test_known_points_from_the_geojson_crs_member(crs: str, xy: tuple, lonlat: tuple,
                                                  tol: float) -> None:
    result = read(_point_geojson(*xy, crs=crs), "geojson")
    (f,) = result.layers[0].features
    assert close(f.geometry["coordinates"], list(lonlat), tol), f.geometry
    assert result.reprojected_from == ("EPSG:" + crs.rsplit(":", 1)[-1].rsplit("/", 1)[-1])


@pytest.mark.parametrize("crs,xy,lonlat,tol", KNOWN, ids=[k[0] for k in KNOWN])
def test_known_points_from_the_crs_parameter(crs: str, xy: tuple, lonlat: tuple,
                                             tol: float) -> None:
    result = read(_point_geojson(*xy), "geojson", options=ReadOptions(crs=crs))
    assert close(result.layers[0].features[0].geometry["coordinates"], list(lonlat), tol)


def test_legacy_epsg_4326_and_crs84_are_longitude_first() -> None:
    for crs in ("EPSG:4326", "urn:ogc:def:crs:OGC:1.3:CRS84", "CRS84"):
        result = read(_point_geojson(151.2153, -33.8568, crs), "geojson")
        assert result.layers[0].features[0].geometry["coordinates"] == [151.2153, -33.8568]
        assert result.reprojected_from is None


def test_british_national_grid_file_matches_its_wgs84_twin(geo_data) -> None:
    """The corpus has the same boundary from ogr2ogr in EPSG:27700 and in CRS84."""
    bng = read((geo_data / "geojson/librarieswest/boundary_poole_bng.geojson").read_bytes(),
               "geojson")
    wgs = json.loads((geo_data / "geojson/librarieswest/boundary_poole.geojson").read_bytes())
    assert bng.reprojected_from == "EPSG:27700"
    ours = bng.layers[0].features[0].geometry["coordinates"]
    theirs = wgs["features"][0]["geometry"]["coordinates"]
    assert len(ours[0]) == len(theirs[0]) == 1629
    assert close(ours, theirs, 1e-7)
    assert bng.layers[0].features[0].properties["NAME"] == "Poole (B)"


def test_csv_with_national_grid_columns() -> None:
    data = b"name,easting,northing\nCaister,651409.903,313177.270\n"
    result = read(data, "csv", options=ReadOptions(crs="EPSG:27700", lat="northing",
                                                   lon="easting"))
    assert close(result.layers[0].features[0].geometry["coordinates"],
                 [1.7160740, 52.6580078], 5e-5)
    assert result.reprojected_from == "EPSG:27700"


def test_points_outside_the_projection_name_the_feature() -> None:
    doc = json.loads(_point_geojson(651409.903, 313177.270, "EPSG:27700"))
    doc["features"].append({"type": "Feature", "properties": {},
                            "geometry": {"type": "Point", "coordinates": [1e10, 1e10]}})
    with pytest.raises(FormatError) as info:
        read(json.dumps(doc).encode(), "geojson")
    assert info.value.index == 1


@pytest.mark.parametrize("crs,message", [
    ("EPSG:999999", "unknown coordinate system EPSG:999999"),
    ("my own grid", "unknown coordinate system 'my own grid'"),
])
def test_unknown_coordinate_systems_are_refused(crs: str, message: str) -> None:
    with pytest.raises(FormatError, match=message) as info:
        read(_point_geojson(1, 2), "geojson", options=ReadOptions(crs=crs))
    assert info.value.field == "crs"
