"""Retention leaves exactly what the policy says: trash -> archive -> purge, and the last N
snapshot versions per layer."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import ApiClient, make_settings
from waymark import jsonutil
from waymark.app import create_app
from waymark.db.models import Feature, Layer, Map, Snapshot
from waymark.maps.retention import archive_store, read_archive, run_retention
from waymark.maps.snapshots import publish
from waymark.storage.crypto import MAGIC
from waymark.storage.keys import snapshot_key

NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def env(tmp_path, sqlite_url):
    from litestar.testing import TestClient

    settings = make_settings(tmp_path, sqlite_url, trash_days=20, archive_days=365,
                             snapshot_keep_versions=3, snapshot_delay_ms=600_000)
    app = create_app(settings)
    with TestClient(app) as tc:
        client = ApiClient(tc)
        client.signup("owner@example.com")
        yield settings, app.state.services, client
    app.state.services.db.dispose()


def _point(client, map_id, layer_id, n):  # type: ignore[no-untyped-def]
    r = client.post(f"/api/v1/maps/{map_id}/layers/{layer_id}/features",
                    json={"geometry": {"type": "Point", "coordinates": [n, n]},
                          "properties": {"n": n}})
    assert r.status_code == 201, r.text


def _layer_id(client, map_id):  # type: ignore[no-untyped-def]
    return client.get(f"/api/v1/maps/{map_id}/layers").json()[0]["id"]


def _trash(services, client, map_id, days_ago):  # type: ignore[no-untyped-def]
    assert client.delete(f"/api/v1/maps/{map_id}").status_code == 204
    with services.db.write() as s:
        s.execute(update(Map).where(Map.public_id == map_id)
                  .values(deleted_at=NOW - timedelta(days=days_ago)))


def _map_ids(services):  # type: ignore[no-untyped-def]
    with services.db.read() as s:
        return set(s.scalars(select(Map.public_id)))


def test_trash_days_setting_drives_purge_after(env):
    _settings, _services, client = env
    m = client.create_map("soon gone")
    client.delete(f"/api/v1/maps/{m['id']}")
    item = client.get("/api/v1/maps?scope=trash").json()
    item = item[0] if isinstance(item, list) else item["maps"][0]
    deleted = datetime.fromisoformat(item["deleted_at"]).replace(tzinfo=None)
    purge_after = datetime.fromisoformat(item["purge_after"]).replace(tzinfo=None)
    assert purge_after - deleted == timedelta(days=20)  # WAYMARK_TRASH_DAYS, not the default


def test_retention_policy_exactly(env):
    settings, services, client = env
    store = services.store
    archive = archive_store(settings)

    active = client.create_map("active")["id"]
    recent = client.create_map("trashed 10 days ago")["id"]
    due = client.create_map("trashed 21 days ago")["id"]
    for map_id in (recent, due):
        _point(client, map_id, _layer_id(client, map_id), 1)
    store.put_sync(f"uploads/{due}/u1/original.geojson", b'{"type":"FeatureCollection"}')
    _trash(services, client, recent, 10)
    _trash(services, client, due, 21)

    # seven published versions of the active map's layer
    layer_public = _layer_id(client, active)
    with services.db.read() as s:
        layer_pk = s.scalar(select(Layer.id).where(Layer.public_id == layer_public))
    shas = []
    for n in range(7):
        _point(client, active, layer_public, n)
        shas.append(publish(services.db, store, layer_pk)[0])
    assert len(set(shas)) == 7

    # archives made earlier: one past the archive retention, one inside it
    stamp = lambda t: t.strftime("%Y%m%dT%H%M%SZ")
    archive.put_sync(f"maps/OLDMAP/{stamp(NOW - timedelta(days=366))}.json", b"{}")
    archive.put_sync(f"maps/KEPTMAP/{stamp(NOW - timedelta(days=364))}.json", b"{}")

    report = run_retention(settings, services.db, store, now=NOW, archive=archive)

    # maps: the one trashed 21 days ago (> 20) is archived and purged; the others stay
    assert report.maps_archived == [due]
    assert _map_ids(services) == {active, recent}
    assert store.list_sync(f"uploads/{due}") == []
    due_key = f"maps/{due}/{stamp(NOW)}.json"
    bundle = jsonutil.loads(read_archive(archive, due_key))
    assert bundle["map"]["title"] == "trashed 21 days ago"
    assert bundle["layers"][0]["features"][0]["properties"] == {"n": 1}
    assert archive.base.get_sync(due_key).startswith(MAGIC)  # archived encrypted

    # archive retention: exactly the archive older than 365 days is gone
    assert report.archives_purged == [f"maps/OLDMAP/{stamp(NOW - timedelta(days=366))}.json"]
    assert {i.key for i in archive.list_sync("maps")} == {
        f"maps/KEPTMAP/{stamp(NOW - timedelta(days=364))}.json", due_key}

    # snapshots: the newest 3 versions stay, the 4 older ones move to the archive
    with services.db.read() as s:
        kept = list(s.scalars(select(Snapshot.version).where(Snapshot.layer_id == layer_pk)
                              .order_by(Snapshot.version)))
        versions = sorted(s.scalars(select(Layer.version).where(Layer.id == layer_pk)))
    assert len(kept) == 3 and kept[-1] == versions[-1]
    assert report.snapshots_archived == 4
    assert {store.exists_sync(snapshot_key(sha)) for sha in shas[:4]} == {False}
    assert {store.exists_sync(snapshot_key(sha)) for sha in shas[4:]} == {True}
    archived = archive.list_sync("snapshots")
    assert len(archived) == 4
    for info in archived:
        raw = gzip.decompress(archive.get_sync(info.key))
        assert info.key.endswith(f"-{hashlib.sha256(raw).hexdigest()}.geojson.gz")

    # a second pass at the same time changes nothing
    again = run_retention(settings, services.db, store, now=NOW, archive=archive)
    assert again.as_dict() == {"maps_archived": [], "archives_purged": [],
                               "snapshots_archived": 0, "snapshot_archives_purged": 0,
                               "objects_deleted": 0}

    # a year later: the map trashed 10 days ago was archived meanwhile, every archive made
    # at NOW has expired
    later = NOW + timedelta(days=366)
    final = run_retention(settings, services.db, store, now=later, archive=archive)
    assert final.maps_archived == [recent]
    assert _map_ids(services) == {active}
    assert sorted(final.archives_purged) == sorted(
        [due_key, f"maps/KEPTMAP/{stamp(NOW - timedelta(days=364))}.json"])
    assert final.snapshot_archives_purged == 4
    assert {i.key for i in archive.list_sync("")} == {f"maps/{recent}/{stamp(later)}.json"}
    with services.db.read() as s:
        assert s.scalar(select(Feature.id).join(Layer).where(Layer.id == layer_pk)) is not None
