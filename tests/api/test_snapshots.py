"""Layer data and published snapshots: strong ETags, revalidation, no stale reads,
content-addressed immutable URLs, gzip on the wire and in storage, cache headers by
visibility, access control."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar

from tests.api.test_import_api import assert_error, wait_publisher_idle
from tests.conftest import ApiClient, make_settings
from waymark.settings import Settings
from waymark.storage import open_store, snapshot_key

# shared caches revalidate after WAYMARK_SHARED_CACHE_SECONDS (default 300; decision 0016)
IMMUTABLE_PUBLIC = "public, max-age=300, s-maxage=300, stale-while-revalidate=60"
NO_GZIP = {"Accept-Encoding": "identity"}


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """The app of conftest on these settings: background publishing without delay."""
    return make_settings(tmp_path, sqlite_url, snapshot_delay_ms=0)


def _setup(c: ApiClient, visibility: str, n: int = 3) -> dict[str, Any]:
    m = c.create_map(f"{visibility} map", visibility=visibility)
    layer = m["layers"][0]["id"]
    base = f"/api/v1/maps/{m['id']}/layers/{layer}"
    ids = []
    for i in range(n):
        r = c.post(base + "/features", json={"geometry": {"type": "Point", "coordinates": [i, i / 2]},
                                             "properties": {"name": f"p{i}", "é": "ü"}})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return {"map": m["id"], "layer": layer, "base": base, "features": ids}


def _raw_get(c: ApiClient, url: str, headers: dict[str, str]) -> tuple[Any, bytes]:
    """GET without letting the client decode Content-Encoding: the bytes on the wire."""
    with c.client.stream("GET", url, headers=headers) as r:
        return r, b"".join(r.iter_raw())


def _publish(c: ApiClient, s: dict[str, Any]) -> tuple[str, str]:
    """Read data_url (which publishes when out of date); return (sha, snapshot_url)."""
    layer = c.get(s["base"]).json()
    r = c.get(layer["data_url"], headers=NO_GZIP)
    assert r.status_code == 200, r.text
    sha = r.headers["etag"].strip('"')
    layer = c.get(s["base"]).json()
    assert layer["snapshot_url"] == f"{s['base']}/snapshots/{sha}.geojson"
    return sha, layer["snapshot_url"]


# ---- data_url --------------------------------------------------------------------------------
def test_data_url_strong_etag_revalidation_and_no_stale_read(alice: ApiClient) -> None:
    s = _setup(alice, "private")
    layer = alice.get(s["base"]).json()
    assert layer["data_url"] == s["base"] + "/data"

    r = alice.get(layer["data_url"], headers=NO_GZIP)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    assert "content-encoding" not in r.headers
    etag = r.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")  # strong
    assert etag.strip('"') == hashlib.sha256(r.content).hexdigest()
    assert r.headers["cache-control"] == "private, no-cache"
    doc = r.json()
    assert doc["type"] == "FeatureCollection"
    assert [f["id"] for f in doc["features"]] == s["features"]
    assert [f["properties"] for f in doc["features"]] == [{"name": f"p{i}", "é": "ü"}
                                                          for i in range(3)]
    assert doc["features"][2]["geometry"] == {"type": "Point", "coordinates": [2, 1.0]}

    r304 = alice.get(layer["data_url"], headers={"If-None-Match": etag, **NO_GZIP})
    assert r304.status_code == 304
    assert r304.content == b""
    assert r304.headers["etag"] == etag
    # a list of tags containing ours also matches; another tag does not
    assert alice.get(layer["data_url"], headers={"If-None-Match": f'"nope", {etag}'}).status_code == 304
    assert alice.get(layer["data_url"], headers={"If-None-Match": '"nope"'}).status_code == 200

    # edit, then read immediately: the new content, a new ETag, the old one no longer 304s
    fid = s["features"][1]
    r = alice.patch(f"{s['base']}/features/{fid}", json={"properties": {"name": "changed"}})
    assert r.status_code == 200, r.text
    r2 = alice.get(layer["data_url"], headers={"If-None-Match": etag, **NO_GZIP})
    assert r2.status_code == 200
    assert r2.headers["etag"] != etag
    assert r2.json()["features"][1]["properties"] == {"name": "changed"}
    assert r2.headers["etag"].strip('"') == hashlib.sha256(r2.content).hexdigest()

    # delete and add: still never stale
    assert alice.delete(f"{s['base']}/features/{s['features'][0]}").status_code == 204
    r3 = alice.get(layer["data_url"])
    assert [f["id"] for f in r3.json()["features"]] == s["features"][1:]
    assert r3.headers["etag"] not in (etag, r2.headers["etag"])


def test_data_url_gzip_on_request(alice: ApiClient) -> None:
    s = _setup(alice, "public")
    plain = alice.get(s["base"] + "/data", headers=NO_GZIP)
    r, raw = _raw_get(alice, s["base"] + "/data", {"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in r.headers["vary"].lower()
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == plain.content
    assert r.headers["etag"] == plain.headers["etag"]


def test_data_url_follows_map_visibility(alice: ApiClient, bob: ApiClient, anon: ApiClient) -> None:
    private = _setup(alice, "private", 1)
    assert_error(anon.get(private["base"] + "/data"), 404, "not_found")
    assert_error(bob.get(private["base"] + "/data"), 404, "not_found")
    public = _setup(alice, "public", 1)
    assert anon.get(public["base"] + "/data").status_code == 200


# ---- snapshot_url ----------------------------------------------------------------------------
@pytest.mark.parametrize("visibility,cache", [
    ("public", IMMUTABLE_PUBLIC),
    ("unlisted", "private, max-age=31536000, immutable"),
    ("private", "private, max-age=31536000, immutable"),
])
def test_snapshot_is_content_addressed_gzip_and_cached(visibility: str, cache: str,
                                                        alice: ApiClient, app: Litestar) -> None:
    s = _setup(alice, visibility)
    sha, url = _publish(alice, s)

    r = alice.get(url, headers=NO_GZIP)
    assert r.status_code == 200, r.text
    body = r.content
    assert hashlib.sha256(body).hexdigest() == sha
    assert r.headers["etag"] == f'"{sha}"'
    assert r.headers["cache-control"] == cache
    assert r.headers["content-type"].startswith("application/geo+json")
    assert len(json.loads(body)["features"]) == 3
    assert body == alice.get(s["base"] + "/data", headers=NO_GZIP).content

    r, raw = _raw_get(alice, url, {"Accept-Encoding": "gzip, deflate"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["cache-control"] == cache
    assert raw[:2] == b"\x1f\x8b" and gzip.decompress(raw) == body

    r304 = alice.get(url, headers={"If-None-Match": f'"{sha}"'})
    assert r304.status_code == 304 and r304.headers["cache-control"] == cache

    # in object storage: snapshots/ab/<sha>.geojson.gz, gzip of exactly the served body
    key = snapshot_key(sha)
    assert key == f"snapshots/{sha[:2]}/{sha}.geojson.gz"
    store = app.state.services.store
    assert key in {o.key for o in store.list_sync("snapshots")}
    stored = store.get_sync(key)  # the app's store (decrypts if encryption at rest is on)
    assert stored[:2] == b"\x1f\x8b" and gzip.decompress(stored) == body


def test_public_snapshot_object_is_plain_gzip_on_disk(alice: ApiClient, app: Litestar) -> None:
    """What a CDN or another tool reading the bucket sees: plain gzip, named by its hash."""
    s = _setup(alice, "public")
    sha, _url = _publish(alice, s)
    raw_store = open_store(app.state.services.settings.resolved_object_store_url)
    blob = raw_store.get_sync(snapshot_key(sha))
    assert blob[:2] == b"\x1f\x8b"
    assert hashlib.sha256(gzip.decompress(blob)).hexdigest() == sha


def test_snapshot_access_control(alice: ApiClient, bob: ApiClient, anon: ApiClient) -> None:
    private = _setup(alice, "private", 1)
    _, private_url = _publish(alice, private)
    assert_error(anon.get(private_url), 404, "not_found")
    assert_error(bob.get(private_url), 404, "not_found")

    unlisted = _setup(alice, "unlisted", 1)
    _, unlisted_url = _publish(alice, unlisted)
    r = anon.get(unlisted_url)
    assert r.status_code == 200 and r.headers["cache-control"].startswith("private")

    public = _setup(alice, "public", 1)
    sha, public_url = _publish(alice, public)
    r = anon.get(public_url)
    assert r.status_code == 200 and r.headers["cache-control"] == IMMUTABLE_PUBLIC

    # a snapshot is only served under its own layer
    assert_error(alice.get(f"{private['base']}/snapshots/{sha}.geojson"), 404, "not_found")
    assert_error(alice.get(f"{public['base']}/snapshots/{'0' * 64}.geojson"), 404, "not_found")


def test_old_snapshot_urls_keep_working_after_edits(alice: ApiClient, app: Litestar) -> None:
    s = _setup(alice, "public")
    sha1, url1 = _publish(alice, s)
    body1 = alice.get(url1, headers=NO_GZIP).content

    r = alice.post(s["base"] + "/features", json={"geometry": {"type": "Point", "coordinates": [9, 9]},
                                                  "properties": {"name": "new"}})
    assert r.status_code == 201
    sha2, url2 = _publish(alice, s)
    assert sha2 != sha1 and url2 != url1
    assert len(alice.get(url2, headers=NO_GZIP).json()["features"]) == 4

    old = alice.get(url1, headers=NO_GZIP)
    assert old.status_code == 200
    assert old.content == body1
    assert len(old.json()["features"]) == 3
    assert old.headers["etag"] == f'"{sha1}"'

    # a layer edit (rename) also gets a new version; background publishing catches up
    r = alice.patch(s["base"], json={"name": "renamed"})
    assert r.status_code == 200
    wait_publisher_idle(app)
    layer = alice.get(s["base"]).json()
    assert layer["snapshot_url"] is not None
    assert alice.get(layer["snapshot_url"]).status_code == 200
    assert alice.get(url1).status_code == 200 and alice.get(url2).status_code == 200


def test_background_publishing_after_edit(alice: ApiClient, app: Litestar) -> None:
    """Without anyone reading data_url, an edit is published by the background publisher."""
    s = _setup(alice, "public", 2)
    wait_publisher_idle(app)
    layer = alice.get(s["base"]).json()
    assert layer["snapshot_url"] is not None
    sha = layer["snapshot_url"].rsplit("/", 1)[1].removesuffix(".geojson")
    body = alice.get(layer["snapshot_url"], headers=NO_GZIP).content
    assert hashlib.sha256(body).hexdigest() == sha
    assert [f["id"] for f in json.loads(body)["features"]] == s["features"]


def test_identical_content_shares_one_object(alice: ApiClient, app: Litestar) -> None:
    """Two empty layers have the same bytes, hence one stored object."""
    a = alice.create_map("A")
    b = alice.create_map("B")
    urls = []
    for m in (a, b):
        base = f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}"
        r = alice.get(base + "/data", headers=NO_GZIP)
        assert r.json() == {"type": "FeatureCollection", "features": []}
        urls.append(r.headers["etag"])
    assert urls[0] == urls[1]
    sha = urls[0].strip('"')
    keys = [o.key for o in app.state.services.store.list_sync("snapshots")]
    assert keys.count(snapshot_key(sha)) == 1


def test_snapshot_text_is_built_by_the_database_in_feature_order(db_clients, monkeypatch) -> None:
    """The database joins each feature's stored JSON text (SQLite and PostgreSQL): the result
    parses, keeps id order across chunk boundaries, and carries null geometries, quotes,
    backslashes and non-ASCII properties unchanged."""
    from waymark.maps import snapshots

    monkeypatch.setattr(snapshots, "_ID_CHUNK", 2)  # force several chunks
    c = db_clients()
    c.signup("chunks@example.org")
    m = c.create_map("Chunks", visibility="public")
    base = f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}"
    sent = [({"type": "Point", "coordinates": [i, -i]}, {"name": f'q"{i}\\', "é": "ü"})
            for i in range(5)] + [(None, {"note": "no geometry"})]
    ids = []
    for geometry, properties in sent:
        r = c.post(base + "/features", json={"geometry": geometry, "properties": properties})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = c.get(c.get(base).json()["data_url"], headers=NO_GZIP)
    assert r.status_code == 200, r.text
    features = json.loads(r.content)["features"]
    assert [f["id"] for f in features] == ids
    assert [(f["geometry"], f["properties"]) for f in features] == sent
    assert all(f["version"] == 1 and f["type"] == "Feature" for f in features)
    assert hashlib.sha256(r.content).hexdigest() == r.headers["etag"].strip('"')
