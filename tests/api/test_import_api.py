"""Importing files through the HTTP API: every real-world file of the corpus, hostile and
broken input, upload limits, the kept original and skip_invalid.

Expected counts are the formats-level ones (GDAL's count, or the documented exception);
a bad upload must give a clear 4xx in the one error format, change no table and write
nothing to object storage. The tests marked THROUGH_PGBOUNCER also run on PostgreSQL behind
PgBouncer in transaction mode.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import func, select

from tests.conftest import GEO_DATA, ApiClient, fresh_database, make_settings, pooler_settings
from waymark.app import create_app
from waymark.db.models import Base
from waymark.storage import open_store

_FORMATS_TESTS = Path(__file__).resolve().parents[1] / "unit" / "formats"
if str(_FORMATS_TESTS) not in sys.path:
    sys.path.insert(0, str(_FORMATS_TESTS))

from _bad_files import BAD_FILES
from _geo_corpus import corpus_files, parse_gdal_summary
from test_formats_corpus import BROKEN, EXCEPTIONS

CORPUS = corpus_files()
GDAL = parse_gdal_summary((GEO_DATA / "gdal-summary.txt").read_text(encoding="utf-8")) \
    if GEO_DATA.is_dir() else {}
METEORITES = "csv/openlayers/meteorite_landings.csv"


# ---- helpers shared with the other API test modules ------------------------------------
def row_counts(app: Litestar) -> dict[str, int]:
    """Rows in every table of the schema, read through the app's own database."""
    db = app.state.services.db
    with db.read() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t))
                for t in Base.metadata.sorted_tables}


def stored_objects(app: Litestar, prefix: str = "") -> dict[str, int]:
    """Every object in the app's object store: key -> size."""
    return {o.key: o.size for o in app.state.services.store.list_sync(prefix)}


def wait_publisher_idle(app: Litestar, timeout: float = 15.0) -> None:
    """Background snapshot publishing writes rows and objects; let it settle first."""
    publisher = app.state.services.publisher
    deadline = time.monotonic() + timeout
    while not publisher.idle():
        assert time.monotonic() < deadline, "snapshot publisher never went idle"
        time.sleep(0.02)


def assert_error(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], dict)
    if code is not None:
        assert err["code"] == code, err
    return err


def upload(client: ApiClient, url: str, name: str, data: bytes, **params: Any):  # type: ignore[no-untyped-def]
    return client.post(url, files={"file": (name, data, "application/octet-stream")},
                       params=params or None)


def expected_count(rel: str) -> int:
    return EXCEPTIONS[rel][0] if rel in EXCEPTIONS else GDAL[rel]["count"]


# ---- fixtures --------------------------------------------------------------------------
def _app(tmp_path: Path, url: str, **overrides: Any) -> Iterator[Litestar]:
    settings = make_settings(tmp_path, url, snapshot_delay_ms=0, **overrides)
    application = create_app(settings)
    yield application
    wait_publisher_idle(application)
    application.state.services.db.dispose()


@pytest.fixture
def import_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite; with THROUGH_PGBOUNCER also PostgreSQL behind PgBouncer (transaction mode)."""
    return fresh_database(request, getattr(request, "param", "sqlite"), tmp_path)


THROUGH_PGBOUNCER = pytest.mark.parametrize(
    "import_url", ["sqlite", pytest.param("pgbouncer", marks=pytest.mark.postgres)], indirect=True)


@pytest.fixture
def inline_app(request: pytest.FixtureRequest, tmp_path: Path, import_url: str) -> Iterator[Litestar]:
    """Everything imports inline (no job), whatever its size."""
    yield from _app(tmp_path, import_url, import_job_bytes=100 * 1024 * 1024,
                    **pooler_settings(request, "import_url"))


@pytest.fixture
def owner(inline_app: Litestar) -> Iterator[ApiClient]:
    with TestClient(inline_app) as tc:
        client = ApiClient(tc)
        client.signup("owner@example.com", name="Owner")
        yield client


@pytest.fixture
def a_map(owner: ApiClient, inline_app: Litestar) -> dict[str, Any]:
    m = owner.create_map("Imports")
    wait_publisher_idle(inline_app)
    return m


def _layer_count(client: ApiClient, map_id: str, layer_id: str) -> int:
    r = client.get(f"/api/v1/maps/{map_id}/layers/{layer_id}")
    assert r.status_code == 200, r.text
    return r.json()["feature_count"]


# ---- the whole corpus ------------------------------------------------------------------
def test_corpus_expectations_cover_every_file() -> None:
    if not CORPUS:
        if os.environ.get("CI") == "true":
            pytest.fail(f"geodata corpus not found at {GEO_DATA} (set WAYMARK_GEO_DATA)")
        pytest.skip(f"geodata corpus not found at {GEO_DATA} (set WAYMARK_GEO_DATA)")
    assert len(CORPUS) == 100
    assert set(CORPUS) <= set(GDAL)
    assert set(BROKEN) | set(EXCEPTIONS) <= set(CORPUS)


@pytest.mark.parametrize("rel", CORPUS)
def test_corpus_file_imports_through_api(rel: str, owner: ApiClient, a_map: dict[str, Any],
                                         inline_app: Litestar) -> None:
    path = GEO_DATA / rel
    data = path.read_bytes()
    map_id, layer_id = a_map["id"], a_map["layers"][0]["id"]
    layer_url = f"/api/v1/maps/{map_id}/layers/{layer_id}/import"
    map_url = f"/api/v1/maps/{map_id}/import"

    if rel in BROKEN:
        attr, value, text = BROKEN[rel]
        before, objects = row_counts(inline_app), stored_objects(inline_app)
        for url in (layer_url, map_url):
            err = assert_error(upload(owner, url, path.name, data), 422, "invalid_file")
            key = {"line": "line", "index": "feature_index", "field": "field"}[attr]
            assert err["details"].get(key) == value, err
            assert text in err["message"], err
        assert row_counts(inline_app) == before
        assert stored_objects(inline_app) == objects
        return

    expected = expected_count(rel)
    # into an existing layer: every feature of every source layer lands there
    r = upload(owner, layer_url, path.name, data)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["imported"] == expected
    assert [layer["id"] for layer in body["layers"]] == [layer_id]
    assert _layer_count(owner, map_id, layer_id) == expected

    # as new layer(s) of the map: one per non-empty source layer, counts add up
    r = upload(owner, map_url, path.name, data)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["imported"] == expected
    assert sum(layer["imported"] for layer in body["layers"]) == expected
    assert body["layers"], body
    for layer in body["layers"]:
        assert layer["id"] != layer_id
        assert _layer_count(owner, map_id, layer["id"]) == layer["imported"]
    # nothing is left behind in staging, and the feature table holds exactly both imports
    counts = row_counts(inline_app)
    assert counts["features"] == 2 * expected
    assert counts["uploads"] == 2


# ---- the original upload is kept --------------------------------------------------------
@THROUGH_PGBOUNCER
def test_original_upload_kept_in_object_storage(owner: ApiClient, a_map: dict[str, Any],
                                                inline_app: Litestar) -> None:
    data = (GEO_DATA / "gpx/togeojson/run.gpx").read_bytes()
    r = upload(owner, f"/api/v1/maps/{a_map['id']}/import", "My run (1).gpx", data)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["format"] == "gpx"
    key = f"uploads/{a_map['id']}/{body['upload']}/My_run_1_.gpx"
    assert list(stored_objects(inline_app, "uploads")) == [key]
    assert inline_app.state.services.store.get_sync(key) == data
    # on disk: the original bytes, or their envelope when encryption at rest is on
    settings = inline_app.state.services.settings
    raw = open_store(settings.resolved_object_store_url).get_sync(key)
    if settings.encrypt_objects:
        assert raw.startswith(b"WMKENC1\n") and data[:200] not in raw
    else:
        assert raw == data


@THROUGH_PGBOUNCER
def test_raw_body_import_with_format_param(owner: ApiClient, a_map: dict[str, Any]) -> None:
    data = b'{"type":"FeatureCollection","features":[{"type":"Feature","geometry":' \
           b'{"type":"Point","coordinates":[1,2]},"properties":{"a":1}}]}'
    r = owner.post(f"/api/v1/maps/{a_map['id']}/layers/{a_map['layers'][0]['id']}/import",
                   content=data, params={"format": "geojson"},
                   headers={"Content-Type": "application/geo+json"})
    assert r.status_code == 201, r.text
    assert r.json()["imported"] == 1


# ---- skip_invalid ------------------------------------------------------------------------
@THROUGH_PGBOUNCER
def test_skip_invalid_imports_meteorites_with_warnings(owner: ApiClient, a_map: dict[str, Any],
                                                       inline_app: Litestar) -> None:
    data = (GEO_DATA / METEORITES).read_bytes()
    map_id, layer_id = a_map["id"], a_map["layers"][0]["id"]
    r = upload(owner, f"/api/v1/maps/{map_id}/layers/{layer_id}/import",
               "meteorite_landings.csv", data, skip_invalid="true")
    assert r.status_code == 201, r.text
    body = r.json()
    expected = 45716 - 7315 - 1  # empty coordinates and the one on Mars are skipped
    assert body["imported"] == expected
    assert len(body["warnings"]) == 21
    assert all(w.startswith("line ") and "skipped" in w for w in body["warnings"][:20]), body
    assert body["warnings"][-1] == f"... and {7315 + 1 - 20} more warnings"
    assert _layer_count(owner, map_id, layer_id) == expected
    assert row_counts(inline_app)["features"] == expected


# ---- bad input -----------------------------------------------------------------------------
TRUNCATED_KML = (b'<?xml version="1.0"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">\n'
                 b'<Document>\n<Placemark><name>a</name>\n<Point><coordinates>1,2</coordinates>')
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
OUT_OF_RANGE = (b'{"type":"FeatureCollection","features":[\n'
                b'{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{}},\n'
                b'{"type":"Feature","geometry":{"type":"Point","coordinates":[200,95]},"properties":{}}\n'
                b']}')
MALFORMED_JSON = b'{"type":"FeatureCollection",\n"features":[\n{"type":"Feature",,}\n]}'
NO_COORDS_CSV = b"name,city,count\nA,Paris,1\nB,Rome,2\n"

# name, file name, bytes, expected location (details key, value) or None, text in message
BAD_INPUT = [
    ("malformed-json", "bad.geojson", MALFORMED_JSON, ("line", 3), ""),
    ("truncated-xml", "cut.kml", TRUNCATED_KML, ("line", 5), ""),
    ("entity-bomb", "bomb.kml", BILLION_LAUGHS, None, "XML entities/DTDs are not allowed"),
    ("xxe", "xxe.gpx", XXE, None, "XML entities/DTDs are not allowed"),
    ("out-of-range", "far.geojson", OUT_OF_RANGE, ("feature_index", 1), "out of range"),
    ("csv-without-coordinates", "plain.csv", NO_COORDS_CSV, None, "latitude"),
    ("empty-file", "empty.geojson", b"", None, "empty"),
    ("whitespace-file", "blank.geojson", b"  \n\n ", None, "empty"),
    ("unknown-format", "notes.txt", b"hello world, not geodata\n", None, ""),
]


@THROUGH_PGBOUNCER
@pytest.mark.parametrize("endpoint", ["layer", "map"])
@pytest.mark.parametrize("name,filename,data,where,text", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_refused_and_changes_nothing(name: str, filename: str, data: bytes,
                                                  where: tuple[str, int] | None, text: str,
                                                  endpoint: str, owner: ApiClient,
                                                  a_map: dict[str, Any],
                                                  inline_app: Litestar) -> None:
    url = (f"/api/v1/maps/{a_map['id']}/layers/{a_map['layers'][0]['id']}/import"
           if endpoint == "layer" else f"/api/v1/maps/{a_map['id']}/import")
    before, objects = row_counts(inline_app), stored_objects(inline_app)
    err = assert_error(upload(owner, url, filename, data), 422, "invalid_file")
    if where is not None:
        key, value = where
        assert err["details"].get(key) == value, err
        assert f"{key.replace('_index', '')} {value}" in err["message"], err
    assert text.lower() in err["message"].lower(), err
    assert row_counts(inline_app) == before
    assert stored_objects(inline_app) == objects


@pytest.mark.parametrize("name,filename,data,text,details", BAD_FILES,
                         ids=[b[0] for b in BAD_FILES])
def test_bad_gis_files_are_refused_and_change_nothing(name: str, filename: str, data: bytes,
                                                      text: str, details: dict, owner: ApiClient,
                                                      a_map: dict[str, Any],
                                                      inline_app: Litestar) -> None:
    """Zip bombs, path traversal, missing or damaged members, plain SQLite, huge attribute
    tables, truncated files: a 422 naming the member, layer or feature; nothing written."""
    before, objects = row_counts(inline_app), stored_objects(inline_app)
    err = assert_error(upload(owner, f"/api/v1/maps/{a_map['id']}/import", filename, data),
                       422, "invalid_file")
    assert text in err["message"], err
    assert {k: err["details"].get(k) for k in details} == details, err
    assert row_counts(inline_app) == before
    assert stored_objects(inline_app) == objects


def test_missing_file_field_is_refused(owner: ApiClient, a_map: dict[str, Any],
                                       inline_app: Litestar) -> None:
    before = row_counts(inline_app)
    r = owner.post(f"/api/v1/maps/{a_map['id']}/import",
                   files={"upload": ("a.geojson", b"{}", "application/json")})
    err = assert_error(r, 422)
    assert err["details"] == {"field": "file"}
    assert row_counts(inline_app) == before


@THROUGH_PGBOUNCER
def test_import_needs_edit_rights(owner: ApiClient, a_map: dict[str, Any], inline_app: Litestar) -> None:
    data = (GEO_DATA / "gpx/togeojson/wpt.gpx").read_bytes()
    url = f"/api/v1/maps/{a_map['id']}/import"
    with TestClient(inline_app) as tc_anon, TestClient(inline_app) as tc_other:
        anon, other = ApiClient(tc_anon), ApiClient(tc_other)
        other.signup("mallory@example.com")
        before, objects = row_counts(inline_app), stored_objects(inline_app)
        # a private map is not revealed to visitors nor to non-members
        assert_error(upload(anon, url, "wpt.gpx", data), 404, "not_found")
        assert_error(upload(other, url, "wpt.gpx", data), 404, "not_found")
        assert row_counts(inline_app) == before
        assert stored_objects(inline_app) == objects


@pytest.fixture
def small_app(tmp_path: Path, sqlite_url: str) -> Iterator[Litestar]:
    yield from _app(tmp_path, sqlite_url, max_upload_bytes=10_000)


def test_over_limit_upload_gives_413(small_app: Litestar) -> None:
    data = (GEO_DATA / "gpx/togeojson/run.gpx").read_bytes()
    assert len(data) > 10_000
    with TestClient(small_app) as tc:
        client = ApiClient(tc)
        client.signup("owner@example.com")
        m = client.create_map("Small")
        wait_publisher_idle(small_app)
        before, objects = row_counts(small_app), stored_objects(small_app)
        for url in (f"/api/v1/maps/{m['id']}/import",
                    f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}/import"):
            err = assert_error(upload(client, url, "run.gpx", data), 413, "too_large")
            assert "limit" in err["message"]
            r = client.post(url, content=data, params={"filename": "run.gpx"})
            assert_error(r, 413, "too_large")
        bundle = client.post("/api/v1/maps/import-bundle", content=b"x" * 20_000)
        assert_error(bundle, 413, "too_large")
        assert row_counts(small_app) == before
        assert stored_objects(small_app) == objects
        # a file under the limit still goes through
        small = (GEO_DATA / "gpx/togeojson/wpt.gpx").read_bytes()
        assert len(small) < 10_000
        r = upload(client, f"/api/v1/maps/{m['id']}/import", "wpt.gpx", small)
        assert r.status_code == 201, r.text


@THROUGH_PGBOUNCER
@pytest.mark.parametrize("layer_name", ["   ", "x" * 5000])
def test_bad_layer_name_changes_nothing(layer_name: str, owner: ApiClient, a_map: dict[str, Any],
                                        inline_app: Litestar) -> None:
    """A failure after parsing (here: the new layer's name) also leaves no upload behind."""
    data = (GEO_DATA / "gpx/togeojson/wpt.gpx").read_bytes()
    before, objects = row_counts(inline_app), stored_objects(inline_app)
    r = upload(owner, f"/api/v1/maps/{a_map['id']}/import", "wpt.gpx", data, layer_name=layer_name)
    if len(layer_name) > 200:  # long names are cut to the 200-character limit
        assert r.status_code == 201, r.text
        assert r.json()["layers"][0]["name"] == "x" * 200
        return
    err = assert_error(r, 422)
    assert err["details"] == {"field": "name"}
    assert row_counts(inline_app) == before
    assert stored_objects(inline_app) == objects


@THROUGH_PGBOUNCER
def test_import_into_deleted_layer_changes_nothing(owner: ApiClient, a_map: dict[str, Any],
                                                   inline_app: Litestar) -> None:
    layer_url = f"/api/v1/maps/{a_map['id']}/layers/{a_map['layers'][0]['id']}"
    assert owner.delete(layer_url).status_code == 204
    wait_publisher_idle(inline_app)
    before, objects = row_counts(inline_app), stored_objects(inline_app)
    data = (GEO_DATA / "gpx/togeojson/wpt.gpx").read_bytes()
    assert_error(upload(owner, layer_url + "/import", "wpt.gpx", data), 404, "not_found")
    assert row_counts(inline_app) == before
    assert stored_objects(inline_app) == objects
