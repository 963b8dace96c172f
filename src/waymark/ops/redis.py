"""The one place that parses WAYMARK_REDIS_URL and builds Redis clients.

WAYMARK_REDIS_URL formats:

    redis://[[user]:password@]host[:port][/db]          plain TCP
    rediss://[[user]:password@]host[:port][/db]         TLS (?ssl_cert_reqs=none|required,
                                                        ?ssl_ca_certs=/path/ca.pem)
    redis+sentinel://[[user]:password@]h1:p1,h2:p2,h3:p3/master_name[/db]
    sentinel://...                                       same as redis+sentinel://

For Sentinel the password (if any) is the data nodes' password; add
``?sentinel_password=...`` when the sentinels themselves need one, and ``?ssl=true`` for TLS.

The Redis backends (backends/redis/) share one client through `RedisHub`; the
settings check the URL with `parse_redis_url` and the job queue builds its own pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SOCKET_TIMEOUT = 0.5


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
