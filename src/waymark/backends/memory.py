"""The in-process backends (no WAYMARK_REDIS_URL): exact and complete for one process.

- `BytesLRU` and `MemoryCache`: immutable, versioned response bytes. Safe to cache without
  invalidation: a key names an immutable value (a snapshot's SHA-256, a map version), so it
  never changes. Access control is checked before the cache is consulted, never by it.
- `LocalChannels`: sequence counter, replay window (a deque) and fan-out in this process.
- `LocalPresence`: who is on a map, entries with deadlines in a dict.
- `MemoryCounters`: expiring counters (the rate limiter's shared counters, as the embedded
  broker of `waymark serve` keeps them for its workers).
The sessions store without Redis is Litestar's MemoryStore or FileStore (app.py).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Any

from waymark import jsonutil
from waymark.backends.fanout import Fanout, Subscriber, edit_message, replay_window
from waymark.observability.metrics import process_cache


class BytesLRU:
    def __init__(self, max_items: int = 256, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
            else:
                self._data.move_to_end(key)
                self.hits += 1
        process_cache(value is not None)
        return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_bytes // 4:
            return  # one huge layer must not evict everything else
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return
            self._data[key] = value
            self._size += len(value)
            while len(self._data) > self.max_items or self._size > self.max_bytes:
                _, old = self._data.popitem(last=False)
                self._size -= len(old)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0

    def __len__(self) -> int:
        return len(self._data)


class MemoryCache:
    """Versioned response bytes in this process's LRU; every lookup misses when disabled
    (WAYMARK_CACHE=false)."""

    def __init__(self, lru: BytesLRU, *, enabled: bool = True) -> None:
        self.lru = lru
        self.enabled = enabled

    async def get(self, key: str) -> bytes | None:
        return self.get_local(key)

    async def put(self, key: str, value: bytes) -> None:
        self.put_local(key, value)

    # Sync variants for threaded handlers: the LRU only (no Redis from worker threads).
    def get_local(self, key: str) -> bytes | None:
        return self.lru.get(key) if self.enabled else None

    def put_local(self, key: str, value: bytes) -> None:
        if self.enabled:
            self.lru.put(key, value)

    def status(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "items": len(self.lru), "hits": self.lru.hits,
                "misses": self.lru.misses, "shared": False}


class LocalChannels:
    """In-process backend: exact and complete for one process."""

    backend = "memory"

    def __init__(self, window: int = 1000) -> None:
        self.window = window
        self.fanout = Fanout()
        self._seq: dict[str, int] = {}
        self._log: dict[str, deque[tuple[int, str]]] = {}
        self._lock = threading.Lock()
        self.degraded = False

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish_many(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        for map_id, event in items:
            with self._lock:
                seq = self._seq.get(map_id, 0) + 1
                self._seq[map_id] = seq
                text = edit_message(seq, event)
                self._log.setdefault(map_id, deque(maxlen=self.window)).append((seq, text))
            self.fanout.send(map_id, seq, text)

    async def broadcast(self, map_id: str, message: dict[str, Any]) -> None:
        self.fanout.send(map_id, None, jsonutil.dumps(message))

    async def history(self, map_id: str, since: int) -> tuple[list[tuple[int, str]] | None, int]:
        """Events after `since`, or None when some of them left the window."""
        with self._lock:
            current = self._seq.get(map_id, 0)
            entries = list(self._log.get(map_id, ()))
        return replay_window(entries, since, current), current

    async def subscribe(self, sub: Subscriber) -> None:
        self.fanout.add(sub)

    async def unsubscribe(self, sub: Subscriber) -> None:
        self.fanout.remove(sub)


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


class MemoryCounters:
    """Counters that start again from zero ``ttl`` seconds after their first increment."""

    def __init__(self) -> None:
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (value, expires at)
        self._lock = threading.Lock()

    def incr(self, key: str, amount: int, ttl: float) -> int:
        now = time.time()
        with self._lock:
            value, expires = self._counters.get(key, (0, 0.0))
            if expires <= now:
                value, expires = 0, now + ttl
            value += amount
            self._counters[key] = (value, expires)
        return value

    async def take(self, key: str, amount: int, ttl: int) -> int:
        return self.incr(key, amount, ttl)

    def sweep(self) -> None:
        """Forget expired counters."""
        now = time.time()
        with self._lock:
            for key in [k for k, (_, expires) in self._counters.items() if expires <= now]:
                del self._counters[key]

    def __len__(self) -> int:
        return len(self._counters)
