"""Other tools can use what Waymark publishes: anonymous GETs of public and unlisted map data
answer `Access-Control-Allow-Origin: *` (never with credentials), on the routes and on the
anonymous fast path (api/published_reads.py); nothing private, signed-in or token-read does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar

from tests.api.test_published_reads import _call, _fast_path
from tests.api.test_snapshots import NO_GZIP, _publish, _setup
from tests.conftest import ApiClient, make_settings
from waymark.settings import Settings

ORIGIN = {"Origin": "https://geojson.io"}


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return make_settings(tmp_path, sqlite_url, snapshot_delay_ms=0)


def _urls(s: dict[str, Any], snapshot_url: str) -> list[str]:
    m = f"/api/v1/maps/{s['map']}"
    return [m, m + "/layers", s["base"], s["base"] + "/data", snapshot_url,
            s["base"] + "/export?format=geojson", s["base"] + "/export?format=gpkg",
            m + "/export?format=kml", m + "/export?format=bundle"]


@pytest.mark.parametrize("visibility", ["public", "unlisted"])
def test_anonymous_reads_of_shared_maps_are_open_to_any_origin(
        visibility: str, alice: ApiClient, anon: ApiClient, app: Litestar) -> None:
    s = _setup(alice, visibility, 2)
    _, snapshot_url = _publish(alice, s)
    for url in _urls(s, snapshot_url):
        r = anon.get(url, headers={**ORIGIN, **NO_GZIP})
        assert r.status_code == 200, (url, r.text)
        assert r.headers.get("access-control-allow-origin") == "*", url
        assert "access-control-allow-credentials" not in r.headers, url
        # the owner, signed in with a cookie, reads the same data without any CORS header
        mine = alice.get(url, headers={**ORIGIN, **NO_GZIP})
        assert mine.status_code == 200
        assert "access-control-allow-origin" not in mine.headers, url


def test_the_fast_path_answers_with_the_header_too(alice: ApiClient, anon: ApiClient,
                                                   app: Litestar) -> None:
    s = _setup(alice, "public", 2)
    _, snapshot_url = _publish(alice, s)
    alice.get(snapshot_url)  # in this process's cache: the fast path can answer
    fast = _fast_path(app)
    for path in (snapshot_url, s["base"] + "/data"):
        r = _call(fast, path, {"origin": "https://example.org"})
        assert not r["fell_through"], path
        headers = dict(r["messages"][0]["headers"])
        assert headers[b"access-control-allow-origin"] == b"*"
        assert b"access-control-allow-credentials" not in headers
        # and through the whole app (served by the fast path, same answer)
        assert anon.get(path, headers=ORIGIN).headers["access-control-allow-origin"] == "*"


def test_private_maps_and_tokens_get_no_cors(alice: ApiClient, anon: ApiClient,
                                             app: Litestar) -> None:
    s = _setup(alice, "private", 1)
    _, snapshot_url = _publish(alice, s)
    for url in _urls(s, snapshot_url):
        r = anon.get(url, headers=ORIGIN)
        assert r.status_code == 404, url
        assert "access-control-allow-origin" not in r.headers, url
        assert "access-control-allow-origin" not in alice.get(url, headers=ORIGIN).headers
    token = alice.post("/api/v1/tokens", json={"name": "qgis", "scope": "read"})
    assert token.status_code == 201, token.text
    public = _setup(alice, "public", 1)
    r = anon.get(public["base"] + "/data",
                 headers={**ORIGIN, "Authorization": f"Bearer {token.json()['token']}"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    # nothing that changes data is ever opened up
    r = anon.client.options(public["base"] + "/features",
                            headers={**ORIGIN, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers
