"""Per-map channels on Redis (the `Channels` protocol, backends/protocols.py): numbered
edit events, a bounded replay window, and fan-out to this process's subscribers.

One Lua call per event does INCR (the per-map sequence), XADD with an exact MAXLEN (the
replay window, stream ids are ``<seq>-1``) and PUBLISH. Every process holds one pub/sub
connection, subscribed to the maps its websocket clients watch.

Edit events carry ``seq``; ephemeral messages (presence, live positions, status) do not.
While Redis is degraded an edit is still delivered to this process's own clients (with
``seq: null``); when Redis is back that process publishes a numbered ``map.reload`` event for
those maps, so every client (wherever it is connected, even if it reconnects later) learns
in order that it missed something and refetches. When this process's pub/sub connection
comes back (Redis restarted, Sentinel fail-over), each map's subscribers are caught up from
the stream since the last number they were sent; only when that is impossible (the window
moved on, or the counter was reset because Redis lost its data) are they told to resync.
After a fail-over the counter jumps (FAILOVER_GAP): numbers the old primary gave out and the
new one never received are not reused, and clients see the gap and refetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from waymark import jsonutil
from waymark.backends.fanout import Fanout, Subscriber, edit_message, replay_window
from waymark.backends.redis.hub import RedisHub, RedisUnavailable

log = logging.getLogger("waymark.realtime")

# After a fail-over the promoted replica may lack the last numbers the old primary handed
# out (replication is asynchronous): reusing them would make clients that saw the old
# events drop new ones as "already applied". So the counter remembers which primary (its
# replication id) last advanced it; on a new one it jumps by this much, clients see a gap
# and refetch (ws.py), and numbers are never reused.
FAILOVER_GAP = 100_000

# KEYS: seq, stream, channel, epoch; ARGV: event JSON (an object), maxlen, ttl, gap
_PUBLISH_LUA = """
local replid = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or ''
local epoch = redis.call('GET', KEYS[4])
local seq
if epoch and epoch ~= replid then
  seq = redis.call('INCRBY', KEYS[1], ARGV[4])
else
  seq = redis.call('INCR', KEYS[1])
end
if epoch ~= replid then redis.call('SET', KEYS[4], replid) end
redis.call('EXPIRE', KEYS[4], ARGV[3])
local msg = '{"type":"edit","seq":' .. seq .. ',' .. string.sub(ARGV[1], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], seq .. '-1', 'm', msg)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', KEYS[3], msg)
return seq
"""



class RedisChannels:
    """Redis backend: shared sequence, stream window and pub/sub across all processes."""

    backend = "redis"

    def __init__(self, hub: RedisHub, window: int = 1000, ttl: int = 86400) -> None:
        self.hub = hub
        self.window = window
        self.ttl = ttl
        self.fanout = Fanout()
        self._script = hub.client.register_script(_PUBLISH_LUA)
        self._pubsub: Any = None
        self._channels: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._retry = asyncio.Event()
        self._broken = False
        self._sub_lock = asyncio.Lock()
        self._missed_maps: set[str] = set()  # maps whose events could not be published
        hub.on_recover(self._announce_missed)
        hub.on_recover(self._retry_now)

    async def _announce_missed(self) -> None:
        """Events of these maps were delivered only locally during the outage: publish a
        numbered ``map.reload`` so every client of those maps, on every process, refetches
        (it is in the replay window too, for clients that reconnect later)."""
        maps, self._missed_maps = self._missed_maps, set()
        if maps:
            await self.publish_many([(map_id, {"op": "map.reload", "by": None,
                                               "reason": "redis_recovered"})
                                     for map_id in sorted(maps)])

    async def _retry_now(self) -> None:
        """Redis answers again: let a waiting pub/sub reader reconnect at once."""
        self._retry.set()

    @property
    def degraded(self) -> bool:
        return self.hub.degraded or self._broken

    def _chan(self, map_id: str) -> str:
        return self.hub.key("rt", map_id)

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._retry = asyncio.Event()
        self._sub_lock = asyncio.Lock()
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                await self._pubsub.aclose()

    # ---- publishing -----------------------------------------------------------------
    async def publish_many(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        async def run(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for map_id, event in items:
                await self._script(keys=[self.hub.key("seq", map_id), self.hub.key("log", map_id),
                                         self._chan(map_id), self.hub.key("seqepoch", map_id)],
                                   args=[jsonutil.dumps(event), self.window, self.ttl,
                                         FAILOVER_GAP], client=pipe)
            return await pipe.execute()

        try:
            await self.hub.run(run)
        except RedisUnavailable:
            for map_id, event in items:  # at least this process's clients see it
                self._missed_maps.add(map_id)
                self.fanout.send(map_id, None, edit_message(None, event))

    async def broadcast(self, map_id: str, message: dict[str, Any]) -> None:
        text = jsonutil.dumps(message)
        try:
            await self.hub.run(lambda r: r.publish(self._chan(map_id), text))
        except RedisUnavailable:
            self.fanout.send(map_id, None, text)

    async def history(self, map_id: str, since: int) -> tuple[list[tuple[int, str]] | None, int]:
        async def run(client: Any) -> tuple[Any, Any]:
            pipe = client.pipeline(transaction=False)
            pipe.get(self.hub.key("seq", map_id))
            pipe.xrange(self.hub.key("log", map_id), min=f"{since + 1}-0", max="+",
                        count=self.window + 1)
            return tuple(await pipe.execute())

        raw_seq, rows = await self.hub.run(run)
        current = int(raw_seq or 0)
        entries = [(int(entry_id.split(b"-")[0]), fields[b"m"].decode()) for entry_id, fields in rows]
        return replay_window(entries, since, current), current

    # ---- subscriptions ----------------------------------------------------------------
    async def subscribe(self, sub: Subscriber) -> None:
        if self.fanout.add(sub):
            self._channels.add(self._chan(sub.map_id))
            await self._sync_subscriptions()

    async def unsubscribe(self, sub: Subscriber) -> None:
        if self.fanout.remove(sub):
            chan = self._chan(sub.map_id)
            self._channels.discard(chan)
            if self._pubsub is not None and not self._broken:
                try:
                    await self._pubsub.unsubscribe(chan)
                except Exception as exc:  # noqa: BLE001 - the reader notices and rebuilds
                    log.debug("unsubscribe failed: %s", exc)

    async def _sync_subscriptions(self) -> None:
        async with self._sub_lock:
            if self._pubsub is None or self._broken:
                self._wake.set()
                return
            try:
                await self._pubsub.subscribe(*self._channels)
            except Exception as exc:  # noqa: BLE001
                log.debug("subscribe failed: %s", exc)
                self._wake.set()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        chan = message["channel"].decode()
        map_id = chan.rsplit(":", 1)[1]
        data = message["data"]
        text = data.decode() if isinstance(data, bytes) else str(data)
        seq = None
        if text.startswith('{"type":"edit","seq":'):
            head = text[21:32].split(",", 1)[0]
            seq = int(head) if head.isdigit() else None
        self.fanout.send(map_id, seq, text)

    async def _read_loop(self) -> None:
        while True:
            try:
                if self._pubsub is None:
                    await self._connect()
                assert self._pubsub is not None
                if not self._pubsub.subscribed:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                    if self._channels and not self._pubsub.subscribed:
                        async with self._sub_lock:
                            await self._pubsub.subscribe(*self._channels)
                    continue
                message = await self._pubsub.get_message(ignore_subscribe_messages=True,
                                                          timeout=1.0)
                if message:
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: rebuild the connection
                if not self._broken:
                    self._broken = True
                    self.hub.mark_failed(exc)
                    self.fanout.send_all('{"type":"status","state":"degraded"}')
                pubsub, self._pubsub = self._pubsub, None
                if pubsub is not None:
                    with contextlib.suppress(Exception):  # closing a broken connection
                        await pubsub.aclose()
                self._retry.clear()
                # retry soon, or at once when another Redis call sees it answer again
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._retry.wait(), timeout=0.5)

    async def _connect(self) -> None:
        """A new pub/sub connection (to the current primary, with Sentinel), subscribed to
        every map watched here; after a break, catch the subscribers up."""
        pubsub = self.hub.client.pubsub()
        try:
            async with self._sub_lock:
                if self._channels:
                    await pubsub.subscribe(*self._channels)
                else:
                    await pubsub.ping()
        except BaseException:
            with contextlib.suppress(Exception):  # closing a broken connection
                await pubsub.aclose()
            raise
        self._pubsub = pubsub
        if self._broken:
            self._broken = False
            await self.hub.mark_ok()
            await self.recovered()

    async def recovered(self) -> None:
        """The pub/sub connection is back. Events published while it was down are in each
        map's stream: send them (the writer drops what a client already has), before any
        message of the new connection is read. Without them: resync."""
        self.fanout.send_all('{"type":"status","state":"ok"}')
        for map_id in self.fanout.maps():
            known = [s.last_seq for s in self.fanout.members(map_id) if s.last_seq is not None]
            if not known:
                continue  # these clients were told to resync already: they accept what comes
            try:
                missed, _ = await self.history(map_id, min(known))
            except RedisUnavailable:
                missed = None
            if missed is None:
                self.fanout.send(map_id, None, '{"type":"resync","reason":"redis_recovered"}')
                continue
            for seq, text in missed:
                self.fanout.send(map_id, seq, text)
