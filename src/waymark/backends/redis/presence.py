"""Who is on a map right now: entries that expire on their own unless refreshed.

Each websocket connection is one entry (connection id -> who, role, viewing|editing), with a
deadline ``ttl`` seconds ahead, refreshed by a heartbeat. A crashed process simply stops
refreshing, so its entries disappear after ``ttl``. Redis keeps a sorted set of deadlines and
a hash of entries per map; the embedded backend keeps the same in a dict.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from waymark import jsonutil
from waymark.backends.memory import LocalPresence, summarize
from waymark.backends.redis.hub import RedisHub, RedisUnavailable

# KEYS: zset, hash; ARGV: now -> list of entry JSON (expired entries removed first)
_LIST_LUA = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
  redis.call('HDEL', KEYS[2], unpack(gone))
end
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
"""


class RedisPresence:
    def __init__(self, hub: RedisHub, ttl: float = 30.0, fallback: LocalPresence | None = None) -> None:
        self.hub = hub
        self.ttl = ttl
        self.fallback = fallback or LocalPresence(ttl)
        self._list = hub.client.register_script(_LIST_LUA)

    def _keys(self, map_id: str) -> tuple[str, str]:
        return self.hub.key("pz", map_id), self.hub.key("ph", map_id)

    async def touch(self, map_id: str, conn_id: str, entry: dict[str, Any]) -> None:
        await self.touch_many([(map_id, conn_id, entry)])

    async def touch_many(self, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        await self.fallback.touch_many(items)
        deadline = time.time() + self.ttl

        async def run(client: Any) -> Any:
            pipe = client.pipeline(transaction=False)
            for map_id, conn_id, entry in items:
                zkey, hkey = self._keys(map_id)
                pipe.zadd(zkey, {conn_id: deadline})
                pipe.hset(hkey, conn_id, jsonutil.dumps(entry))
                pipe.expire(zkey, int(self.ttl * 4))
                pipe.expire(hkey, int(self.ttl * 4))
            return await pipe.execute()

        with contextlib.suppress(RedisUnavailable):
            await self.hub.run(run)

    async def leave(self, map_id: str, conn_id: str) -> None:
        await self.fallback.leave(map_id, conn_id)
        zkey, hkey = self._keys(map_id)

        async def run(client: Any) -> Any:
            pipe = client.pipeline(transaction=False)
            pipe.zrem(zkey, conn_id)
            pipe.hdel(hkey, conn_id)
            return await pipe.execute()

        with contextlib.suppress(RedisUnavailable):
            await self.hub.run(run)

    async def list(self, map_id: str) -> dict[str, Any]:
        try:
            raw = await self.hub.run(lambda r: self._list(keys=list(self._keys(map_id)),
                                                          args=[time.time()], client=r))
        except RedisUnavailable:
            return await self.fallback.list(map_id)  # this process's viewers only
        return summarize([jsonutil.loads(v) for v in raw if v])
