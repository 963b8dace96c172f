"""CSV the way spreadsheets write it: columns named or numbered by the person, common
names in several languages, header-less files, decimal commas, rows without coordinates."""

from __future__ import annotations

import pytest

from waymark.formats import FormatError, ReadOptions, check_head, read
from waymark.formats.csv_reader import csv_preview


def _coords(data: bytes, **options) -> list[list[float]]:
    result = read(data, "csv", options=ReadOptions(**options))
    return [f.geometry["coordinates"] if f.geometry else None for f in result.layers[0].features]


@pytest.mark.parametrize("header", [
    "id,le_latitude_deg,le_longitude_deg",  # OurAirports runways.csv
    "id,Breitengrad,Längengrad",
    "id,latitud,longitud",
    "id,latitudine,longitudine",
    "id,Y,X",
    "id,breedtegraad,lengtegraad",
    "id,широта,долгота",
    "id,site_lat,site_lon",
])
def test_common_coordinate_names_are_detected(header: str) -> None:
    assert _coords(f"{header}\n1,46.5,7.25\n".encode()) == [[7.25, 46.5]]


def test_columns_named_by_the_person_win() -> None:
    data = b"name,a,b,lat,lon\nx,46.5,7.25,0,0\n"
    assert _coords(data, lat="a", lon="B") == [[7.25, 46.5]]
    assert _coords(data, lat="2", lon="3") == [[7.25, 46.5]]  # numbered from 1


def test_header_false_numbers_the_columns() -> None:
    data = b"Bern,46.948,7.4474\nZurich,47.3769,8.5417\n"
    result = read(data, "csv", options=ReadOptions(header=False, lat="2", lon="3"))
    assert [f.properties for f in result.layers[0].features] == [
        {"column_1": "Bern"}, {"column_1": "Zurich"}]
    assert result.layers[0].features[1].geometry["coordinates"] == [8.5417, 47.3769]


def test_a_headerless_file_whose_columns_look_like_coordinates() -> None:
    data = b"Bern;46.948;7.4474\nLondon;51.5072;-0.1276\nSydney;-33.8688;151.2093\n"
    result = read(data, "csv")
    assert [f.geometry["coordinates"] for f in result.layers[0].features] == [
        [7.4474, 46.948], [-0.1276, 51.5072], [151.2093, -33.8688]]
    assert "no header row" in result.warnings[0]
    # longitude first when that column goes past 90
    assert _coords(b"151.2093,-33.8688,a\n7.4474,46.948,b\n") == [[151.2093, -33.8688],
                                                                   [7.4474, 46.948]]


def test_delimiter_and_decimal_comma() -> None:
    data = b"name;lat;lon\nBern;46,948;7,4474\n"
    assert _coords(data, delimiter=";", decimal=",") == [[7.4474, 46.948]]
    assert _coords(b"name\tlat\tlon\nBern\t46.948\t7.4474\n", delimiter="tab") == [
        [7.4474, 46.948]]
    with pytest.raises(FormatError, match="latitude '46.948' is not a number"):
        read(b"name;lat;lon\nBern;46.948;7,4\n", "csv", options=ReadOptions(decimal=","))


def test_rows_without_coordinates_are_reported_skipped_or_kept() -> None:
    data = b"name,lat,lon\na,1,2\nb,,\nc,x,3\n"
    with pytest.raises(FormatError) as info:
        read(data, "csv")
    assert info.value.line == 4 and info.value.field == "lat"
    skipped = read(data, "csv", skip_invalid=True)
    assert [f.properties["name"] for f in skipped.layers[0].features] == ["a"]
    assert skipped.warnings == ["line 3: empty coordinates, row skipped",
                                "line 4, field 'lat': latitude 'x' is not a number; row skipped"]
    kept = read(data, "csv", skip_invalid=True, options=ReadOptions(missing="keep"))
    assert [(f.properties["name"], f.geometry) for f in kept.layers[0].features] == [
        ("a", {"type": "Point", "coordinates": [2.0, 1.0]}), ("b", None), ("c", None)]
    assert kept.warnings[0] == "line 3: empty coordinates, kept without geometry"


@pytest.mark.parametrize("options,field,message", [
    ({"lat": "nope", "lon": "lon"}, "lat", "lat='nope': no such column; columns: name, lat, lon"),
    ({"lat": "lat"}, "lon", "give both lat= and lon="),
    ({"wkt": "9"}, "wkt", "wkt=9: the file has 3 columns"),
    ({"delimiter": "::"}, "delimiter", "delimiter must be one character"),
])
def test_bad_column_choices_name_the_parameter(options: dict, field: str, message: str) -> None:
    with pytest.raises(FormatError, match=message) as info:
        check_head(b"name,lat,lon\na,1,2\n", "csv", ReadOptions(**options))
    assert info.value.field == field


def test_preview_shows_the_first_rows_when_detection_fails() -> None:
    data = b"place,north,east\nBern,46.948,7.4474\nZurich,47.3769,8.5417\n"
    preview = csv_preview(data, ReadOptions())
    assert preview["columns"] == ["place", "north", "east"]
    assert preview["rows"] == [["Bern", "46.948", "7.4474"], ["Zurich", "47.3769", "8.5417"]]
    assert preview["detected"] is None and "no coordinate columns found" in preview["error"]
    ok = csv_preview(b"name,lat,lon\nBern,46.948,7.4474\n", ReadOptions())
    assert ok["detected"] == {"lat": "lat", "lon": "lon", "wkt": None} and ok["error"] is None


def test_the_head_check_reads_only_the_head() -> None:
    """A bad header is found without reading the millions of rows behind it."""
    rows = b"".join(b"x,1,2\n" for _ in range(200_000))
    with pytest.raises(FormatError, match="no coordinate columns found") as info:
        check_head(b"name,a,b\n" + rows, "csv")
    assert info.value.line == 1
    check_head(b"name,lat,lon\n" + rows + b"broken,\"unterminated\n", "csv")  # rows: later
