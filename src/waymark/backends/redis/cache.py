"""Two-level cache of immutable, versioned response bytes: per-process LRU, then Redis
(the `Cache` protocol; `MemoryCache` is the LRU level alone).

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

from waymark.backends.memory import BytesLRU, MemoryCache
from waymark.backends.redis.hub import RedisHub, RedisUnavailable
from waymark.observability.metrics import CACHE_REQUESTS

_REDIS_HIT = CACHE_REQUESTS.labels(level="redis", result="hit")
_REDIS_MISS = CACHE_REQUESTS.labels(level="redis", result="miss")
MAX_REDIS_VALUE = 8 * 1024 * 1024


class TwoLevelCache(MemoryCache):
    def __init__(self, lru: BytesLRU, hub: RedisHub, *, ttl: int = 3600,
                 enabled: bool = True) -> None:
        super().__init__(lru, enabled=enabled)
        self.hub = hub
        self.ttl = ttl

    async def get(self, key: str) -> bytes | None:
        if not self.enabled:
            return None
        value = self.lru.get(key)
        if value is not None:
            return value
        try:
            value = await self.hub.run(lambda r: r.get(self.hub.key("c", key)))
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
        if len(value) > MAX_REDIS_VALUE:
            return
        with contextlib.suppress(RedisUnavailable):
            await self.hub.run(lambda r: r.set(self.hub.key("c", key), value, ex=self.ttl))

    def status(self) -> dict[str, Any]:
        return {**super().status(), "shared": True}
