"""Shapefile zips, GeoPackages, FlatGeobufs and CSV options through the HTTP API: imports
that say what they reprojected from, table choice, the importer's preview, header problems
refused in the upload response before any job exists, and exports in every format."""

from __future__ import annotations

import io
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.api.test_import_api import _app, assert_error, row_counts, stored_objects, upload
from tests.conftest import ApiClient

_FORMATS_TESTS = Path(__file__).resolve().parents[1] / "unit" / "formats"
if str(_FORMATS_TESTS) not in sys.path:
    sys.path.insert(0, str(_FORMATS_TESTS))

from _new_formats import NEW_DATA, close

JOB_BYTES = 4096


@pytest.fixture
def job_app(tmp_path: Path, sqlite_url: str) -> Iterator[Litestar]:
    """Uploads over 4 KB become jobs (queued, not run: no worker in these tests)."""
    yield from _app(tmp_path, sqlite_url, import_job_bytes=JOB_BYTES, jobs_immediate=False)


@pytest.fixture
def owner(job_app: Litestar) -> Iterator[ApiClient]:
    with TestClient(job_app) as tc:
        client = ApiClient(tc)
        client.signup("gis@example.com")
        yield client


def _import(client: ApiClient, m: dict[str, Any], rel: str, **params: Any):  # type: ignore[no-untyped-def]
    return upload(client, f"/api/v1/maps/{m['id']}/import", Path(rel).name,
                  (NEW_DATA / rel).read_bytes(), **params)


@pytest.fixture
def inline(tmp_path: Path, sqlite_url: str) -> Iterator[ApiClient]:
    app = next(_app(tmp_path, sqlite_url, import_job_bytes=100 * 1024 * 1024))
    with TestClient(app) as tc:
        client = ApiClient(tc)
        client.signup("inline@example.com")
        client.app = app  # type: ignore[attr-defined]
        yield client
    app.state.services.db.dispose()


def test_shapefile_zip_import_says_what_it_reprojected_from(inline: ApiClient) -> None:
    m = inline.create_map("Poole")
    r = _import(inline, m, "shapefile/boundary_poole_bng.zip")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["format"] == "shapefile" and body["reprojected_from"] == "EPSG:27700"
    (layer,) = body["layers"]
    assert layer["name"] == "boundary_poole_bng" and layer["imported"] == 1
    data = inline.get(f"/api/v1/maps/{m['id']}/layers/{layer['id']}/data").json()
    ring = data["features"][0]["geometry"]["coordinates"][0]
    assert close(ring[0], [-1.94842818, 50.68146698], 1e-6)


def test_geopackage_tables_become_layers_and_can_be_picked(inline: ApiClient) -> None:
    m = inline.create_map("GeoPackage")
    r = _import(inline, m, "gpkg/corpus_layers.gpkg")
    assert r.status_code == 201, r.text
    assert [(x["name"], x["imported"]) for x in r.json()["layers"]] == [
        ("countries", 177), ("poole_bng", 1), ("earthquakes", 1707)]
    r = _import(inline, m, "gpkg/corpus_layers.gpkg", layers="poole_bng,countries")
    assert [x["name"] for x in r.json()["layers"]] == ["poole_bng", "countries"]
    err = assert_error(_import(inline, m, "gpkg/corpus_layers.gpkg", layers="roads"), 422,
                       "invalid_file")
    assert err["details"] == {"layer": "roads"}


def test_flatgeobuf_import_and_explicit_crs(inline: ApiClient) -> None:
    m = inline.create_map("FGB")
    r = _import(inline, m, "fgb/earthquakes.fgb")
    assert r.status_code == 201 and r.json()["layers"][0]["imported"] == 1707
    csv = b"name;E;N\nBern;2600000;1200000\n"
    r = upload(inline, f"/api/v1/maps/{m['id']}/import", "lv95.csv", csv, crs="EPSG:2056",
               lat="N", lon="E", delimiter=";")
    assert r.status_code == 201, r.text
    assert r.json()["reprojected_from"] == "EPSG:2056"


def test_preview_shows_rows_and_tables_and_stores_nothing(inline: ApiClient) -> None:
    m = inline.create_map("Preview")
    before, objects = row_counts(inline.app), stored_objects(inline.app)
    data = b"place,north,east\nBern,46.948,7.4474\n"
    r = upload(inline, f"/api/v1/maps/{m['id']}/import/preview", "places.csv", data)
    assert r.status_code == 200, r.text
    csv = r.json()["csv"]
    assert csv["columns"] == ["place", "north", "east"] and csv["rows"] == [["Bern", "46.948",
                                                                             "7.4474"]]
    assert "no coordinate columns found" in csv["error"]
    r = upload(inline, f"/api/v1/maps/{m['id']}/import/preview", "x.gpkg",
               (NEW_DATA / "gpkg/corpus_layers.gpkg").read_bytes())
    assert r.json() == {"format": "gpkg", "tables": ["countries", "poole_bng", "earthquakes"]}
    assert row_counts(inline.app) == before and stored_objects(inline.app) == objects
    # the importer then imports with the columns the person picked
    r = upload(inline, f"/api/v1/maps/{m['id']}/import", "places.csv", data, lat="north",
               lon="east")
    assert r.status_code == 201 and r.json()["imported"] == 1


@pytest.mark.parametrize("name,data,params,where", [
    ("bad-header.csv", b"name,a,b\n" + b"x,1,2\n" * 2000, {}, {"line": 1}),
    ("columns.csv", b"name,lat,lon\n" + b"x,1,2\n" * 2000, {"lat": "latitude", "lon": "lon"},
     {"field": "lat"}),
    ("roads.zip", None, {}, {"member": "data/roads_seoul.shp"}),
])
def test_header_problems_are_in_the_upload_response_and_no_job_is_made(
        name: str, data: bytes | None, params: dict, where: dict, owner: ApiClient,
        job_app: Litestar) -> None:
    if data is None:  # a zipped Shapefile whose .dbf is missing
        with zipfile.ZipFile(NEW_DATA / "shapefile/ne_110m_admin_0_countries.zip") as zf:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as out:
                for n in zf.namelist():
                    if not n.endswith(".dbf"):
                        out.writestr("data/" + n.replace("ne_110m_admin_0_countries",
                                                         "roads_seoul"), zf.read(n))
        data = buf.getvalue()
    assert len(data) > JOB_BYTES
    m = owner.create_map("Big uploads")
    before, objects = row_counts(job_app), stored_objects(job_app, "uploads/")
    err = assert_error(upload(owner, f"/api/v1/maps/{m['id']}/import", name, data, **params),
                       422, "invalid_file")
    assert {k: err["details"].get(k) for k in where} == where
    after = row_counts(job_app)
    assert after["jobs"] == before["jobs"] == 0 and after["uploads"] == before["uploads"]
    assert stored_objects(job_app, "uploads/") == objects
    # a good big file is queued, with its options kept for the worker
    good = b"name;Breite;L\xc3\xa4nge\n" + b"x;46,5;7,25\n" * 2000
    r = upload(owner, f"/api/v1/maps/{m['id']}/import", "good.csv", good, decimal="comma")
    assert r.status_code == 202, r.text
    assert row_counts(job_app)["jobs"] == 1


@pytest.mark.parametrize("fmt,ctype,magic", [
    ("shapefile", "application/zip", b"PK\x03\x04"),
    ("gpkg", "application/geopackage+sqlite3", b"SQLite format 3\x00"),
    ("fgb", "application/flatgeobuf", b"fgb\x03"),
    ("kmz", "application/vnd.google-earth.kmz", b"PK\x03\x04"),
])
def test_exports_in_the_new_formats(fmt: str, ctype: str, magic: bytes,
                                    inline: ApiClient) -> None:
    m = inline.create_map("Export me")
    r = _import(inline, m, "shapefile/roads-seoul.zip")
    layer = r.json()["layers"][0]["id"]
    for url in (f"/api/v1/maps/{m['id']}/layers/{layer}/export",
                f"/api/v1/maps/{m['id']}/export"):
        r = inline.get(url, params={"format": fmt})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(ctype) and r.content.startswith(magic)
    if fmt in ("shapefile", "gpkg", "fgb"):
        r = inline.get(f"/api/v1/maps/{m['id']}/export", params={"format": fmt,
                                                                 "crs": "EPSG:5179"})
        assert r.status_code == 200
        back = upload(inline, f"/api/v1/maps/{m['id']}/import", f"x.{fmt}", r.content)
        assert back.status_code == 201, back.text
        assert back.json()["reprojected_from"] == "EPSG:5179"
    else:
        r = inline.get(f"/api/v1/maps/{m['id']}/export", params={"format": fmt,
                                                                 "crs": "EPSG:5179"})
        err = assert_error(r, 422)
        assert err["details"] == {"field": "crs"}
