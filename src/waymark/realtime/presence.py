"""Who is on a map right now: entries that expire on their own unless refreshed.

Each websocket connection is one entry (connection id -> who, role, viewing|editing), with a
deadline ``ttl`` seconds ahead, refreshed by a heartbeat. A crashed process simply stops
refreshing, so its entries disappear after ``ttl``. Redis keeps a sorted set of deadlines and
a hash of entries per map; the embedded backend keeps the same in a dict.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from waymark import jsonutil
from waymark.ops.redis import RedisHub, RedisUnavailable

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


def summarize(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One row per signed-in user (editing wins over viewing) plus a count of anonymous viewers."""
    users: dict[int, dict[str, Any]] = {}
    anonymous = 0
    for e in entries:
        uid = e.get("user_id")
        if uid is None:
            anonymous += 1
            continue
        row = users.get(uid)
        if row is None or (e.get("state") == "editing" and row["state"] != "editing"):
            users[uid] = {"id": uid, "name": e.get("name") or "", "role": e.get("role"),
                          "state": e.get("state", "viewing")}
    return {"type": "presence", "users": sorted(users.values(), key=lambda u: u["name"]),
            "anonymous": anonymous}


class LocalPresence:
    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._data: dict[str, dict[str, tuple[float, dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    async def touch(self, map_id: str, conn_id: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self._data.setdefault(map_id, {})[conn_id] = (time.time() + self.ttl, entry)

    async def touch_many(self, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        for map_id, conn_id, entry in items:
            await self.touch(map_id, conn_id, entry)

    async def leave(self, map_id: str, conn_id: str) -> None:
        with self._lock:
            self._data.get(map_id, {}).pop(conn_id, None)

    async def list(self, map_id: str) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            entries = self._data.get(map_id, {})
            for cid in [c for c, (deadline, _) in entries.items() if deadline <= now]:
                del entries[cid]
            return summarize([e for _, e in entries.values()])


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
