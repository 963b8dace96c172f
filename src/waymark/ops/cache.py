"""Two-level cache of immutable, versioned response bytes: per-process LRU, then Redis.

Every key names an immutable value: a snapshot by its SHA-256, map metadata by the map's
version. A new version is a new key, so nothing is ever invalidated and an edit is visible
on the very next read (the version comes from the database on every request, and
authorization is checked before the cache is consulted; entries are only written for maps
anyone may read, see api/io_routes.py and api/routes.py).

Redis entries expire (``ttl``) so old versions do not pile up. When Redis is degraded the
cache silently becomes LRU-only; when disabled (WAYMARK_CACHE=false) every lookup misses.
"""

from __future__ import annotations

import contextlib
from typing import Any

from waymark.observability.metrics import CACHE_REQUESTS
from waymark.ops.lru import BytesLRU
from waymark.ops.redis import RedisHub, RedisUnavailable

_REDIS_HIT = CACHE_REQUESTS.labels(level="redis", result="hit")
_REDIS_MISS = CACHE_REQUESTS.labels(level="redis", result="miss")
MAX_REDIS_VALUE = 8 * 1024 * 1024


class TwoLevelCache:
    def __init__(self, lru: BytesLRU, hub: RedisHub | None = None, *, ttl: int = 3600,
                 enabled: bool = True) -> None:
        self.lru = lru
        self.hub = hub
        self.ttl = ttl
        self.enabled = enabled

    async def get(self, key: str) -> bytes | None:
        if not self.enabled:
            return None
        value = self.lru.get(key)
        if value is not None or self.hub is None:
            return value
        try:
            value = await self.hub.run(lambda r: r.get(self.hub.key("c", key)))  # type: ignore[union-attr]
        except RedisUnavailable:
            return None
        (_REDIS_HIT if value is not None else _REDIS_MISS).inc()
        if value is not None:
            self.lru.put(key, value)
        return value

    async def put(self, key: str, value: bytes) -> None:
        if not self.enabled:
            return
        self.lru.put(key, value)
        if self.hub is None or len(value) > MAX_REDIS_VALUE:
            return
        with contextlib.suppress(RedisUnavailable):
            await self.hub.run(lambda r: r.set(self.hub.key("c", key), value, ex=self.ttl))  # type: ignore[union-attr]

    # Sync wrappers for threaded handlers: the LRU only (no Redis from worker threads).
    def get_local(self, key: str) -> bytes | None:
        return self.lru.get(key) if self.enabled else None

    def put_local(self, key: str, value: bytes) -> None:
        if self.enabled:
            self.lru.put(key, value)

    def status(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "items": len(self.lru), "hits": self.lru.hits,
                "misses": self.lru.misses, "shared": self.hub is not None}
