"""Hostile or broken uploads must fail with a FormatError that says what and where."""

from __future__ import annotations

import io
import zipfile

import pytest

from waymark.formats import FormatError, detect_format, read
from waymark.formats.kml_reader import unzip_kmz

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&lol9;</name></Placemark></kml>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE gpx [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">
  <wpt lat="1" lon="2"><name>&xxe;</name></wpt>
</gpx>
"""

XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE kml [<!ENTITY % remote SYSTEM "http://127.0.0.1:1/evil.dtd"> %remote;]>
<kml/>
"""

DOCTYPE_ONLY = b"""<?xml version="1.0"?>
<!DOCTYPE gpx SYSTEM "http://www.topografix.com/GPX/1/1/gpx.dtd">
<gpx version="1.1"/>
"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, XXE, XXE_PARAMETER, DOCTYPE_ONLY],
                         ids=["billion-laughs", "xxe", "xxe-parameter", "doctype"])
@pytest.mark.parametrize("fmt", ["kml", "gpx"])
def test_xml_entities_and_dtds_refused(payload: bytes, fmt: str) -> None:
    with pytest.raises(FormatError, match="XML entities/DTDs are not allowed"):
        read(payload, fmt)


def test_xml_bomb_inside_kmz_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("doc.kml", BILLION_LAUGHS)
    with pytest.raises(FormatError, match="XML entities/DTDs are not allowed"):
        read(buf.getvalue(), "kmz")


def test_kmz_zip_bomb_capped() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("doc.kml", b"<kml>" + b" " * (5 * 1024 * 1024) + b"</kml>")
    assert len(buf.getvalue()) < 64 * 1024
    with pytest.raises(FormatError, match="too large when decompressed"):
        unzip_kmz(buf.getvalue(), max_size=1024 * 1024)


def test_kmz_without_kml_and_not_a_zip() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("icon.png", b"\x89PNG")
    with pytest.raises(FormatError, match="no .kml file"):
        read(buf.getvalue(), "kmz")
    with pytest.raises(FormatError, match="not a valid KMZ"):
        read(b"PK\x03\x04garbage", "kmz")


@pytest.mark.parametrize("fmt,data,line", [
    ("gpx", b'<?xml version="1.0"?>\n<gpx version="1.1">\n<wpt lat="1" lon="2">\n<name>x', 4),
    ("kml", b'<kml xmlns="http://www.opengis.net/kml/2.2">\n<Document>\n<Placemark>\n', 4),
    ("gpx", b'<gpx>\n<wpt lat="1" lon="2"></trk>\n</gpx>', 2),
])
def test_truncated_or_malformed_xml_reports_line(fmt: str, data: bytes, line: int) -> None:
    with pytest.raises(FormatError, match="malformed XML") as info:
        read(data, fmt)
    assert info.value.line == line
    assert f"line {line}" in str(info.value)


def test_malformed_json_reports_line() -> None:
    data = b'{\n "type": "FeatureCollection",\n "features": [\n  {"type": "Feature",}\n ]\n}'
    with pytest.raises(FormatError, match="invalid JSON") as info:
        read(data, "geojson")
    assert info.value.line == 4
    assert info.value.to_details() == {"line": 4}
    assert str(info.value).startswith("line 4: invalid JSON")


def test_truncated_json() -> None:
    with pytest.raises(FormatError, match="invalid JSON") as info:
        read(b'{"type": "FeatureCollection",\n"features": [', "geojson")
    assert info.value.line == 2


@pytest.mark.parametrize("fmt", ["geojson", "csv", "gpx", "kml", "kmz"])
@pytest.mark.parametrize("data", [b"", b"  \n\t "])
def test_empty_file(fmt: str, data: bytes) -> None:
    with pytest.raises(FormatError, match="file is empty"):
        read(data, fmt)


def test_empty_file_detect() -> None:
    with pytest.raises(FormatError, match="file is empty"):
        detect_format("x.csv", b"")


def test_out_of_range_coordinates_geojson_names_feature() -> None:
    data = (b'{"type":"FeatureCollection","features":['
            b'{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{}},'
            b'{"type":"Feature","geometry":{"type":"Point","coordinates":[354.47,-1.9]},'
            b'"properties":{}}]}')
    with pytest.raises(FormatError) as info:
        read(data, "geojson")
    assert info.value.index == 1
    assert info.value.to_details() == {"feature_index": 1}
    assert "feature 1" in str(info.value) and "longitude 354.47 out of range" in str(info.value)
    result = read(data, "geojson", skip_invalid=True)
    assert result.feature_count == 1 and "feature 1" in result.warnings[0]


def test_out_of_range_coordinates_csv_gpx_kml() -> None:
    with pytest.raises(FormatError, match="latitude 91 out of range") as info:
        read(b"name,lat,lon\na,1,2\nb,91,2\n", "csv")
    assert info.value.line == 3 and info.value.field == "lat"
    with pytest.raises(FormatError, match="longitude 200 out of range") as info:
        read(b'<gpx>\n<wpt lat="1" lon="200"/></gpx>', "gpx")
    assert info.value.line == 2
    with pytest.raises(FormatError, match="longitude 190.0 out of range") as info:
        read(b"<kml><Placemark>\n<Point><coordinates>190,1</coordinates></Point>"
             b"</Placemark></kml>", "kml")
    assert info.value.line == 1


def test_csv_without_coordinates_names_columns() -> None:
    with pytest.raises(FormatError) as info:
        read(b"name,city,population\nParis,Paris,2000000\n", "csv")
    msg = str(info.value)
    assert "no coordinate columns" in msg and "name, city, population" in msg
    assert info.value.line == 1


def test_csv_non_numeric_coordinate() -> None:
    with pytest.raises(FormatError, match=r"line 3, field 'lon': longitude 'east' is not"):
        read(b"lat;lon\n1;2\n3;east\n", "csv")


def test_not_geojson_and_wrong_root() -> None:
    with pytest.raises(FormatError, match="unknown top-level type"):
        read(b'{"hello": 1}', "geojson")
    with pytest.raises(FormatError, match="not a GPX document"):
        read(b"<kml/>", "gpx")
    with pytest.raises(FormatError, match="not a KML document"):
        read(b"<gpx/>", "kml")
    with pytest.raises(FormatError, match="unsupported import format"):
        read(b"x", "shp")


def test_unknown_format_detection() -> None:
    with pytest.raises(FormatError, match="unrecognised file format"):
        detect_format("photo.jpg", b"\xff\xd8\xff\xe0 binary")
    with pytest.raises(FormatError, match="expected GPX or KML"):
        detect_format(None, b"<html><body/></html>")


# ---- Shapefile zips, GeoPackages, FlatGeobufs --------------------------------------------
from _bad_files import BAD_FILES

from waymark.formats import ReadOptions, check_head
from waymark.formats.archive import Inflater, open_zip


@pytest.mark.parametrize("name,filename,data,text,details", BAD_FILES,
                         ids=[b[0] for b in BAD_FILES])
def test_bad_gis_files_say_what_and_where(name: str, filename: str, data: bytes, text: str,
                                          details: dict) -> None:
    with pytest.raises(FormatError) as info:
        read(data, detect_format(filename, data))
    assert text in str(info.value)
    assert {k: info.value.to_details().get(k) for k in details} == details


def test_archive_budget_counts_inflated_bytes_not_claimed_sizes() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.dbf", b"x" * 5000)
        zf.writestr("b.dbf", b"y" * 5000)
    with open_zip(buf.getvalue(), "Shapefile") as zf:
        inflater = Inflater(zf, budget=8000)
        inflater.read(zf.getinfo("a.dbf"))
        with pytest.raises(FormatError, match="too large when decompressed") as info:
            inflater.read(zf.getinfo("b.dbf"))
    assert info.value.member == "b.dbf"


def test_unknown_geopackage_table_lists_the_tables() -> None:
    from _new_formats import NEW_DATA

    data = (NEW_DATA / "gpkg/corpus_layers.gpkg").read_bytes()
    for check in (lambda o: read(data, "gpkg", options=o), lambda o: check_head(data, "gpkg", o)):
        with pytest.raises(FormatError, match="tables: countries, poole_bng, earthquakes") as info:
            check(ReadOptions(layers=("roads",)))
        assert info.value.layer == "roads"


def test_a_lone_shp_is_explained() -> None:
    with pytest.raises(FormatError, match="upload the .shp, .shx, .dbf"):
        detect_format("roads.shp", b"\x00\x00\x27\x0a" + b"\x00" * 96)


def test_a_csv_with_a_huge_header_is_refused_at_its_first_line() -> None:
    data = b",".join(b"c%d" % i for i in range(5000)) + b"\n1,2\n"
    for check in (lambda: read(data, "csv"), lambda: check_head(data, "csv")):
        with pytest.raises(FormatError, match="too many columns \\(5000 > 1000\\)") as info:
            check()
        assert info.value.line == 1
