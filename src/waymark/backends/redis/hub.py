"""The Redis health state every Redis backend shares: one client, a degraded flag.

Every call goes through `RedisHub.run()`. The first failure marks Redis *degraded*; while
degraded, calls fail at once (no per-request timeouts) until the back-off time has passed or
the background probe sees Redis answer again, which marks it healthy and runs the recovery
callbacks (resubscribe, replay deleted sessions, tell websocket clients to resync).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from waymark.backends.protocols import SharedUnavailable
from waymark.observability.metrics import REDIS_ERRORS
from waymark.ops.redis import make_client

log = logging.getLogger("waymark.redis")
T = TypeVar("T")

BACKOFF_MIN = 0.25
BACKOFF_MAX = 2.0


class RedisUnavailable(SharedUnavailable):
    """Redis is degraded: the caller falls back to its embedded path."""


def is_unavailable(exc: BaseException) -> bool:
    """Errors that mean "Redis cannot serve us now" (not a bug in our command)."""
    from redis.exceptions import RedisError, ResponseError

    if isinstance(exc, ResponseError):
        text = str(exc)
        return text.startswith(("READONLY", "LOADING", "MASTERDOWN", "NOREPLICAS")) or \
            type(exc).__name__ == "ReadOnlyError"
    return isinstance(exc, (RedisError, OSError, asyncio.TimeoutError))


class RedisHub:
    """The shared client plus a degraded flag with back-off and recovery callbacks."""

    def __init__(self, url: str, *, namespace: str = "wm") -> None:
        self.url = url
        self.ns = namespace
        self.client = make_client(url)
        self.degraded = False
        self.degraded_since: float | None = None
        self.last_error = ""
        self._retry_at = 0.0
        self._backoff = BACKOFF_MIN
        self._on_recover: list[Callable[[], Awaitable[None]]] = []
        self._on_degrade: list[Callable[[], Awaitable[None] | None]] = []
        self._probe: asyncio.Task[None] | None = None

    def key(self, *parts: object) -> str:
        return ":".join([self.ns, *(str(p) for p in parts)])

    def on_recover(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._on_recover.append(fn)

    def on_degrade(self, fn: Callable[[], Any]) -> None:
        self._on_degrade.append(fn)

    @property
    def available(self) -> bool:
        return not self.degraded or time.monotonic() >= self._retry_at

    async def run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Run one Redis operation; RedisUnavailable when degraded or when it fails."""
        if not self.available:
            raise RedisUnavailable(self.last_error)
        try:
            result = await fn(self.client)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            REDIS_ERRORS.labels(error=type(exc).__name__).inc()
            self.mark_failed(exc)
            raise RedisUnavailable(str(exc)) from exc
        if self.degraded:
            await self.mark_ok()
        return result

    def mark_failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.last_error = f"{type(exc).__name__}: {exc}"[:200]
        if not self.degraded:
            self.degraded = True
            self.degraded_since = now
            self._backoff = BACKOFF_MIN
            log.warning("redis unavailable, serving from embedded fallbacks: %s", self.last_error)
            for fn in self._on_degrade:
                try:
                    result = fn()
                    if asyncio.iscoroutine(result):
                        asyncio.ensure_future(result)
                except Exception:
                    log.exception("degrade callback failed")
        else:
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        self._retry_at = now + self._backoff

    async def mark_ok(self) -> None:
        if not self.degraded:
            return
        self.degraded = False
        self.degraded_since = None
        self._backoff = BACKOFF_MIN
        log.warning("redis is back")
        for fn in list(self._on_recover):
            try:
                await fn()
            except Exception as exc:  # noqa: BLE001 - one failing callback must not stop others
                log.warning("redis recovery step failed: %s", exc)

    async def ping(self) -> None:
        await self.run(lambda r: r.ping())

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            if self.degraded and time.monotonic() >= self._retry_at:
                with contextlib.suppress(RedisUnavailable):
                    await self.ping()

    def start(self) -> None:
        if self._probe is None:
            self._probe = asyncio.get_running_loop().create_task(self._probe_loop())

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        with contextlib.suppress(Exception):  # shutting down anyway
            await self.client.aclose()

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": "redis", "degraded": self.degraded}
        if self.degraded:
            out["error"] = self.last_error
            out["degraded_for_s"] = round(time.monotonic() - (self.degraded_since or 0), 1)
        return out
