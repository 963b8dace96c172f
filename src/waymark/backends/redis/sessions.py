"""The "sessions" store with WAYMARK_REDIS_URL (the `SessionStore` protocol): Redis,
degrading to this process's memory.

See docs/decisions/0007-redis-degradation.md. While Redis is unavailable:
- reads and writes go to a per-process MemoryStore, so a single process keeps working. Every
  session this process read or wrote in the last LOCAL_COPY_SECONDS is in it, so users active
  on this process stay logged in through a short outage; others look logged out until Redis
  is back (never a 500);
- deletions (log-out, log-in rotation) are remembered and replayed on Redis when it returns,
  so a session ended during the outage does not come back to life.
"""

from __future__ import annotations

from datetime import timedelta

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore

from waymark.backends.redis.hub import RedisHub, RedisUnavailable

LOCAL_COPY_SECONDS = 300


class ResilientStore(Store):
    def __init__(self, hub: RedisHub, namespace: str = "sessions") -> None:
        self.hub = hub
        self.redis = RedisStore(hub.client, namespace=hub.key(namespace),
                                handle_client_shutdown=False)
        self.outage = MemoryStore()  # sessions written while Redis was down (this process)
        self.copies = MemoryStore()  # recent Redis values, read only while Redis is down
        self._pending_deletes: set[str] = set()
        hub.on_recover(self._replay)

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        try:
            await self.hub.run(lambda r: self.redis.set(key, value, expires_in))
        except RedisUnavailable:
            await self.outage.set(key, value, expires_in)
            return
        self._pending_deletes.discard(key)
        await self.copies.set(key, value, _local_ttl(expires_in))

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        try:
            value = await self.hub.run(lambda r: self.redis.get(key, renew_for))
        except RedisUnavailable:
            if key in self._pending_deletes:
                return None
            return await self.outage.get(key) or await self.copies.get(key)
        if value is None:  # perhaps made during an outage, on this process
            return await self.outage.get(key, renew_for)
        await self.copies.set(key, value, LOCAL_COPY_SECONDS)
        return value

    async def delete(self, key: str) -> None:
        await self.outage.delete(key)
        await self.copies.delete(key)
        try:
            await self.hub.run(lambda r: self.redis.delete(key))
        except RedisUnavailable:
            self._pending_deletes.add(key)

    async def delete_all(self) -> None:
        await self.outage.delete_all()
        await self.copies.delete_all()
        await self.hub.run(lambda r: self.redis.delete_all())

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        try:
            return await self.hub.run(lambda r: self.redis.expires_in(key))
        except RedisUnavailable:
            return await self.outage.expires_in(key)

    async def _replay(self) -> None:
        pending, self._pending_deletes = self._pending_deletes, set()
        for key in pending:
            await self.redis.delete(key)


def _local_ttl(expires_in: int | timedelta | None) -> int:
    if expires_in is None:
        return LOCAL_COPY_SECONDS
    seconds = expires_in.total_seconds() if isinstance(expires_in, timedelta) else expires_in
    return int(min(seconds, LOCAL_COPY_SECONDS))
