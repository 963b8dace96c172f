"""Rate limiting: rule parsing, classification, client address, limiter and middleware."""

from __future__ import annotations

import asyncio
import logging

import pytest
from litestar.testing import TestClient

from tests.conftest import make_settings
from waymark.app import create_app
from waymark.backends.redis.counters import RedisCounters
from waymark.backends.redis.hub import RedisHub
from waymark.observability.metrics import RATELIMIT_FAILOPEN
from waymark.ratelimit.limiter import (
    RateLimiter,
    Rule,
    classify,
    client_ip,
    parse_networks,
    parse_rules,
)
from waymark.settings import SettingsError, load_settings


def test_defaults_and_overrides() -> None:
    rules = parse_rules("login=3/minute,write=off,upload=2/30s")
    assert rules["login"] == Rule("login", 3, 60)
    assert "write" not in rules
    assert rules["upload"] == Rule("upload", 2, 30)
    assert rules["signup"] == Rule("signup", 5, 3600)
    assert rules["anon_read"].slice == 30 and rules["login"].slice == 1


@pytest.mark.parametrize("bad", ["nope=1/minute", "login=ten/minute", "login=3/fortnight"])
def test_bad_rules_are_refused_at_startup(bad: str) -> None:
    with pytest.raises(SettingsError):
        load_settings(environ={"WAYMARK_RATE_LIMITS": bad})


def test_classify() -> None:
    assert classify("POST", "/api/v1/auth/login", False) == "login"
    assert classify("POST", "/api/v1/auth/signup", False) == "signup"
    assert classify("POST", "/api/v1/maps/x/layers/y/import", True) == "upload"
    assert classify("POST", "/api/v1/maps/import-bundle", True) == "upload"
    assert classify("PATCH", "/api/v1/maps/x", True) == "write"
    assert classify("GET", "/api/v1/maps/x", False) == "anon_read"
    assert classify("GET", "/api/v1/maps/x", True) is None
    assert classify("GET", "/healthz", False) is None


def test_forwarded_for_only_from_trusted_proxies() -> None:
    scope = {"client": ("10.0.0.5", 1), "headers": [(b"x-forwarded-for", b"6.6.6.6, 1.2.3.4")]}
    assert client_ip(scope, []) == "10.0.0.5"  # no trusted proxy: the header is ignored
    trusted = parse_networks("10.0.0.0/8")
    assert client_ip(scope, trusted) == "1.2.3.4"  # rightmost untrusted hop, not the spoofable left
    scope["client"] = ("8.8.8.8", 1)
    assert client_ip(scope, trusted) == "8.8.8.8"


def test_local_limiter_counts_and_resets() -> None:
    limiter = RateLimiter({"login": Rule("login", 2, 60)})

    async def run() -> list:
        return [await limiter.hit("login", "ip:1", now=120.0 + i) for i in range(3)] + \
            [await limiter.hit("login", "ip:1", now=181.0), await limiter.hit("login", "ip:2", now=122.0)]

    a, b, c, next_window, other = asyncio.run(run())
    assert a.allowed and b.allowed and not c.allowed
    assert c.remaining < 0 and c.reset == 58
    assert next_window.allowed and other.allowed
    headers = dict(c.headers())
    assert headers[b"retry-after"] == b"58" and headers[b"ratelimit-limit"] == b"2"


def test_fails_open_when_redis_is_down(caplog: pytest.LogCaptureFixture) -> None:
    from tests.servers import free_port

    hub = RedisHub(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    limiter = RateLimiter({"login": Rule("login", 1, 60)}, RedisCounters(hub))
    before = RATELIMIT_FAILOPEN.labels(route_class="login")._value.get()
    with caplog.at_level(logging.WARNING, logger="waymark.ratelimit"):
        decisions = asyncio.run(_hits(limiter, 3))
    assert all(d.allowed and d.failed_open for d in decisions)
    assert RATELIMIT_FAILOPEN.labels(route_class="login")._value.get() - before == 3
    assert "failing open" in caplog.text


async def _hits(limiter: RateLimiter, n: int) -> list:
    return [await limiter.hit("login", "ip:x") for _ in range(n)]


def test_middleware_429_with_headers(tmp_path, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(tmp_path, sqlite_url, rate_limits="login=2/minute,anon_read=3/minute"))
    with TestClient(app) as client:
        for _ in range(2):
            r = client.post("/api/v1/auth/login", json={"email": "a@b.c", "password": "x" * 12})
            assert r.status_code == 401
            assert r.headers["RateLimit-Limit"] == "2"
        r = client.post("/api/v1/auth/login", json={"email": "a@b.c", "password": "x" * 12})
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1 and r.headers["RateLimit-Remaining"] == "0"
        assert r.json()["error"]["code"] == "rate_limited"
        assert set(r.json()["error"]) == {"code", "message", "details"}
        codes = [client.get("/api/v1/maps").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert client.get("/healthz").status_code == 200  # never limited
    app.state.services.db.dispose()
