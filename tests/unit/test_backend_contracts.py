"""Every backend of backends/protocols.py keeps the same contract: the same assertions run on
the in-process implementation, the Redis one (a real redis-server on loopback) and, for what
the workers of one `waymark serve` share, the embedded broker's (a real broker socket)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from litestar.stores.memory import MemoryStore

from tests.redis_servers import module_redis_server  # noqa: F401 - fixture
from waymark.backends.fanout import Subscriber
from waymark.backends.memory import (
    BytesLRU,
    LocalChannels,
    LocalPresence,
    MemoryCache,
    MemoryCounters,
)
from waymark.backends.protocols import Cache, Channels, Counters, Presence, SessionStore
from waymark.backends.redis.cache import TwoLevelCache
from waymark.backends.redis.channels import RedisChannels
from waymark.backends.redis.counters import RedisCounters
from waymark.backends.redis.hub import RedisHub
from waymark.backends.redis.presence import RedisPresence
from waymark.backends.redis.sessions import ResilientStore
from waymark.realtime.broker import Broker, BrokerClient
from waymark.realtime.brokered import BrokerChannels, BrokerCounters, BrokerPresence

KINDS = ["memory", "redis"]
SHARED_KINDS = [*KINDS, "broker"]  # channels, presence and counters also go through it
T = TypeVar("T")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hub_url(kind: str, request: pytest.FixtureRequest) -> str:
    """The Redis URL for the redis kind (the server starts only for it), else ""."""
    return request.getfixturevalue("module_redis_server").url if kind == "redis" else ""


@pytest.fixture(params=SHARED_KINDS)
def backing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(kind, where): the Redis URL, the broker's socket (a broker running), or nothing."""
    kind = str(request.param)
    if kind == "redis":
        yield kind, request.getfixturevalue("module_redis_server").url
    elif kind == "broker":
        broker = Broker(tmp_path / "broker.sock", window=3)
        broker.start()
        try:
            yield kind, str(tmp_path / "broker.sock")
        finally:
            broker.stop()
    else:
        yield kind, ""


@asynccontextmanager
async def _shared(backing: tuple[str, str]) -> AsyncIterator[RedisHub | BrokerClient | None]:
    kind, where = backing
    if kind != "broker":
        async with _hub(where) as hub:
            yield hub
        return
    client = BrokerClient(Path(where))
    await client.start()
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def _hub(url: str) -> AsyncIterator[RedisHub | None]:
    """A hub with a namespace of its own (tests share one server), closed afterwards."""
    if not url:
        yield None
        return
    hub = RedisHub(url, namespace=f"t{uuid.uuid4().hex[:8]}")
    hub.start()
    try:
        yield hub
    finally:
        await hub.close()


async def _until(check: Callable[[], Awaitable[T]], what: str, deadline: float = 20.0) -> T:
    """Poll ``check`` until it returns something true (a generous deadline, no fixed wait)."""
    end = time.monotonic() + deadline
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _next(sub: Subscriber) -> tuple[int | None, dict[str, Any]]:
    seq, text = await asyncio.wait_for(sub.queue.get(), 20)
    return seq, json.loads(text)


async def _subscribed(channels: Channels, *subs: Subscriber) -> None:
    """Wait until messages reach every subscriber (with Redis the pub/sub subscription is
    made in the background), then drop the probes: a last marker, read up to, means no
    probe is still on its way."""
    async def ready() -> bool:
        for sub in subs:
            await channels.broadcast(sub.map_id, {"type": "probe"})
        return all(not sub.queue.empty() for sub in subs)

    await _until(ready, "the subscriptions")
    for sub in subs:
        await channels.broadcast(sub.map_id, {"type": "marker"})
        while (await _next(sub))[1]["type"] != "marker":
            pass


def test_channels_number_edits_fan_them_out_and_replay_a_window(
        backing: tuple[str, str]) -> None:
    async def run() -> None:
        async with _shared(backing) as hub:
            channels: Channels = LocalChannels(3) if hub is None else \
                BrokerChannels(hub, 3) if isinstance(hub, BrokerClient) else RedisChannels(hub, 3)
            assert isinstance(channels, Channels)
            await channels.start()
            try:
                sub, other = Subscriber("m1"), Subscriber("m2")
                await channels.subscribe(sub)
                await channels.subscribe(other)

                await _subscribed(channels, sub, other)
                assert not channels.degraded

                await channels.publish_many([("m1", {"op": "a"}), ("m2", {"op": "b"}),
                                             ("m1", {"op": "c"})])
                assert [await _next(sub) for _ in range(2)] == [
                    (1, {"type": "edit", "seq": 1, "op": "a"}),
                    (2, {"type": "edit", "seq": 2, "op": "c"})]
                assert await _next(other) == (1, {"type": "edit", "seq": 1, "op": "b"})
                await channels.broadcast("m1", {"type": "presence", "users": []})
                assert await _next(sub) == (None, {"type": "presence", "users": []})

                for op in ("d", "e"):
                    await channels.publish_many([("m1", {"op": op})])
                assert [(await _next(sub))[0] for _ in range(2)] == [3, 4]
                assert await channels.history("m1", 4) == ([], 4)
                missed, current = await channels.history("m1", 2)
                assert current == 4 and missed is not None
                assert [(seq, json.loads(text)["op"]) for seq, text in missed] == [
                    (3, "d"), (4, "e")]
                assert await channels.history("m1", 0) == (None, 4)  # 1 left the window
                assert await channels.history("m1", 9) == (None, 4)  # counter reset: reload

                await channels.unsubscribe(sub)
                await channels.publish_many([("m1", {"op": "f"}), ("m2", {"op": "g"})])
                assert (await _next(other))[0] == 2  # delivered after m1's would have been
                assert sub.queue.empty()
            finally:
                await channels.close()

    asyncio.run(run())


def test_presence_lists_users_once_and_forgets_leavers_and_the_silent(
        backing: tuple[str, str]) -> None:
    async def run() -> None:
        async with _shared(backing) as hub:
            def make(ttl: float) -> Presence:
                return LocalPresence(ttl) if hub is None else BrokerPresence(hub, ttl) \
                    if isinstance(hub, BrokerClient) else RedisPresence(hub, ttl)

            presence = make(30)
            assert isinstance(presence, Presence)
            ada = {"user_id": 1, "name": "Ada", "role": "owner"}
            await presence.touch("m1", "c1", {**ada, "state": "viewing"})
            await presence.touch_many([("m1", "c2", {**ada, "state": "editing"}),
                                       ("m1", "c3", {"user_id": None}),
                                       ("m2", "c4", {"user_id": 2, "name": "Bo"})])
            assert await presence.list("m1") == {
                "type": "presence", "anonymous": 1,
                "users": [{"id": 1, "name": "Ada", "role": "owner", "state": "editing"}]}
            await presence.leave("m1", "c2")
            await presence.leave("m1", "c3")
            listed = await presence.list("m1")
            assert listed["anonymous"] == 0 and listed["users"][0]["state"] == "viewing"
            assert [u["name"] for u in (await presence.list("m2"))["users"]] == ["Bo"]

            short = make(0.3)
            await short.touch("m3", "c5", {"user_id": 3, "name": "Cy"})
            assert (await short.list("m3"))["users"]

            async def gone() -> bool:  # not refreshed: it expires on its own
                return not (await short.list("m3"))["users"]

            await _until(gone, "the silent entry to expire")

    asyncio.run(run())


def test_counters_add_up_per_key_and_start_again_after_their_ttl(
        backing: tuple[str, str]) -> None:
    async def run() -> None:
        async with _shared(backing) as hub:
            counters: Counters = MemoryCounters() if hub is None else BrokerCounters(hub) \
                if isinstance(hub, BrokerClient) else RedisCounters(hub)
            assert isinstance(counters, Counters)
            assert await counters.take("login:ip:1:7", 1, 60) == 1
            assert await counters.take("login:ip:1:7", 5, 60) == 6
            assert await counters.take("login:ip:2:7", 1, 60) == 1
            assert await counters.take("short", 3, 1) == 3

            async def reset() -> bool:
                return await counters.take("short", 1, 1) == 1

            await _until(reset, "the counter to expire")

    asyncio.run(run())


def test_cache_returns_what_was_put_and_misses_everything_when_disabled(hub_url: str) -> None:
    async def run() -> None:
        async with _hub(hub_url) as hub:
            def make(enabled: bool = True) -> Cache:
                lru = BytesLRU(8)
                return MemoryCache(lru, enabled=enabled) if hub is None else \
                    TwoLevelCache(lru, hub, ttl=60, enabled=enabled)

            cache = make()
            assert isinstance(cache, Cache)
            assert await cache.get("map:1:v1") is None
            await cache.put("map:1:v1", b"one")
            assert await cache.get("map:1:v1") == b"one"
            cache.put_local("map:1:v2", b"two")
            assert cache.get_local("map:1:v2") == b"two"
            assert cache.lru.get("map:1:v1") == b"one"
            status = cache.status()
            assert status["enabled"] and status["items"] == 2
            assert status["shared"] is (hub is not None)
            if hub is not None:  # another process (an empty LRU) finds it in Redis
                assert await make().get("map:1:v1") == b"one"

            off = make(enabled=False)
            await off.put("map:1:v1", b"one")
            off.put_local("map:1:v3", b"three")
            assert await off.get("map:1:v1") is None and off.get_local("map:1:v3") is None
            assert not off.status()["enabled"]

    asyncio.run(run())


def test_session_store_keeps_deletes_and_expires_sessions(hub_url: str) -> None:
    async def run() -> None:
        async with _hub(hub_url) as hub:
            store: SessionStore = MemoryStore() if hub is None else ResilientStore(hub)
            assert isinstance(store, SessionStore)
            await store.set("s1", b'{"uid": 1}', expires_in=600)
            await store.set("s2", "text", expires_in=None)
            assert await store.get("s1") == b'{"uid": 1}'
            assert await store.get("s2") == b"text"
            assert await store.exists("s1") and not await store.exists("nope")
            left = await store.expires_in("s1")
            assert left is not None and 0 < left <= 600
            await store.delete("s1")
            assert await store.get("s1") is None and not await store.exists("s1")
            await store.set("s3", b"short", expires_in=1)

            async def expired() -> bool:
                return await store.get("s3") is None

            await _until(expired, "the session to expire")
            await store.delete_all()
            assert await store.get("s2") is None

    asyncio.run(run())
