"""Read-only (maintenance) mode: one switch, stored in the database every node shares.

While it is on, every write is refused with 503, a Retry-After header and the operator's
message in the one error format; reads, pages, embeds and snapshots keep working. The rule
is `ReadOnlyMode.check()` and every write path calls it: the HTTP guard below (unsafe
methods), the websocket edit handler, queued imports and the maintenance jobs.

Each process reads the switch at most once per CACHE_SECONDS (on SQLite through
`Database.peek`, microseconds on the event loop), so `waymark maintenance on` takes effect on
every node within that time without a query per request.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anyio import to_thread
from sqlalchemy import delete, select

from waymark.db.engine import Database
from waymark.db.models import MaintenanceMode, as_utc, utcnow
from waymark.errors import ApiError, send_api_error

log = logging.getLogger("waymark.maintenance")

CACHE_SECONDS = 1.0  # how stale this process's view of the switch may be
DEFAULT_MESSAGE = "Waymark is in read-only mode for maintenance; you can still view maps."
DEFAULT_RETRY_AFTER = 300
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Writes that stay open: a session is not map data, and people must be able to log in to
# read their private maps during a long maintenance.
EXEMPT_PATHS = frozenset({"/api/v1/auth/login", "/api/v1/auth/logout", "/logout"})
STATE_SQL = "SELECT message, retry_after, since FROM maintenance_mode WHERE id = 1"


@dataclass(frozen=True)
class ReadOnlyState:
    message: str
    retry_after: int
    since: datetime

    def error(self) -> ApiError:
        return ApiError(self.message, code="read_only", status=503,
                        details={"since": self.since.isoformat(), "retry_after": self.retry_after},
                        headers={"Retry-After": str(self.retry_after)})


def _state(row: Any) -> ReadOnlyState | None:
    if row is None:
        return None
    message, retry_after, since = row
    if isinstance(since, str):  # a raw SQLite read hands back the stored text
        since = datetime.fromisoformat(since)
    return ReadOnlyState(message, int(retry_after), as_utc(since))


def read_state(db: Database) -> ReadOnlyState | None:
    """The switch as stored now (no cache)."""
    with db.read() as s:
        row = s.execute(select(MaintenanceMode.message, MaintenanceMode.retry_after,
                               MaintenanceMode.since).where(MaintenanceMode.id == 1)).first()
    return _state(row)


def switch_on(db: Database, message: str = "", retry_after: int = DEFAULT_RETRY_AFTER,
              set_by: str = "") -> ReadOnlyState:
    if retry_after < 1:
        raise ValueError("retry_after must be at least 1 second")
    with db.write() as s:
        s.execute(delete(MaintenanceMode))
        s.add(MaintenanceMode(id=1, message=message.strip() or DEFAULT_MESSAGE,
                              retry_after=retry_after, since=utcnow(), set_by=set_by[:254]))
    state = read_state(db)
    assert state is not None
    return state


def switch_off(db: Database) -> bool:
    """Turn it off; False if it was not on."""
    with db.write() as s:
        return bool(s.execute(delete(MaintenanceMode)).rowcount)


class ReadOnlyMode:
    """This process's view of the switch, refreshed at most every `ttl` seconds."""

    def __init__(self, db: Database, ttl: float = CACHE_SECONDS) -> None:
        self.db = db
        self.ttl = ttl
        self._lock = threading.Lock()
        self._state: ReadOnlyState | None = None
        self._read_at = float("-inf")
        self._warned = False

    def _fresh(self) -> bool:
        return time.monotonic() - self._read_at < self.ttl

    def _load(self) -> ReadOnlyState | None:
        try:
            state = (_state(self.db.peek(STATE_SQL, {})) if self.db.can_peek
                     else read_state(self.db))
        except Exception as exc:  # noqa: BLE001 - an unreadable switch must not stop reads
            if not self._warned:
                log.warning("cannot read the read-only switch (treated as off): %s", exc)
                self._warned = True
            state = None
        with self._lock:
            self._state, self._read_at = state, time.monotonic()
        return state

    def current(self) -> ReadOnlyState | None:
        """For threads (jobs, threaded handlers); may read the database."""
        return self._state if self._fresh() else self._load()

    async def current_async(self) -> ReadOnlyState | None:
        """For the event loop: a stale value is refreshed in a thread, except on SQLite."""
        if self._fresh():
            return self._state
        if self.db.can_peek:
            return self._load()
        return await to_thread.run_sync(self._load)

    def check(self) -> None:
        """The rule: raise the 503 when the service is read-only."""
        state = self.current()
        if state is not None:
            raise state.error()

    async def check_async(self) -> None:
        state = await self.current_async()
        if state is not None:
            raise state.error()

    def invalidate(self) -> None:
        self._read_at = float("-inf")


class ReadOnlyGuard:
    """Plain ASGI middleware: unsafe HTTP methods get the 503 while read-only mode is on."""

    def __init__(self, app: Any, mode: ReadOnlyMode) -> None:
        self.app = app
        self.mode = mode

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS \
                and scope["path"] not in EXEMPT_PATHS:
            try:
                await self.mode.check_async()
            except ApiError as exc:
                await send_api_error(send, exc)
                return
        await self.app(scope, receive, send)
