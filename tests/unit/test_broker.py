"""The embedded broker (realtime/broker.py) with its backends (realtime/brokered.py and the
rate limiter): a real broker on a Unix socket, two clients standing for two workers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from waymark.backends.fanout import Subscriber
from waymark.ratelimit.limiter import RateLimiter, parse_rules
from waymark.realtime.broker import Broker, BrokerClient, BrokerUnavailable
from waymark.realtime.brokered import BrokerChannels, BrokerCounters, BrokerPresence


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    return tmp_path / "broker.sock"


@pytest.fixture
def broker(socket_path: Path) -> Iterator[Broker]:
    b = Broker(socket_path, window=3)
    b.start()
    yield b
    b.stop()


async def _client(path: Path) -> BrokerClient:
    client = BrokerClient(path)
    await client.start()
    assert not client.degraded
    return client


async def _next(sub: Subscriber) -> tuple[int | None, dict[str, Any]]:
    seq, text = await asyncio.wait_for(sub.queue.get(), 30)
    return seq, json.loads(text)


def test_socket_is_private_to_this_user(broker: Broker, socket_path: Path) -> None:
    assert socket_path.stat().st_mode & 0o777 == 0o600


def test_edits_are_numbered_once_and_reach_subscribers_of_every_worker(broker: Broker,
                                                                     socket_path: Path) -> None:
    async def run() -> None:
        a, b = await _client(socket_path), await _client(socket_path)
        chan_a, chan_b = BrokerChannels(a, 3), BrokerChannels(b, 3)
        on_a, on_b, elsewhere = Subscriber("m1"), Subscriber("m1"), Subscriber("m2")
        await chan_a.subscribe(on_a)
        await chan_b.subscribe(on_b)
        await chan_b.subscribe(elsewhere)
        await chan_a.publish_many([("m1", {"op": "feature.create", "n": 1})])
        await chan_b.publish_many([("m1", {"op": "feature.create", "n": 2}),
                                   ("m2", {"op": "feature.create", "n": 3})])
        for sub in (on_a, on_b):
            assert [await _next(sub) for _ in range(2)] == [
                (1, {"type": "edit", "seq": 1, "op": "feature.create", "n": 1}),
                (2, {"type": "edit", "seq": 2, "op": "feature.create", "n": 2})]
        assert await _next(elsewhere) == (1, {"type": "edit", "seq": 1, "op": "feature.create",
                                              "n": 3})
        await chan_a.broadcast("m1", {"type": "presence", "users": []})
        for sub in (on_a, on_b):  # not an edit: no number
            assert await _next(sub) == (None, {"type": "presence", "users": []})
        await chan_b.unsubscribe(on_b)
        await chan_a.publish_many([("m1", {"op": "x"})])
        assert (await _next(on_a))[0] == 3
        assert on_b.queue.empty()
        # the replay window (3 events) for a reconnecting client
        for _ in range(2):
            await chan_a.publish_many([("m1", {"op": "x"})])
        assert await chan_b.history("m1", 5) == ([], 5)
        missed, current = await chan_b.history("m1", 3)
        assert current == 5 and [seq for seq, _ in missed] == [4, 5]
        assert await chan_b.history("m1", 1) == (None, 5)  # 2 left the window: resync
        await a.close()
        await b.close()

    asyncio.run(run())


def test_presence_is_shared_and_expires(broker: Broker, socket_path: Path) -> None:
    async def run() -> None:
        a, b = await _client(socket_path), await _client(socket_path)
        on_a, on_b = BrokerPresence(a, ttl=30), BrokerPresence(b, ttl=0.0)
        await on_a.touch("m", "c1", {"user_id": 7, "name": "Ann", "role": "editor",
                                     "state": "editing"})
        await on_b.touch("m", "c2", {"user_id": None})
        seen = await on_b.list("m")
        assert seen["users"] == [{"id": 7, "name": "Ann", "role": "editor", "state": "editing"}]
        assert seen["anonymous"] == 0  # b's entry had no time to live
        await on_a.leave("m", "c1")
        assert await on_b.list("m") == {"type": "presence", "users": [], "anonymous": 0}
        await a.close()
        await b.close()

    asyncio.run(run())


def test_rate_limit_counts_every_worker_exactly(broker: Broker, socket_path: Path) -> None:
    async def run() -> None:
        a, b = await _client(socket_path), await _client(socket_path)
        rules = parse_rules("login=5/minute")
        limiters = [RateLimiter(rules, BrokerCounters(a)), RateLimiter(rules, BrokerCounters(b))]
        decisions = [await limiters[i % 2].hit("login", "ip:1", now=1000.0) for i in range(7)]
        assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
        assert (await limiters[0].hit("login", "ip:1", now=1060.0)).allowed  # next window
        await a.close()
        await b.close()

    asyncio.run(run())


def test_without_the_broker_each_worker_goes_on_alone_then_resyncs(socket_path: Path) -> None:
    async def run() -> None:
        first = Broker(socket_path)
        first.start()
        client = await _client(socket_path)
        channels = BrokerChannels(client)
        limiter = RateLimiter(parse_rules("login=1/minute"), BrokerCounters(client))
        sub = Subscriber("m")
        await channels.subscribe(sub)
        await asyncio.to_thread(first.stop)
        while not client.degraded:  # it notices the broker went away
            await asyncio.sleep(0.01)
        with pytest.raises(BrokerUnavailable):
            await client.request("history", map="m", since=0)
        await channels.publish_many([("m", {"op": "local"})])
        assert await _next(sub) == (None, {"type": "edit", "seq": None, "op": "local"})
        assert all([(await limiter.hit("login", "ip:1")).allowed for _ in range(3)])  # open
        second = Broker(socket_path)  # a new broker: it knows nothing of what happened
        second.start()
        try:
            assert (await _next(sub))[1] == {"type": "resync", "reason": "broker_restarted"}
            await channels.publish_many([("m", {"op": "again"})])
            assert await _next(sub) == (1, {"type": "edit", "seq": 1, "op": "again"})
        finally:
            await client.close()
            await asyncio.to_thread(second.stop)

    asyncio.run(run())
