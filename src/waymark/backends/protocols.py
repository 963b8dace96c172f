"""What the app asks of each backend WAYMARK_REDIS_URL switches: the methods it really calls.

Each protocol has an in-process implementation (backends/memory.py, or Litestar's stores for
sessions), a Redis one (backends/redis/), and for channels, presence and counters one
through the embedded broker of `waymark serve` (realtime/brokered.py, realtime/broker.py).
Redis and broker implementations degrade to this process alone while the shared side is
down: they never raise for that, except `Counters.take` and `Channels.history`, whose
callers fail open or resync.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from waymark.backends.fanout import Fanout, Subscriber
    from waymark.backends.memory import BytesLRU


class SharedUnavailable(Exception):
    """The shared side (Redis, the embedded broker) did not answer: what `Counters.take` and
    `Channels.history` raise, so their callers can fail open or resync whatever the backend."""


@runtime_checkable
class Channels(Protocol):
    """Per-map channels: numbered edit events, a replay window, pub/sub to subscribers."""

    backend: str  # "memory", "redis" or "broker" (health and tests)
    fanout: Fanout  # this process's subscribers

    @property
    def degraded(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish_many(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Number and deliver edit events (map id, event), in order."""

    async def broadcast(self, map_id: str, message: dict[str, Any]) -> None:
        """Deliver an unnumbered message (presence, live positions) to a map's subscribers."""

    async def history(self, map_id: str, since: int) -> tuple[list[tuple[int, str]] | None, int]:
        """(events after `since`, or None when some left the window; the current number)."""

    async def subscribe(self, sub: Subscriber) -> None: ...

    async def unsubscribe(self, sub: Subscriber) -> None: ...


@runtime_checkable
class EditPublisher(Protocol):
    """What domain routes call after commit (realtime/edits.py:EditBus); never blocks."""

    def publish(self, map_id: str, event: dict[str, Any]) -> None: ...


@runtime_checkable
class Presence(Protocol):
    """Who is on a map: entries per connection that expire unless touched again."""

    async def touch(self, map_id: str, conn_id: str, entry: dict[str, Any]) -> None: ...

    async def touch_many(self, items: list[tuple[str, str, dict[str, Any]]]) -> None: ...

    async def leave(self, map_id: str, conn_id: str) -> None: ...

    async def list(self, map_id: str) -> dict[str, Any]:
        """The presence message: {"type": "presence", "users": [...], "anonymous": n}."""


@runtime_checkable
class Counters(Protocol):
    """Shared expiring counters: the rate limiter leases slices of its budgets from them."""

    async def take(self, key: str, amount: int, ttl: int) -> int:
        """Add `amount` to `key` (made with a lifetime of `ttl` s); its new value."""


@runtime_checkable
class Cache(Protocol):
    """Immutable, versioned response bytes (a key never changes its value)."""

    lru: BytesLRU  # this process's level, read by the published-layer fast path
    enabled: bool

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes) -> None: ...

    def get_local(self, key: str) -> bytes | None:
        """From a worker thread: this process's level only."""

    def put_local(self, key: str, value: bytes) -> None: ...

    def status(self) -> dict[str, Any]: ...


@runtime_checkable
class SessionStore(Protocol):
    """The "sessions" store of the session middleware (Litestar's Store interface)."""

    async def set(self, key: str, value: str | bytes,
                  expires_in: int | timedelta | None = None) -> None: ...

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None: ...

    async def delete(self, key: str) -> None: ...

    async def delete_all(self) -> None: ...

    async def exists(self, key: str) -> bool: ...

    async def expires_in(self, key: str) -> int | None: ...
