"""Small pieces shared by the HTTP handlers: app services, the actor, bodies, ETags."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from anyio import to_thread
from litestar import Litestar, Request
from litestar.exceptions import HTTPException
from sqlalchemy import update

from waymark.accounts.actor import CSRF_HEADER, Actor, resolve_actor
from waymark.backends.memory import BytesLRU
from waymark.backends.protocols import Cache, EditPublisher
from waymark.db.engine import Database, WriteBusy
from waymark.db.models import ApiToken, utcnow
from waymark.errors import ApiError, Invalid, PreconditionFailed
from waymark.settings import Settings
from waymark.storage import ObjectStore

if TYPE_CHECKING:  # (types only: these packages use this module's route helpers)
    from huey import Huey

    from waymark.basemaps.presets import Presets
    from waymark.geocode.service import Geocoding
    from waymark.maintenance.mode import ReadOnlyMode
    from waymark.maps.snapshots import Publisher


class Services:
    """What handlers need from the app, in one object: the `services` dependency
    (dependencies.py). A plain class, not a dataclass: the framework checks a dependency
    against its type with isinstance only, without resolving these annotations."""

    def __init__(self, *, settings: Settings, db: Database, store: ObjectStore,
                 make_queue: Callable[[], Huey], publisher: Publisher,
                 snapshot_cache: BytesLRU, edits: EditPublisher, cache: Cache,
                 read_only: ReadOnlyMode, presets: Presets, geocoder: Geocoding) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.make_queue = make_queue  # jobs.queue.make_huey for these settings
        self.publisher = publisher
        self.snapshot_cache = snapshot_cache  # the cache's process level (published reads)
        self.edits = edits  # publish(map_id, event) after commit
        self.cache = cache  # versioned response bytes (LRU, then Redis)
        self.read_only = read_only  # the switch every write path checks
        self.presets = presets
        self.geocoder = geocoder

    @cached_property
    def huey(self) -> Huey:
        """The job queue, made when first used (large imports): a worker that never enqueues
        never loads Huey (and the redis and psycopg packages it imports)."""
        return self.make_queue()


def services_of(app: Litestar) -> Services:
    """The app's services, for code that is not a handler (handlers take a `services`
    parameter, dependencies.py): the actor dependency, ASGI layers, tests."""
    services: Services = app.state.services
    return services


F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
# Another writer holds the lock for about a millisecond per edit: try again a few times (over
# ~10 ms) on the loop before handing the write to a thread, which waits however long it takes.
WRITE_RETRY_PAUSES = (0.0005, 0.001, 0.001, 0.002, 0.002, 0.004)


def threaded(fn: F) -> F:
    """Run a blocking (database) handler in a worker thread.

    Used instead of Litestar's `sync_to_thread=True`, which in 2.25 breaks GET handlers on a
    path that also has two other sync handlers (see docs/decisions/0002-threaded-handlers.md).
    """

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    return wrapper  # type: ignore[return-value]


async def run_write(db: Database, write: Callable[..., T]) -> T:
    """Run a short write handler, `write(wait=...)`, on the event loop if the SQLite write
    lock is free right now, else in a worker thread that waits for it.

    For the single-feature edits: their transaction is ~1 ms of SQLite work, less than the
    thread hop and the GIL hand-offs around it cost under load (docs/decisions/0011).
    `write(wait=False)` raises WriteBusy before doing anything if the lock is taken; the loop
    never waits on the lock itself. On PostgreSQL (a write waits on the network) it always
    runs in a thread.
    """
    if db.can_write_without_waiting:
        for pause in (*WRITE_RETRY_PAUSES, None):
            try:
                return write(wait=False)
            except WriteBusy:
                if pause is None:
                    break
                await asyncio.sleep(pause)
    return await to_thread.run_sync(functools.partial(write, wait=True))


async def provide_actor(request: Request) -> Actor:
    """Resolve who is calling. Anonymous requests (no token, no session) are answered at once;
    on SQLite the token or user lookup runs on the event loop too (Database.peek: one indexed
    read, no ORM, no thread hop); otherwise it reads the database in a worker thread."""
    svc = services_of(request.app)
    authorization = request.headers.get("authorization")
    session_data = request.scope.get("session")  # set by the session middleware
    if not isinstance(session_data, dict):
        session_data = None
    if not authorization and not session_data:
        return Actor()
    csrf_header = request.headers.get(CSRF_HEADER)
    if not svc.db.can_peek:
        return await to_thread.run_sync(functools.partial(
            _resolve_actor, svc, request.method, authorization, session_data, csrf_header))
    actor = resolve_actor(svc.db.peek, method=request.method, authorization=authorization,
                          session_data=session_data, csrf_header=csrf_header)
    if actor.touch_token and not svc.read_only.current():  # no writes while read-only
        await to_thread.run_sync(_touch_token, svc.db, actor.token_id)
    return actor


def _resolve_actor(svc: Services, method: str, authorization: str | None,
                   session_data: dict[str, Any] | None, csrf_header: str | None) -> Actor:
    with svc.db.read() as db_session:
        actor = resolve_actor(db_session, method=method, authorization=authorization,
                              session_data=session_data, csrf_header=csrf_header)
    if actor.touch_token and not svc.read_only.current():
        _touch_token(svc.db, actor.token_id)
    return actor


def _touch_token(db: Database, token_id: int | None) -> None:
    with db.write() as db_session:
        db_session.execute(update(ApiToken).where(ApiToken.id == token_id)
                           .values(last_used_at=utcnow()))


def json_object(data: Any, what: str = "request body") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise Invalid(f"{what} must be a JSON object", code="invalid_body")
    return data


def if_match_version(request: Request, body: dict[str, Any] | None = None) -> int | None:
    """The version the client last saw: If-Match header ("3", W/"3", 3) or body "version"."""
    raw = request.headers.get("if-match")
    if raw is not None:
        raw = raw.strip()
        if raw == "*":
            return None
        raw = raw.removeprefix("W/").strip('"')
        try:
            return int(raw)
        except ValueError:
            raise PreconditionFailed(f"If-Match {raw!r} is not a version", code="bad_if_match") \
                from None
    if body is not None and "version" in body:
        value = body["version"]
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid("version must be an integer", details={"field": "version"})
        return value
    return None


def int_query(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"query parameter {name} must be an integer", details={"field": name}) \
            from None


def http_exception_to_api(exc: HTTPException) -> ApiError:
    codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
             405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
             429: "rate_limited"}
    status = exc.status_code
    message = exc.detail or "error"
    details: dict[str, Any] = {}
    if status == 400 and exc.extra:
        details["problems"] = exc.extra if isinstance(exc.extra, list) else [exc.extra]
    if status == 413:
        message = "request body is larger than the configured limit"
    return ApiError(message, code=codes.get(status, "http_error"), status=status, details=details,
                    headers=dict(exc.headers or {}))
