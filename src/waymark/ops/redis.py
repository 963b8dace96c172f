"""The one place that builds the Redis client, and the health state every Redis user shares.

WAYMARK_REDIS_URL formats:

    redis://[[user]:password@]host[:port][/db]          plain TCP
    rediss://[[user]:password@]host[:port][/db]         TLS (?ssl_cert_reqs=none|required,
                                                        ?ssl_ca_certs=/path/ca.pem)
    redis+sentinel://[[user]:password@]h1:p1,h2:p2,h3:p3/master_name[/db]
    sentinel://...                                       same as redis+sentinel://

For Sentinel the password (if any) is the data nodes' password; add
``?sentinel_password=...`` when the sentinels themselves need one, and ``?ssl=true`` for TLS.

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
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from waymark.observability.metrics import REDIS_ERRORS

log = logging.getLogger("waymark.redis")
T = TypeVar("T")

SOCKET_TIMEOUT = 0.5
BACKOFF_MIN = 0.25
BACKOFF_MAX = 2.0


class RedisUnavailable(Exception):
    """Redis is degraded: the caller falls back to its embedded path."""


@dataclass(frozen=True)
class RedisTarget:
    """A parsed WAYMARK_REDIS_URL."""

    url: str
    sentinels: list[tuple[str, int]] = field(default_factory=list)
    master: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)


def parse_redis_url(url: str) -> RedisTarget:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("redis", "rediss", "unix"):
        return RedisTarget(url=url)
    if scheme not in ("redis+sentinel", "sentinel", "rediss+sentinel"):
        raise ValueError(f"WAYMARK_REDIS_URL scheme {scheme!r} is not redis, rediss, "
                         "redis+sentinel or sentinel")
    netloc = parts.netloc
    username = password = None
    if "@" in netloc:
        creds, netloc = netloc.rsplit("@", 1)
        user, _, pw = creds.partition(":")
        username = unquote(user) or None
        password = unquote(pw) or None
    sentinels = []
    for hostport in netloc.split(","):
        host, _, port = hostport.strip().rpartition(":")
        if not host:
            host, port = port, "26379"
        if not port.isdigit():
            raise ValueError(f"WAYMARK_REDIS_URL: sentinel port {port!r} is not a number")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError("WAYMARK_REDIS_URL: a Sentinel URL needs the master name: "
                         "sentinel://h1:p1,h2:p2/mymaster")
    if len(path) > 1 and not path[1].isdigit():
        raise ValueError(f"WAYMARK_REDIS_URL: database {path[1]!r} is not a number")
    query = parse_qs(parts.query)
    ssl = scheme.startswith("rediss") or query.get("ssl", ["false"])[0].lower() in ("1", "true")
    return RedisTarget(url=url, sentinels=sentinels, master=path[0],
                       db=int(path[1]) if len(path) > 1 else 0, username=username,
                       password=password, ssl=ssl,
                       sentinel_password=(query.get("sentinel_password") or [None])[0])


def _sentinel(target: RedisTarget, kind: type) -> Any:
    """A Sentinel client (``kind``: the asyncio or the synchronous class) for ``target``."""
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": SOCKET_TIMEOUT,
                                       "socket_connect_timeout": SOCKET_TIMEOUT}
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    return kind(target.sentinels, sentinel_kwargs=sentinel_kwargs,
                **({"ssl": True} if target.ssl else {}))


def make_client(url: str) -> Any:
    """An asyncio Redis client (bytes in, bytes out) for a WAYMARK_REDIS_URL. (redis is
    imported here, not with this module: a process without Redis never loads it.)"""
    import redis.asyncio as aioredis
    from redis.asyncio.sentinel import Sentinel
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    target = parse_redis_url(url)
    retry = Retry(ExponentialBackoff(cap=0.2, base=0.02), 1)
    common: dict[str, Any] = {"socket_timeout": SOCKET_TIMEOUT,
                              "socket_connect_timeout": SOCKET_TIMEOUT, "retry": retry,
                              "health_check_interval": 15}
    if not target.is_sentinel:
        return aioredis.Redis.from_url(url, **common)
    return _sentinel(target, Sentinel).master_for(
        target.master, db=target.db, username=target.username, password=target.password,
        **common)


def sync_sentinel_pool(url: str):  # type: ignore[no-untyped-def]
    """A synchronous connection pool that follows the primary Sentinel elects, for the job
    queue (Huey's client is synchronous and understands only redis:// URLs)."""
    from redis.sentinel import Sentinel as SyncSentinel

    target = parse_redis_url(url)
    # socket_timeout above the queue's blocking read (1 s), so an idle BRPOP is not an error
    return _sentinel(target, SyncSentinel).master_for(
        target.master, db=target.db, username=target.username, password=target.password,
        socket_timeout=5, socket_connect_timeout=SOCKET_TIMEOUT).connection_pool


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
