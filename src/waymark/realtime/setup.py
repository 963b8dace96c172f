"""Wiring for everything WAYMARK_REDIS_URL switches: one object the app factory builds.

Without a Redis URL every part uses its embedded backend (in-process channels, presence,
live store and rate-limit counters; the sessions store stays as configured); with several
workers the channels, presence and rate-limit counters go through the embedded broker that
`waymark serve` runs (realtime/broker.py) and sessions through files. With a Redis URL, all
of them use Redis through one RedisHub, and degrade to the embedded path while it is down.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from litestar.middleware import DefineMiddleware

from waymark import jsonutil
from waymark.backends.memory import BytesLRU, LocalChannels, LocalPresence, MemoryCache
from waymark.backends.protocols import Cache, Channels, Counters, Presence, SessionStore
from waymark.backends.redis.cache import TwoLevelCache
from waymark.backends.redis.channels import RedisChannels
from waymark.backends.redis.counters import RedisCounters
from waymark.backends.redis.hub import RedisHub
from waymark.backends.redis.presence import RedisPresence
from waymark.observability.metrics import REDIS_CONFIGURED, REDIS_UP
from waymark.ratelimit.limiter import RateLimiter, RateLimitMiddleware
from waymark.realtime.broker import BrokerClient
from waymark.realtime.brokered import BrokerChannels, BrokerCounters, BrokerPresence
from waymark.realtime.edits import EditBus
from waymark.realtime.live import ROUTES as LIVE_ROUTES
from waymark.realtime.live import HistoryWriter, LiveStore
from waymark.realtime.ws import map_socket

if TYPE_CHECKING:
    from waymark.db.engine import Database
    from waymark.settings import Settings

log = logging.getLogger("waymark.realtime")


class Realtime:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.hub = RedisHub(settings.redis_url) if settings.redis_url else None
        hub = self.hub
        socket = settings.broker_socket  # several workers of one `serve`, no Redis
        self.broker = BrokerClient(socket) if socket is not None else None
        self.channels: Channels
        self.presence: Presence
        if hub is not None:
            self.channels = RedisChannels(hub, settings.realtime_window)
            self.presence = RedisPresence(hub, settings.presence_ttl_seconds)
            hub.on_degrade(lambda: REDIS_UP.set(0))
            hub.on_recover(self._recovered)
        elif self.broker is not None:
            self.channels = BrokerChannels(self.broker, settings.realtime_window)
            self.presence = BrokerPresence(self.broker, settings.presence_ttl_seconds)
        else:
            self.channels = LocalChannels(settings.realtime_window)
            self.presence = LocalPresence(settings.presence_ttl_seconds)
        self.edits = EditBus(self.channels)
        self.live = LiveStore(hub, settings.live_ttl_seconds, settings.live_track_points)
        self.history = HistoryWriter(db, settings.live_flush_seconds)
        shared: Counters | None = RedisCounters(hub) if hub is not None else \
            BrokerCounters(self.broker) if self.broker is not None else None
        self.limiter = RateLimiter(settings.rate_limit_rules, shared)
        lru = BytesLRU(settings.snapshot_cache_items)
        self.cache: Cache = MemoryCache(lru, enabled=settings.api_cache) if hub is None else \
            TwoLevelCache(lru, hub, ttl=settings.cache_ttl_seconds, enabled=settings.api_cache)
        self.connections: dict[str, Any] = {}
        self.routes = [map_socket, *LIVE_ROUTES]
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_presence: dict[str, str] = {}

    # ---- app wiring -------------------------------------------------------------------------
    def stores(self) -> dict[str, SessionStore]:
        """Stores that replace the embedded ones when Redis is configured."""
        if self.hub is None:
            return {}
        from waymark.backends.redis.sessions import ResilientStore

        return {"sessions": ResilientStore(self.hub)}

    def middleware(self) -> DefineMiddleware:
        return DefineMiddleware(RateLimitMiddleware, limiter=self.limiter,
                                trusted=self.settings.trusted_networks)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop.is_running() and not self._loop.is_closed():
            return  # started already (several test clients on one app)
        self._loop = loop
        REDIS_CONFIGURED.set(1 if self.hub else 0)
        if self.hub is not None:
            REDIS_UP.set(1)
            self.hub.start()
        if self.broker is not None:
            await self.broker.start()
        await self.channels.start()
        await self.edits.start()
        self.history.start()
        self._tasks = [loop.create_task(self._heartbeat())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.edits.close()
        await self.history.close()
        await self.channels.close()
        if self.hub is not None:
            await self.hub.close()
        if self.broker is not None:
            await self.broker.close()
        self._loop = None

    async def _recovered(self) -> None:
        REDIS_UP.set(1)

    # ---- presence -----------------------------------------------------------------------------
    async def presence_changed(self, map_id: str, conn_id: str, entry: dict[str, Any]) -> None:
        await self.presence.touch(map_id, conn_id, entry)
        await self.channels.broadcast(map_id, await self.presence.list(map_id))

    async def _heartbeat(self) -> None:
        """Refresh this process's presence entries; push lists that changed (expiry)."""
        interval = max(1.0, self.settings.presence_ttl_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                conns = list(self.connections.values())
                await self.presence.touch_many([(c.map_id, c.id, c.entry()) for c in conns])
                for map_id in {c.map_id for c in conns}:
                    summary = await self.presence.list(map_id)
                    text = jsonutil.dumps(summary)
                    if self._last_presence.get(map_id) != text:
                        self._last_presence[map_id] = text
                        self.channels.fanout.send(map_id, None, text)
            except Exception as exc:  # noqa: BLE001 - keep beating
                log.debug("presence heartbeat failed: %s", exc)

    # ---- health -------------------------------------------------------------------------------
    async def check(self) -> dict[str, Any]:
        """For /readyz: ok, or degraded (never "down": the app serves from fallbacks)."""
        if self.broker is not None:
            if self.broker.degraded:
                return {"ok": False, "degraded": True, "backend": "embedded-shared",
                        "error": "the embedded broker of this server does not answer",
                        "impact": "real time, presence and rate limits limited to this "
                                  "worker process until it is back"}
            return {"ok": True, "backend": "embedded-shared"}
        if self.hub is None:
            return {"ok": True, "backend": "embedded"}
        try:
            await asyncio.wait_for(self.hub.client.ping(), timeout=0.5)
            await self.hub.mark_ok()
            if self.channels.degraded:  # commands work, the pub/sub link is still coming back
                return {"ok": False, "degraded": True, "backend": "redis",
                        "error": "real-time subscription reconnecting",
                        "impact": "edits from other processes reach this one's websocket "
                                  "clients once it is back (they are caught up then)"}
            return {"ok": True, "backend": "redis"}
        except Exception as exc:  # noqa: BLE001
            if not self.hub.degraded:
                self.hub.mark_failed(exc)
            return {"ok": False, "degraded": True, "backend": "redis",
                    "error": f"{type(exc).__name__}: {exc}"[:200],
                    "impact": "serving from the database; rate limits fail open; sessions and "
                              "real time limited to this process"}
