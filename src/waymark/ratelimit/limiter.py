"""Rate limits by route class, per IP or per user/token, shared across workers through Redis.

WAYMARK_RATE_LIMITS overrides the defaults class by class, e.g.
``login=10/minute,signup=5/hour,write=600/minute,upload=30/hour,anon_read=3000/minute,
ws_message=120/minute`` (units: second, minute, hour, day, or a number of seconds as in
``100/30s``; ``write=off`` disables a class).

Classes: ``login`` and ``signup`` (per IP), ``upload`` (imports) and ``write`` (any other
unsafe method; per user or token, else per IP), ``anon_read`` (reads without a session or
token, per IP), ``ws_message`` (websocket messages, checked by the websocket handler),
``reset`` (password-reset requests and confirmations, per IP) and ``reset_address``
(reset mails per e-mail address, checked by the handler: over it, no mail is sent but the
answer is the same, so it reveals nothing).

Fixed windows. With Redis (or the embedded broker that the workers of one `waymark serve`
share without Redis), a process *leases* a slice of a class's budget at a time
(INCRBY slice, one round trip per slice rather than per request): the slice is 1 for small
limits (login: exact) and limit/100 for large ones (anon_read 3000/min: one Redis call per
30 requests), so Redis adds little to hot read paths. Without Redis: exact in-process counters.
When Redis fails the limiter *fails open* (the request passes), logs it at most every 30 s
and counts it in waymark_ratelimit_failopen_total.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from waymark.backends.protocols import SharedUnavailable
from waymark.errors import error_body, send_error
from waymark.observability.metrics import RATELIMIT_FAILOPEN, RATELIMIT_REJECTIONS
from waymark.ratelimit.rules import (  # noqa: F401 - part of this module's interface
    CLASSES,
    DEFAULT_LIMITS,
    UNITS,
    Rule,
    parse_networks,
    parse_rules,
)

if TYPE_CHECKING:
    from waymark.backends.protocols import Counters

log = logging.getLogger("waymark.ratelimit")

RESET_PATHS = ("/api/v1/auth/password-reset", "/api/v1/auth/password-reset/confirm")
EXEMPT_PREFIXES = ("/static/", "/healthz", "/readyz", "/metrics", "/assets/", "/favicon")
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Decision:
    allowed: bool
    rule: Rule
    remaining: int
    reset: int  # seconds until the window ends
    failed_open: bool = False

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [(b"ratelimit-limit", str(self.rule.limit).encode()),
               (b"ratelimit-remaining", str(max(self.remaining, 0)).encode()),
               (b"ratelimit-reset", str(self.reset).encode()),
               (b"ratelimit-policy", f"{self.rule.limit};w={self.rule.window}".encode())]
        if not self.allowed:
            out.append((b"retry-after", str(self.reset).encode()))
        return out


class RateLimiter:
    """Exact in-process counters alone; leased slices of `shared` counters with Redis or the
    embedded broker of several workers without Redis (backends/redis/counters.py,
    realtime/brokered.py)."""

    def __init__(self, rules: dict[str, Rule], shared: Counters | None = None) -> None:
        self.rules = rules
        self.shared = shared
        self._lock = threading.Lock()
        self._local: dict[str, list[int]] = {}  # key -> [count] (no Redis) or [end, left]
        self._last_failopen_log = 0.0
        self.failopen_count = 0

    async def hit(self, cls: str, ident: str, now: float | None = None) -> Decision | None:
        rule = self.rules.get(cls)
        if rule is None:
            return None
        now = time.time() if now is None else now
        window_id = int(now // rule.window)
        reset = max(1, math.ceil((window_id + 1) * rule.window - now))
        key = f"{cls}:{ident}:{window_id}"
        if self.shared is None:
            with self._lock:
                self._prune(window_id)
                entry = self._local.setdefault(key, [0, window_id])
                entry[0] += 1
                count = entry[0]
        else:
            count = await self._leased(rule, key, window_id)
            if count is None:
                return Decision(True, rule, rule.limit, reset, failed_open=True)
        allowed = count <= rule.limit
        if not allowed:
            RATELIMIT_REJECTIONS.labels(route_class=cls).inc()
        return Decision(allowed, rule, rule.limit - count, reset)

    async def _leased(self, rule: Rule, key: str, window_id: int) -> int | None:
        with self._lock:
            lease = self._local.get(key)
            if lease is not None and lease[1] > 0:
                lease[1] -= 1
                return lease[0] - lease[1]
        size = rule.slice
        try:
            end = await self.shared.take(key, size, rule.window + 5)  # type: ignore[union-attr]
        except SharedUnavailable as exc:
            self._fail_open(rule.name, exc)
            return None
        with self._lock:
            self._prune(window_id)
            self._local[key] = [end, size - 1, window_id]
        return end - size + 1

    def _prune(self, window_id: int) -> None:
        if len(self._local) < 20_000:
            return
        for k in [k for k, v in self._local.items() if v[-1] < window_id]:
            del self._local[k]

    def _fail_open(self, cls: str, exc: BaseException) -> None:
        self.failopen_count += 1
        RATELIMIT_FAILOPEN.labels(route_class=cls).inc()
        now = time.monotonic()
        if now - self._last_failopen_log > 30:
            self._last_failopen_log = now
            log.warning("rate limiter failing open (requests are not limited): shared "
                        "counters (Redis or the embedded broker) unavailable: %s", exc)


# ---- who is calling and which class the request is ---------------------------------------
def client_ip(scope: dict[str, Any], trusted: Sequence[Any]) -> str:
    """The peer address, or the first untrusted hop of X-Forwarded-For when the peer is a
    trusted proxy (walking from the right, so a client cannot spoof its address)."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if not trusted or not _in(peer, trusted):
        return peer
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
            for hop in reversed(hops):
                if not _in(hop, trusted):
                    return hop
            return hops[0] if hops else peer
    return peer


def _in(addr: str, networks: list[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def identity(scope: dict[str, Any], ip: str) -> tuple[str, bool]:
    """("u:<id>" | "t:<hash>" | "ip:<addr>", authenticated)."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return "t:" + hashlib.sha256(value).hexdigest()[:20], True
    session = scope.get("session")
    if isinstance(session, dict) and session.get("uid") is not None:
        return f"u:{session['uid']}", True
    return f"ip:{ip}", False


def classify(method: str, path: str, authenticated: bool) -> str | None:
    if path.startswith(EXEMPT_PREFIXES):
        return None
    if method == "GET" and (path == "/api/v1/geocode" or path.endswith("/search")):
        return "search"  # for everyone: each may reach an outside geocoding service
    if method in SAFE:
        return None if authenticated else "anon_read"
    if path == "/api/v1/auth/login":
        return "login"
    if path == "/api/v1/auth/signup":
        return "signup"
    if path in RESET_PATHS:
        return "reset"
    if path.endswith(("/import", "/import-bundle")):
        return "upload"
    return "write"


class RateLimitMiddleware:
    """Plain ASGI middleware (cheap): runs inside the session middleware, so it sees the uid."""

    def __init__(self, app: Any, limiter: RateLimiter, trusted: Sequence[Any] = ()) -> None:
        self.app = app
        self.limiter = limiter
        self.trusted = trusted  # settings.trusted_networks

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ip = client_ip(scope, self.trusted)
        ident, authenticated = identity(scope, ip)
        cls = classify(scope["method"], scope["path"], authenticated)
        if cls in ("login", "signup", "reset"):
            ident = f"ip:{ip}"
        decision = await self.limiter.hit(cls, ident) if cls else None
        if decision is None:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["ratelimit"] = decision
        if not decision.allowed:
            await send_limited(send, decision)
            return
        extra = decision.headers()

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def limited_body(decision: Decision) -> dict[str, Any]:
    rule = decision.rule
    return error_body(
        "rate_limited",
        f"too many requests: at most {rule.limit} per {rule.window} s for "
        f"{rule.name}; retry in {decision.reset} s",
        {"class": rule.name, "limit": rule.limit, "window": rule.window,
         "retry_after": decision.reset})


async def send_limited(send: Any, decision: Decision) -> None:
    await send_error(send, 429, limited_body(decision), decision.headers())
