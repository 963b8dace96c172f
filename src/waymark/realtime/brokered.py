"""Channels and presence shared by the app workers of one `waymark serve` through the
embedded broker (realtime/broker.py): the `Channels`, `Presence` and `Counters` protocols
(backends/protocols.py), for several workers without Redis.

While the broker is unreachable (the serve process is stopping or gone) each worker goes on
alone, as with Redis down: edits reach this process's clients unnumbered, presence lists this
process's viewers; when it is back every client is told to refetch.
"""

from __future__ import annotations

import contextlib
from typing import Any

from waymark import jsonutil
from waymark.backends.fanout import Fanout, Subscriber, edit_message, replay_window
from waymark.backends.memory import LocalPresence, summarize
from waymark.realtime.broker import BrokerClient, BrokerUnavailable


class BrokerChannels:
    backend = "broker"

    def __init__(self, broker: BrokerClient, window: int = 1000) -> None:
        self.broker = broker
        self.window = window
        self.fanout = Fanout()
        broker.on_push(self.fanout.send)
        broker.on_reconnect(self._recovered)

    @property
    def degraded(self) -> bool:
        return self.broker.degraded

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish_many(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        try:
            await self.broker.request("publish", items=[[map_id, jsonutil.dumps(event)]
                                                        for map_id, event in items])
        except BrokerUnavailable:
            for map_id, event in items:  # at least this process's clients see it
                self.fanout.send(map_id, None, edit_message(None, event))

    async def broadcast(self, map_id: str, message: dict[str, Any]) -> None:
        text = jsonutil.dumps(message)
        try:
            await self.broker.request("broadcast", map=map_id, text=text)
        except BrokerUnavailable:
            self.fanout.send(map_id, None, text)

    async def history(self, map_id: str, since: int) -> tuple[list[tuple[int, str]] | None, int]:
        found = await self.broker.request("history", map=map_id, since=min(since, 1 << 53))
        entries = [(seq, text) for seq, text in found["entries"]]
        return replay_window(entries, since, found["current"]), found["current"]

    async def subscribe(self, sub: Subscriber) -> None:
        if self.fanout.add(sub):
            with contextlib.suppress(BrokerUnavailable):  # subscribed again on reconnection
                await self.broker.request("subscribe", maps=[sub.map_id])

    async def unsubscribe(self, sub: Subscriber) -> None:
        if self.fanout.remove(sub):
            with contextlib.suppress(BrokerUnavailable):
                await self.broker.request("unsubscribe", maps=[sub.map_id])

    async def _recovered(self) -> None:
        """The broker is back (possibly a new one, which knows nothing): subscribe again and
        have every client refetch, since what happened meanwhile cannot be replayed."""
        maps = self.fanout.maps()
        try:
            if maps:
                await self.broker.request("subscribe", maps=maps)
        except BrokerUnavailable:
            return  # gone again: the next reconnection does this
        self.fanout.send_all('{"type":"resync","reason":"broker_restarted"}')


class BrokerPresence:
    def __init__(self, broker: BrokerClient, ttl: float = 30.0) -> None:
        self.broker = broker
        self.ttl = ttl
        self.fallback = LocalPresence(ttl)  # this process's viewers, while the broker is away

    async def touch(self, map_id: str, conn_id: str, entry: dict[str, Any]) -> None:
        await self.touch_many([(map_id, conn_id, entry)])

    async def touch_many(self, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        await self.fallback.touch_many(items)
        with contextlib.suppress(BrokerUnavailable):
            await self.broker.request("presence.touch", ttl=self.ttl,
                                      items=[list(item) for item in items])

    async def leave(self, map_id: str, conn_id: str) -> None:
        await self.fallback.leave(map_id, conn_id)
        with contextlib.suppress(BrokerUnavailable):
            await self.broker.request("presence.leave", map=map_id, conn=conn_id)

    async def list(self, map_id: str) -> dict[str, Any]:
        try:
            return summarize(await self.broker.request("presence.list", map=map_id))
        except BrokerUnavailable:
            return await self.fallback.list(map_id)


class BrokerCounters:
    """The rate limiter's shared counters, kept by the broker (BrokerUnavailable when away)."""

    def __init__(self, broker: BrokerClient) -> None:
        self.broker = broker

    async def take(self, key: str, amount: int, ttl: int) -> int:
        return int(await self.broker.request("incr", key=key, amount=amount, ttl=ttl))
