"""The hot anonymous read path (api/published_reads.py): answered before the framework only
when the request is anonymous, the map is one anyone may see and the bytes are cached; then
with the same bytes and headers as the routes, the security headers, the route label in the
metrics and access log, and the anon_read rate limit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar

from tests.api.test_snapshots import NO_GZIP, _publish, _setup
from tests.conftest import ApiClient, make_settings
from waymark.api.published_reads import DATA_ROUTE, SNAPSHOT_ROUTE, PublishedReads
from waymark.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return make_settings(tmp_path, sqlite_url, snapshot_delay_ms=0,
                         rate_limits="anon_read=5/minute")


def _fast_path(app: Litestar) -> PublishedReads:
    handler = app.asgi_handler
    while not isinstance(handler, PublishedReads):
        handler = handler.app
    return handler


def _call(fast: PublishedReads, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one GET through the fast path alone; report whether it fell through."""
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(k.lower().encode(), v.encode())
                                              for k, v in (headers or {}).items()],
             "client": ("127.0.0.9", 40000), "server": ("127.0.0.1", 8000)}
    out: dict[str, Any] = {"fell_through": False, "messages": []}
    inner = fast.app

    async def fallthrough(scope: Any, receive: Any, send: Any) -> None:
        out["fell_through"] = True

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        out["messages"].append(message)

    fast.app = fallthrough
    try:
        asyncio.run(fast(scope, receive, send))
    finally:
        fast.app = inner
    out["route"] = scope.get("path_template")
    return out


def test_cached_public_reads_are_answered_before_the_framework(alice: ApiClient, anon: ApiClient,
                                                               app: Litestar) -> None:
    s = _setup(alice, "public")
    _sha, url = _publish(alice, s)
    fast = _fast_path(app)
    # a logged-in read goes through the routes (and fills the cache); compare with it
    via_routes = alice.get(url, headers=NO_GZIP)
    data_via_routes = alice.get(s["base"] + "/data", headers=NO_GZIP)
    for path, route, expected in ((url, SNAPSHOT_ROUTE, via_routes),
                                  (s["base"] + "/data", DATA_ROUTE, data_via_routes)):
        r = _call(fast, path, {"accept-encoding": "identity"})
        assert not r["fell_through"], path
        assert r["route"] == route
        start, body = r["messages"]
        assert start["status"] == 200
        assert body["body"] == expected.content
        headers = {k.decode(): v.decode() for k, v in start["headers"]}
        for name in ("etag", "cache-control", "vary", "content-type"):
            assert headers[name] == expected.headers[name], name
        assert int(headers["content-length"]) == len(expected.content)
        # the security headers, added by the fast path itself (it answers before that layer)
        for name in ("x-content-type-options", "content-security-policy", "x-frame-options",
                     "referrer-policy"):
            assert headers[name] == expected.headers[name], name
        assert len(headers) == len(start["headers"]), "a header sent twice"
        assert "ratelimit-remaining" in headers  # charged to anon_read
        # revalidation: 304 without a body
        r304 = _call(fast, path, {"if-none-match": expected.headers["etag"]})
        assert not r304["fell_through"] and r304["messages"][0]["status"] == 304
        assert r304["messages"][1]["body"] == b""


def test_anything_else_goes_to_the_routes(alice: ApiClient, app: Litestar) -> None:
    fast = _fast_path(app)
    public = _setup(alice, "public", 1)
    sha, url = _publish(alice, public)
    private = _setup(alice, "private", 1)
    _private_sha, private_url = _publish(alice, private)
    assert not _call(fast, url)["fell_through"]
    assert _call(fast, private_url)["fell_through"]  # a map not everyone may see
    assert _call(fast, url, {"authorization": "Bearer wmk_x"})["fell_through"]
    assert _call(fast, url, {"cookie": "waymark_session=abc"})["fell_through"]
    assert _call(fast, url.replace(sha, "0" * 64))["fell_through"]  # unknown snapshot
    other = _setup(alice, "public", 1)
    other_sha, _ = _publish(alice, other)
    assert _call(fast, url.replace(sha, other_sha))["fell_through"]  # another layer's sha
    app.state.services.cache.lru.clear()
    assert _call(fast, url)["fell_through"]  # not cached in this process: the routes fill it
    r = alice.patch(f"/api/v1/maps/{public['map']}", json={"visibility": "private"})
    assert r.status_code == 200, r.text
    alice.get(url)  # cached again (by the owner's read)
    assert _call(fast, url)["fell_through"]  # made private: refused at once


def test_fast_path_keeps_security_headers_and_the_rate_limit(alice: ApiClient, anon: ApiClient,
                                                             app: Litestar) -> None:
    s = _setup(alice, "public", 1)
    _sha, url = _publish(alice, s)
    statuses = []
    for _ in range(7):
        r = anon.get(url)
        statuses.append(r.status_code)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-request-id"]
    # anon_read=5/minute: whichever path answered, the sixth request is refused
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429], statuses
    r = anon.get(url)
    assert r.json()["error"]["code"] == "rate_limited" and r.headers["retry-after"]
