"""Anonymous reads of published layers, answered before the framework when the bytes are
already in this process's cache.

Embeds and shared links make `GET …/snapshots/{sha}` and `GET …/data` without a session or
token the hottest requests. Decision 0009 took the database and the threads off their path;
what was left was the framework (routing, session, dependency injection, response objects):
about 150 µs of a 220 µs request. This plain ASGI layer sits inside the request observer
(metrics, access log), so that still applies, and just outside the security headers, which it
adds to its own answers from the same list (one send wrapper less per read). It answers only when
everything is at hand: no credentials, a map anyone may see (decided by the database on
every request, via `Database.peek`, and by `access.anyone_may_view`: `resolve_snapshot` and
`resolve_data` are the one published resolver, used here and by the routes), the bytes in the per-process cache; being anonymous
reads of such maps, its answers are open to any origin (`access.OPEN_CORS`). It charges the
request to the `anon_read` rate limit exactly as RateLimitMiddleware would. Anything else
(a miss, a private map, a cookie, PostgreSQL) goes on to the Litestar routes, which fill the
cache, so the two paths serve the same bytes with the same headers (`snapshot_reply`).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from typing import Any

from waymark.backends.memory import BytesLRU
from waymark.maps.access import OPEN_CORS, anyone_may_view, is_public
from waymark.ratelimit.limiter import RateLimiter, client_ip, send_limited
from waymark.security.headers import SecurityHeadersMiddleware
from waymark.storage.keys import snapshot_key

PRIVATE_IMMUTABLE = "private, max-age=31536000, immutable"


def public_cache_control(shared_seconds: int) -> str:
    """Cache-Control of a public map's snapshot (decision 0016): content-addressed, so any
    cache may keep it, but a shared cache (CDN, proxy) must revalidate it after
    ``shared_seconds``, and the answer then is 404 if the map is no longer public. So a map
    made private stops being served by shared caches within ``shared_seconds`` plus the
    stale-while-revalidate window; revalidating an unchanged snapshot is a cheap 304."""
    stale = min(60, shared_seconds)
    return (f"public, max-age={shared_seconds}, s-maxage={shared_seconds}, "
            f"stale-while-revalidate={stale}")
# One indexed lookup each; only maps anyone may see qualify (access.anyone_may_view, not deleted).
ANON_SNAPSHOT_SQL = (
    "SELECT m.visibility, s.object_key FROM maps m"
    " JOIN layers l ON l.map_id = m.id AND l.public_id = ? AND l.staging = 0"
    " JOIN snapshots s ON s.layer_id = l.id AND s.sha256 = ?"
    " WHERE m.public_id = ? AND m.deleted_at IS NULL LIMIT 1")
ANON_DATA_SQL = (
    "SELECT m.visibility, CASE WHEN l.snapshot_version = l.version THEN l.snapshot_sha END"
    " FROM maps m JOIN layers l ON l.map_id = m.id AND l.public_id = ? AND l.staging = 0"
    " WHERE m.public_id = ? AND m.deleted_at IS NULL LIMIT 1")

_PATH = re.compile(r"^/api/v1/maps/([^/]+)/layers/([^/]+)/(?:snapshots/([0-9a-f]{64})(?:\.geojson)?|data)$")
# The route templates the router would report, so metrics and logs do not tell the paths apart.
SNAPSHOT_ROUTE = "/api/v1/maps/{map_id}/layers/{layer_id}/snapshots/{sha}"
DATA_ROUTE = "/api/v1/maps/{map_id}/layers/{layer_id}/data"


@dataclass(frozen=True, slots=True)
class Published:
    """A published version an anonymous caller may read: where its bytes are, and whether
    they may go to shared caches (public maps only)."""

    sha: str
    object_key: str
    public: bool


def resolve_snapshot(db: Any, map_id: str, layer_id: str, sha: str) -> Published | None:
    """The snapshot `sha` of a layer of a map anyone may see, from one indexed lookup; None
    when that cannot be said here (no such snapshot, a map not open to anonymous callers, a
    deleted map, or a database without `peek`): the routes then decide, with `load_map`."""
    row = db.peek(ANON_SNAPSHOT_SQL, (layer_id, sha, map_id))
    if row is None or row is NotImplemented or not anyone_may_view(row[0]):
        return None
    return Published(sha, row[1], is_public(row[0]))


def resolve_data(db: Any, map_id: str, layer_id: str) -> Published | None:
    """The current published version of a layer of a map anyone may see; None as for
    `resolve_snapshot`, or when the current version is not published yet."""
    row = db.peek(ANON_DATA_SQL, (layer_id, map_id))
    if row is None or row is NotImplemented or not anyone_may_view(row[0]) or not row[1]:
        return None
    return Published(row[1], snapshot_key(row[1]), is_public(row[0]))


def snapshot_reply(gz: bytes, sha: str, cache_control: str, *, if_none_match: str,
                   accept_encoding: str, lru: BytesLRU) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for a published snapshot: 304 on a matching ETag, gzip bytes
    as stored when the client takes gzip, else the inflated bytes (inflated once per
    version, then kept in the LRU)."""
    etag = f'"{sha}"'
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if etag in if_none_match:
        return 304, headers, b""
    headers["Content-Type"] = "application/geo+json"
    if "gzip" in accept_encoding:
        headers["Content-Encoding"] = "gzip"
        return 200, headers, gz
    raw = lru.get(sha + ":raw")
    if raw is None:
        raw = gzip.decompress(gz)
        lru.put(sha + ":raw", raw)
    return 200, headers, raw


class PublishedReads:
    """`app` is the security-headers layer over the routes; its headers go on every answer."""

    def __init__(self, app: SecurityHeadersMiddleware, services: Any, limiter: RateLimiter,
                 session_cookie: str) -> None:
        self.app = app
        self.security = app
        self.svc = services
        self.limiter = limiter
        self.cookie = session_cookie.encode() + b"="
        self.trusted = services.settings.trusted_networks
        self.public_cache = public_cache_control(services.settings.shared_cache_seconds)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not self.svc.db.can_peek:
            await self.app(scope, receive, send)
            return
        match = _PATH.match(scope["path"])
        try:
            reply = self._reply(scope, match) if match else None
        except Exception:  # noqa: BLE001 - the routes answer it, with the one error format
            reply = None
        if reply is None:
            await self.app(scope, receive, send)
            return
        scope["path_template"], status, headers, body = reply
        decision = await self.limiter.hit("anon_read", f"ip:{client_ip(scope, self.trusted)}")
        if decision is not None and not decision.allowed:
            await send_limited(self.security.secure(scope["path"], send), decision)
            return
        out = [(k.lower().encode(), v.encode()) for k, v in {**headers, **OPEN_CORS}.items()]
        out.append((b"content-length", str(len(body)).encode()))
        out += self.security.headers_for(scope["path"])
        if decision is not None:
            out += decision.headers()
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})

    def _reply(self, scope: Any, match: re.Match[str]) -> tuple[str, int, dict[str, str], bytes] | None:
        """(route, status, headers, body) when this request can be answered here, else None."""
        if_none_match = accept_encoding = ""
        for name, value in scope["headers"]:
            if name == b"authorization" or (name == b"cookie" and self.cookie in value):
                return None  # someone in particular: the routes decide what they may see
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
        map_id, layer_id, sha = match.groups()
        cache = self.svc.cache
        if sha:
            found = resolve_snapshot(self.svc.db, map_id, layer_id, sha)
            if found is None:
                return None
            route = SNAPSHOT_ROUTE
            cache_control = self.public_cache if found.public else PRIVATE_IMMUTABLE
        else:
            found = resolve_data(self.svc.db, map_id, layer_id)
            if found is None:
                return None
            route, sha, cache_control = DATA_ROUTE, found.sha, "private, no-cache"
        gz = cache.get_local(sha)
        if gz is None:
            return None
        return route, *snapshot_reply(gz, sha, cache_control, if_none_match=if_none_match,
                                      accept_encoding=accept_encoding, lru=cache.lru)
