"""Geometry validation/bbox helpers and the GeoJSON import memory budget."""

from __future__ import annotations

import json
import random
import tracemalloc

import msgspec
import pytest

from waymark.formats import FormatError, geometry_bbox, read, validate_geometry
from waymark.formats.model import ImportResult


def test_validate_geometry_returns_input_or_trimmed_copy() -> None:
    g = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    assert validate_geometry(g) is g
    g4 = {"type": "MultiPoint", "coordinates": [[1, 2, 3, 4], [5, 6]]}
    assert validate_geometry(g4)["coordinates"] == [[1, 2, 3], [5, 6]]
    assert g4["coordinates"][0] == [1, 2, 3, 4]


def test_self_intersection_is_not_an_error() -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    assert validate_geometry(bowtie) is bowtie


def test_antimeridian_float_noise_tolerated() -> None:
    assert validate_geometry({"type": "Point", "coordinates": [180.0033, 0]})
    with pytest.raises(FormatError, match="longitude 180.5 out of range"):
        validate_geometry({"type": "Point", "coordinates": [180.5, 0]})


@pytest.mark.parametrize("bad", [None, [], "x", {"type": "Point"}, {"coordinates": [1, 2]},
                                 {"type": "Point", "coordinates": [True, 1]},
                                 {"type": "Point", "coordinates": [1, 2, "z"]},
                                 {"type": "MultiPolygon", "coordinates": []}])
def test_validate_geometry_rejects(bad) -> None:
    with pytest.raises(ValueError):  # FormatError is a ValueError
        validate_geometry(bad)


def test_geometry_bbox() -> None:
    assert geometry_bbox(None) is None
    assert geometry_bbox({"type": "Point", "coordinates": [1, 2, 3]}) == (1, 2, 1, 2)
    gc = {"type": "GeometryCollection", "geometries": [
        {"type": "Point", "coordinates": [-5, 3]},
        {"type": "MultiPolygon", "coordinates": [[[[0, 0], [10, -1], [1, 1], [0, 0]]]]}]}
    assert geometry_bbox(gc) == (-5, -1, 10, 3)
    assert geometry_bbox({"type": "GeometryCollection", "geometries": []}) is None


def test_import_result_feature_count_and_error_details() -> None:
    assert ImportResult([], []).feature_count == 0
    err = FormatError("bad", line=3, field="lat")
    assert str(err) == "line 3, field 'lat': bad" and err.reason == "bad"
    assert err.to_details() == {"line": 3, "field": "lat"}
    assert FormatError("plain").to_details() == {}


def _collection(n: int) -> bytes:
    rnd = random.Random(42)
    feats = [{"type": "Feature", "id": i,
              "geometry": {"type": "Point", "coordinates": [round(rnd.uniform(-180, 180), 6),
                                                            round(rnd.uniform(-90, 90), 6)]},
              "properties": {"name": f"place {i}", "population": rnd.randint(0, 10**6),
                             "kind": "town", "note": "lorem ipsum dolor sit amet"}}
             for i in range(n)]
    return json.dumps({"type": "FeatureCollection", "features": feats}).encode()


def test_large_geojson_is_read_whole() -> None:
    """100,000 features (15 MB) in one read. How fast is a benchmark, not a test:
    bench/import_100k.py (results in bench/RESULTS.md)."""
    data = _collection(100_000)
    assert len(data) > 15_000_000
    result = read(data, "geojson")
    assert result.feature_count == 100_000


def test_geojson_import_memory_stays_close_to_decoded_size() -> None:
    data = _collection(20_000)
    tracemalloc.start()
    try:
        decoded = msgspec.json.decode(data)
        decoded_size = tracemalloc.get_traced_memory()[0]
        del decoded
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = read(data, "geojson")
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert result.feature_count == 20_000
    # the decoded dicts are reused, not copied: no more than ~1.5x the decoded object
    assert peak < 1.5 * decoded_size, (peak, decoded_size, len(data))
