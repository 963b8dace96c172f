"""The whole app with its object storage on a real S3 protocol server (moto_server)."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import uuid
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.api.test_export_roundtrip import FEATURES, add_layer, features_of
from tests.api.test_import_api import upload
from tests.conftest import GEO_DATA, ApiClient, make_settings
from tests.servers import MotoServer, moto_server  # noqa: F401 - fixture
from waymark.app import create_app
from waymark.settings import Settings
from waymark.storage import snapshot_key

pytestmark = pytest.mark.s3

_counter = itertools.count()
ENCRYPTED_MAGIC = b"WMKENC1\n"  # header of objects encrypted at rest (waymark.storage.crypto)


@pytest.fixture
def bucket(moto_server: MotoServer) -> str:  # noqa: F811
    return moto_server.make_bucket(f"waymark-app-{next(_counter)}-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str, moto_server: MotoServer, bucket: str) -> Settings:  # noqa: F811
    return make_settings(tmp_path, sqlite_url, object_store_url=moto_server.url(bucket),
                         snapshot_delay_ms=0)


def _s3_keys(server: MotoServer, bucket: str) -> dict[str, int]:
    listing = server.boto3_client().list_objects_v2(Bucket=bucket)
    return {o["Key"]: o["Size"] for o in listing.get("Contents", [])}


def _s3_get(server: MotoServer, bucket: str, key: str) -> dict:
    return server.boto3_client().get_object(Bucket=bucket, Key=key)


def test_readyz_checks_s3(anon: ApiClient, app: Litestar) -> None:
    assert app.state.services.settings.resolved_object_store_url.startswith("s3://")
    r = anon.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["checks"]["object_storage"]["ok"] is True


def test_readyz_reports_a_missing_bucket(tmp_path: Path, sqlite_url: str,
                                         moto_server: MotoServer) -> None:  # noqa: F811
    settings = make_settings(tmp_path, sqlite_url,
                             object_store_url=moto_server.url(f"no-such-bucket-{uuid.uuid4().hex[:8]}"))
    application = create_app(settings)
    try:
        with TestClient(application) as tc:
            r = tc.get("/readyz")
            assert r.status_code == 503, r.text
            checks = r.json()["checks"]
            assert checks["object_storage"]["ok"] is False and checks["database"]["ok"] is True
            assert "StorageError" in checks["object_storage"]["error"]
    finally:
        application.state.services.db.dispose()


def test_import_stores_the_upload_in_s3(alice: ApiClient, app: Litestar, moto_server: MotoServer,  # noqa: F811
                                        bucket: str) -> None:
    data = (GEO_DATA / "gpx/togeojson/run.gpx").read_bytes()
    m = alice.create_map("S3 import")
    r = upload(alice, f"/api/v1/maps/{m['id']}/import", "run.gpx", data)
    assert r.status_code == 201, r.text
    key = f"uploads/{m['id']}/{r.json()['upload']}/run.gpx"
    assert key in _s3_keys(moto_server, bucket)
    raw = _s3_get(moto_server, bucket, key)["Body"].read()
    if app.state.services.settings.encrypt_objects:
        assert raw.startswith(ENCRYPTED_MAGIC) and data[:200] not in raw
    else:
        assert raw == data
    assert app.state.services.store.get_sync(key) == data  # what the app reads back
    # a refused upload writes nothing to the bucket
    before = _s3_keys(moto_server, bucket)
    r = upload(alice, f"/api/v1/maps/{m['id']}/import", "bad.gpx",
               (GEO_DATA / "gpx/togeojson/bad.gpx").read_bytes())
    assert r.status_code == 422
    assert _s3_keys(moto_server, bucket) == before


def test_snapshot_served_from_s3(alice: ApiClient, anon: ApiClient, app: Litestar,
                                 moto_server: MotoServer, bucket: str) -> None:  # noqa: F811
    m = alice.create_map("S3 public", visibility="public")
    base = f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}"
    for f in FEATURES[:4]:
        assert alice.post(base + "/features", json=f).status_code == 201
    r = alice.get(base + "/data", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    sha = r.headers["etag"].strip('"')
    assert hashlib.sha256(r.content).hexdigest() == sha

    # the object is in the bucket: content-addressed, gzip, typed
    key = snapshot_key(sha)
    assert key in _s3_keys(moto_server, bucket)
    obj = _s3_get(moto_server, bucket, key)
    assert obj["ContentType"] == "application/geo+json"
    blob = obj["Body"].read()
    assert gzip.decompress(blob) == r.content

    # served from S3 by a second app server with a cold cache, immutable
    url = alice.get(base).json()["snapshot_url"]
    assert url.endswith(f"/{sha}.geojson")
    fresh = create_app(app.state.services.settings)  # a second app server, cold cache
    try:
        with TestClient(fresh) as tc:
            got = tc.get(url, headers={"Accept-Encoding": "identity"})
            assert got.status_code == 200, got.text
            assert got.content == r.content
            assert got.headers["cache-control"].startswith("public, max-age=300, s-maxage=300")
    finally:
        fresh.state.services.db.dispose()
    assert anon.get(url).status_code == 200


def test_bundle_round_trip_with_s3(alice: ApiClient, moto_server: MotoServer,  # noqa: F811
                                   bucket: str) -> None:
    m = alice.create_map("S3 bundle", description="on S3", basemap="topo",
                         default_view={"lat": 10, "lon": 20, "zoom": 5})
    layer = add_layer(alice, m["id"], "Things", FEATURES, style={"color": "#123456"})
    r = alice.get(f"/api/v1/maps/{m['id']}/export", params={"format": "bundle"})
    assert r.status_code == 200
    r = upload(alice, "/api/v1/maps/import-bundle", "b.waymark.json", r.content)
    assert r.status_code == 201, r.text
    copy_id = r.json()["id"]
    original, copy = alice.get(f"/api/v1/maps/{m['id']}").json(), alice.get(f"/api/v1/maps/{copy_id}").json()
    for k in ("title", "description", "visibility", "basemap", "default_view"):
        assert copy[k] == original[k]
    assert [(la["name"], la["style"], la["position"]) for la in copy["layers"]] == \
        [(la["name"], la["style"], la["position"]) for la in original["layers"]]
    copied_layer = copy["layers"][-1]["id"]
    strip = [(f["geometry"], f["properties"]) for f in features_of(alice, m["id"], layer)]
    assert [(f["geometry"], f["properties"]) for f in features_of(alice, copy_id, copied_layer)] == strip
    # the copy's snapshots land in the same bucket
    assert alice.get(f"/api/v1/maps/{copy_id}/layers/{copied_layer}/data").status_code == 200
    assert any(k.startswith("snapshots/") for k in _s3_keys(moto_server, bucket))
