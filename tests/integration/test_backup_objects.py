"""Object storage on a real S3 protocol server (moto_server) is lost and restored from the
object backup: snapshots come back with identical ETags and bytes; private objects are
encrypted at rest (also in the backup), public snapshots are plaintext. Plus the
configuration backup (no secrets)."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid

import pytest
from litestar.testing import TestClient

from tests.conftest import ApiClient, make_settings
from waymark.app import create_app
from waymark.backup.config import backup_config
from waymark.backup.objects import backup_objects, backup_store, restore_objects
from waymark.storage import open_store
from waymark.storage.crypto import MAGIC

pytestmark = [pytest.mark.s3]


@pytest.fixture
def s3_settings(tmp_path, sqlite_url, moto_server):  # type: ignore[no-untyped-def]
    primary = moto_server.make_bucket(f"obj-{uuid.uuid4().hex[:10]}")
    backup = moto_server.make_bucket(f"bak-{uuid.uuid4().hex[:10]}")
    return make_settings(tmp_path, sqlite_url, object_store_url=moto_server.url(primary, "waymark"),
                         backup_url=moto_server.url(backup, "site1"),
                         snapshot_delay_ms=600_000, secret_key="s" * 40)


def _client(settings):  # type: ignore[no-untyped-def]
    app = create_app(settings)
    tc = TestClient(app)
    tc.__enter__()
    return app, tc


def _add(client, map_id, layer_id, n):  # type: ignore[no-untyped-def]
    r = client.post(f"/api/v1/maps/{map_id}/layers/{layer_id}/features",
                    json={"geometry": {"type": "Point", "coordinates": [n, n]}, "properties": {"n": n}})
    assert r.status_code == 201, r.text


def test_object_storage_lost_and_restored_with_identical_etags(s3_settings):
    settings = s3_settings
    app, tc = _client(settings)
    client = ApiClient(tc)
    client.signup("objects@example.com")
    layers = {}
    for visibility in ("private", "public"):
        m = client.create_map(f"{visibility} map", visibility=visibility)
        layer_id = client.get(f"/api/v1/maps/{m['id']}/layers").json()[0]["id"]
        layers[visibility] = (m["id"], layer_id)
    # an uploaded original (private data) too
    map_id, layer_id = layers["private"]
    up = client.post(f"/api/v1/maps/{map_id}/layers/{layer_id}/import",
                     files={"file": ("points.geojson", json.dumps(
                         {"type": "FeatureCollection", "features": [
                             {"type": "Feature", "properties": {"secret": "uploaded-secret"},
                              "geometry": {"type": "Point", "coordinates": [1, 2]}}]}).encode(),
                         "application/geo+json")})
    assert up.status_code in (200, 201, 202), up.text
    etags, bodies, snapshot_urls = {}, {}, {}
    for visibility, (map_id, layer_id) in layers.items():
        for n in range(3):
            _add(client, map_id, layer_id, n)
            r = client.get(f"/api/v1/maps/{map_id}/layers/{layer_id}/data")  # publishes
            assert r.status_code == 200
        etags[visibility] = r.headers["etag"]
        bodies[visibility] = r.content
        snapshot_urls[visibility] = (
            f"/api/v1/maps/{map_id}/layers/{layer_id}/snapshots/{r.headers['etag'].strip('W/').strip(chr(34))}")
    tc.__exit__(None, None, None)
    app.state.services.db.dispose()

    report = backup_objects(settings)
    assert report.copied >= 7 and report.copied == report.scanned
    assert backup_objects(settings).copied == 0  # incremental: nothing new

    raw_primary = open_store(settings.resolved_object_store_url)
    objects = {info.key: raw_primary.get_sync(info.key) for info in raw_primary.list_sync()}
    uploads = [k for k in objects if k.startswith("uploads/")]
    assert uploads and all(objects[k].startswith(MAGIC) for k in uploads)
    assert not any(b"uploaded-secret" in v for v in objects.values())
    public_sha = etags["public"].strip('W/"')
    private_sha = etags["private"].strip('W/"')
    public_key = f"snapshots/{public_sha[:2]}/{public_sha}.geojson.gz"
    private_key = f"snapshots/{private_sha[:2]}/{private_sha}.geojson.gz"
    assert objects[public_key][:2] == b"\x1f\x8b"  # public snapshot: plaintext gzip
    assert objects[private_key].startswith(MAGIC)  # private snapshot: encrypted
    # the backup holds exactly the stored bytes (ciphertext stays ciphertext)
    bstore = backup_store(settings)
    assert {i.key: bstore.get_sync(i.key) for i in bstore.list_sync()} == objects

    # disaster: every object in primary storage is gone
    for key in objects:
        raw_primary.delete_sync(key)
    assert raw_primary.list_sync() == []

    restored = restore_objects(settings)
    assert restored.copied == len(objects) and not restored.errors
    assert restored.verified == len([k for k in objects if k.startswith("snapshots/")])
    assert {i.key: raw_primary.get_sync(i.key) for i in raw_primary.list_sync()} == objects

    app, tc = _client(settings)  # fresh process caches
    client = ApiClient(tc)
    client.login("objects@example.com")
    for visibility, (map_id, layer_id) in layers.items():
        r = client.get(f"/api/v1/maps/{map_id}/layers/{layer_id}/data")
        assert r.status_code == 200
        assert r.headers["etag"] == etags[visibility]
        assert r.content == bodies[visibility]
        assert hashlib.sha256(r.content).hexdigest() == etags[visibility].strip('W/"')
        snap = client.get(snapshot_urls[visibility])
        assert snap.status_code == 200 and snap.headers["etag"] == etags[visibility]
    tc.__exit__(None, None, None)
    app.state.services.db.dispose()
    assert gzip.decompress(objects[public_key]) == bodies["public"]


def test_config_backup_has_no_secrets(s3_settings, monkeypatch):
    settings = s3_settings
    where, doc = backup_config(settings)
    assert "/site1/config/" in where and ".json" in where
    store = open_store(settings.backup_url.replace("/site1?", "/site1/config?"))
    latest = json.loads(store.get_sync("latest.json"))
    assert latest == doc
    text = json.dumps(doc)
    assert settings.secret_key not in text and "secret_key" not in doc["settings"]
    assert doc["schema_revision"] == doc["schema_head"]
    assert doc["master_keys"]["current"] in doc["master_keys"]["key_ids"]
    assert doc["settings"]["backup_url"].startswith("s3://")
    assert doc["settings"]["pitr_window_hours"] == settings.pitr_window_hours
