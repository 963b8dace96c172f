"""The outermost ASGI layer: request ids, HTTP metrics and the access log, in one pass.

It wraps the whole Litestar ASGI handler (routing included), so 404s, 405s and errors
raised before a route handler runs are observed too. Per request it:

- takes X-Request-ID from the client when it is a sane token (≤ 128 of [A-Za-z0-9._:-]),
  else makes one, binds it to the logging context and returns it in the response;
- counts the request by route *template* (``/api/v1/maps/{map_id:str}``, never the raw
  path, so label values stay few), method and status, and times it;
- writes one access line: request id, user id, method, route, path, status, duration,
  response bytes, and ``slow: true`` (at warning level) above WAYMARK_SLOW_REQUEST_MS.
  Lines are gathered for up to WAYMARK_ACCESS_LOG_FLUSH_MS and written together (one write
  per batch, not per request); warning and error lines go out at once, with what is pending,
  and the app's shutdown writes the rest (`observability.instrument`).

Never logged: headers (so no Authorization, Cookie, Set-Cookie, X-CSRF-Token), request
bodies, query strings (which could carry ``token=`` or ``password=``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from waymark.observability import metrics
from waymark.observability.logging import LineBuffer, format_line

REQUEST_ID_HEADER = b"x-request-id"
USER_ID_KEY = "waymark.user_id"  # set in the ASGI scope once the actor is known
_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_access = logging.getLogger("waymark.access")
_bind = structlog.contextvars.bind_contextvars
_clear = structlog.contextvars.clear_contextvars


def new_request_id() -> str:
    return os.urandom(12).hex()


def _incoming_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            return value.decode("latin-1") if _VALID_ID.match(value) else None
    return None


_SERIES: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}


def _series(route: str, method: str, status: int) -> tuple[Any, Any, Any]:
    """The labelled children for one (route template, method, status), looked up once:
    `labels()` validates and locks on every call, a fifth of a cached read's Python time.
    Few keys: routes are templates, statuses a handful."""
    found = _SERIES.get((route, method, status))
    if found is None:
        found = _SERIES[(route, method, status)] = (
            metrics.HTTP_REQUESTS.labels(route, method, str(status)),
            metrics.HTTP_DURATION.labels(route, method),
            metrics.HTTP_RESPONSE_BYTES.labels(route))
    return found


class InFlight:
    """Requests in flight in this process, counted in a plain int; the Prometheus gauge (a
    write to a memory-mapped file in multiprocess mode, ~1.7 µs) is set at most once a
    second, and at once when the count returns to zero, instead of inc and dec per request:
    Prometheus scrapes it every 15 s (deploy/prometheus/prometheus.yml) anyway. A lock, as
    the gauge had: one event loop per worker, but tests run apps on several threads."""

    INTERVAL_S = 1.0

    def __init__(self, gauge: Any) -> None:
        self.gauge = gauge
        self.count = 0
        self.shown = 0  # the value the gauge holds
        self.shown_at = float("-inf")
        self.lock = threading.Lock()

    def add(self, delta: int, now: float) -> None:
        with self.lock:
            self.count = count = self.count + delta
            if count != self.shown and (count == 0 or now - self.shown_at >= self.INTERVAL_S):
                self.gauge.set(count)
                self.shown, self.shown_at = count, now


IN_FLIGHT = InFlight(metrics.HTTP_IN_FLIGHT)  # one per process, like the gauge


class RequestObserver:
    def __init__(self, app: Callable[..., Any], *, slow_request_ms: int = 1000,
                 access_log: bool = True, access_log_flush_ms: int = 0) -> None:
        self.app = app
        self.slow_s = slow_request_ms / 1000 if slow_request_ms > 0 else float("inf")
        self.access_log = access_log
        self.lines = LineBuffer(access_log_flush_ms / 1000)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _incoming_id(scope["headers"]) or new_request_id()
        scope["waymark.request_id"] = request_id
        _clear()
        _bind(request_id=request_id)
        rid_header = (REQUEST_ID_HEADER, request_id.encode("latin-1"))
        state = [500, 0]  # status, body bytes

        async def send_wrapper(message: dict[str, Any]) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                state[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            elif kind == "http.response.body":
                state[1] += len(message.get("body", b""))
            await send(message)

        IN_FLIGHT.add(1, start)
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            end = time.perf_counter()
            IN_FLIGHT.add(-1, end)
            elapsed = end - start
            route = scope.get("path_template") or metrics.UNMATCHED_ROUTE
            method = scope.get("method", "")
            status = state[0]
            requests, duration, size = _series(route, method, status)
            requests.inc()
            duration.observe(elapsed)
            size.inc(state[1])
            if self.access_log:
                self._log(scope, request_id, route, method, status, elapsed, state[1])
            _clear()

    def _log(self, scope: dict[str, Any], request_id: str, route: str, method: str,
             status: int, elapsed: float, size: int) -> None:
        slow = elapsed >= self.slow_s
        level = logging.ERROR if status >= 500 else logging.WARNING if slow else logging.INFO
        if not _access.isEnabledFor(level):
            return
        client = scope.get("client")
        self.lines.add(format_line(level, "waymark.access", {
            "event": "request", "request_id": request_id, "method": method, "route": route,
            "path": (scope.get("raw_path") or b"").decode("latin-1") or scope.get("path", ""),
            "status": status, "duration_ms": round(elapsed * 1000, 2), "bytes": size,
            "user_id": scope.get(USER_ID_KEY), "client": client[0] if client else None,
            "slow": slow}), urgent=level >= logging.WARNING)


def track_user(provide_actor: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the (async) actor dependency so the access log and error reports know the user id."""
    import functools

    @functools.wraps(provide_actor)
    async def wrapper(request: Any) -> Any:
        actor = await provide_actor(request)
        request.scope[USER_ID_KEY] = getattr(actor, "user_id", None)
        return actor

    return wrapper


__all__ = ["REQUEST_ID_HEADER", "RequestObserver", "new_request_id", "track_user"]
