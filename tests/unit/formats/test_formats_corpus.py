"""Every real-world file in the corpus imports with GDAL's feature count, or
fails with a FormatError that says where (for the files known to be broken)."""

from __future__ import annotations

import pytest
from _geo_corpus import DATA_DIR, corpus_files

from waymark.formats import FormatError, detect_format, read

# Files that are semantically broken: (expected location attribute, text in message)
BROKEN = {
    "gpx/togeojson/bad.gpx": ("line", 5, "latitude 'undefined' is not a number"),
    "kml/togeojson/bad.kml": ("line", 5, "invalid coordinates 'no,no'"),
    "geojson/togeojson-output/addresses.kml.geojson": ("index", 0, "position"),
    "geojson/togeojson-output/selfclosing.kml.geojson": ("index", 0, "at least 2 positions"),
    "csv/openlayers/meteorite_landings.csv": ("line", 22948, "longitude 354.473330 out of range"),
}

# Where our count deliberately differs from the GDAL reference: path -> (count, reason)
EXCEPTIONS = {
    # GPX: GDAL counts every <trk>/<rte>; we skip those without any point (warning).
    "gpx/gpxpy/cerknicko-jezero.gpx": (14, "track 'ACTIVE LOG' has no points"),
    "gpx/gpxpy/gpx1.0_with_all_fields.gpx": (5, "second <trk> is empty"),
    "gpx/gpxpy/gpx1.1_with_all_fields.gpx": (5, "second <trk> is empty"),
    "gpx/gpxpy/unicode2.gpx": (0, "its only track has no points"),
    "gpx/togeojson/empty_trk.gpx": (0, "its only track has an empty segment"),
    "gpx/togeojson/trek_no_rtept.gpx": (0, "its only route has no rtept"),
    "gpx/togeojson/garmin_extensions.gpx": (4, "1 empty route + 2 empty tracks"),
    "gpx/togeojson/gdal.gpx": (4, "1 empty route + 2 empty tracks"),
    # KML: reference is GDAL's LIBKML driver (one feature per Placemark) except:
    "kml/fastkml/KML_Samples.kml": (20, ("LIBKML also counts the GroundOverlay; overlays are "
                                        "ignored")),
    "kml/togeojson/ground_overlay.kml": (0, "GroundOverlay only; overlays are ignored"),
    "kml/togeojson/ground_overlay_quad.kml": (0, "GroundOverlay only; overlays are ignored"),
    "kml/togeojson/twopoints.kml": (2, ("2 Placemarks directly under <kml>; LIBKML keeps one, "
                                       "the KML driver (2) matches")),
}


def _read(rel: str, **kw):
    data = (DATA_DIR / rel).read_bytes()
    return read(data, detect_format(rel, data), **kw)


@pytest.mark.parametrize("rel", corpus_files())
def test_corpus_file(rel: str, gdal_counts: dict) -> None:
    if rel in BROKEN:
        attr, value, text = BROKEN[rel]
        with pytest.raises(FormatError) as info:
            _read(rel)
        assert getattr(info.value, attr) == value, str(info.value)
        assert text in str(info.value)
        return
    result = _read(rel)
    expected = EXCEPTIONS[rel][0] if rel in EXCEPTIONS else gdal_counts[rel]["count"]
    assert result.feature_count == expected
    assert len(result.warnings) <= 21


def test_every_corpus_file_has_a_gdal_reference(gdal_counts: dict) -> None:
    files = corpus_files()
    if not files:
        pytest.skip("corpus not available")
    assert len(files) == 100
    assert set(files) <= set(gdal_counts)
    assert set(EXCEPTIONS) | set(BROKEN) <= set(files)


def test_exception_reasons_match_warnings() -> None:
    for rel in ("gpx/togeojson/gdal.gpx", "gpx/gpxpy/unicode2.gpx"):
        result = _read(rel)
        assert any("has no points" in w for w in result.warnings)


def test_broken_files_import_with_skip_invalid() -> None:
    assert _read("gpx/togeojson/bad.gpx", skip_invalid=True).feature_count == 0
    assert _read("kml/togeojson/bad.kml", skip_invalid=True).feature_count == 0
    assert _read("geojson/togeojson-output/addresses.kml.geojson",
                 skip_invalid=True).feature_count == 0
    result = _read("csv/openlayers/meteorite_landings.csv", skip_invalid=True)
    # 45,716 rows: 7,315 with empty coordinates, 1 on Mars; (0,0) rows are kept
    assert result.feature_count == 45716 - 7315 - 1
    assert len(result.warnings) == 21  # 20 individual warnings + "... and N more"
    assert result.warnings[-1] == f"... and {7315 + 1 - 20} more warnings"
