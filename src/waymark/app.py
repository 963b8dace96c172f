"""create_app(settings) -> Litestar: the one place where plugins, stores and routes are wired."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from anyio import to_thread
from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore

from waymark import __version__
from waymark.accounts.routes import ROUTES as ACCOUNT_ROUTES
from waymark.accounts.sessions import COOKIE, SessionConfig
from waymark.db.engine import Database
from waymark.errors import ApiError
from waymark.jobs.queue import Runtime, make_huey, set_runtime
from waymark.maps.feature_routes import ROUTES as FEATURE_ROUTES
from waymark.maps.io_routes import ROUTES as IO_ROUTES
from waymark.maps.routes import ROUTES as MAP_ROUTES
from waymark.maps.snapshots import Publisher
from waymark.ops.apidocs import api_docs
from waymark.ops.health import healthz, readyz
from waymark.ops.lru import BytesLRU
from waymark.pages import ROUTES as PAGE_ROUTES
from waymark.settings import Settings, load_settings
from waymark.storage import open_store
from waymark.web import Services, http_exception_to_api, provide_actor

log = logging.getLogger("waymark")


def _api_error(request: Request, exc: ApiError) -> Response:
    return Response(exc.body(), status_code=exc.status_code, headers=exc.headers)


def _http_error(request: Request, exc: HTTPException) -> Response:
    return _api_error(request, http_exception_to_api(exc))


def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response({"error": {"code": "internal_error", "message": "internal server error",
                               "details": {}}}, status_code=500)


def _stores(settings: Settings) -> dict:
    if settings.session_store == "file":
        sessions = FileStore(settings.data_dir / "sessions", create_directories=True)
    else:
        sessions = MemoryStore()
    return {"sessions": sessions, "cache": MemoryStore()}


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    db = Database(settings.resolved_database_url)
    store = open_store(settings.resolved_object_store_url)
    huey = make_huey(settings)
    set_runtime(Runtime(settings, db, store))
    publisher = Publisher(db, store, delay=settings.snapshot_delay_ms / 1000,
                          on_error=lambda layer_id, exc: log.warning(
                              "snapshot publish failed for layer %s: %s", layer_id, exc))
    services = Services(settings=settings, db=db, store=store, huey=huey, publisher=publisher,
                        snapshot_cache=BytesLRU(settings.snapshot_cache_items))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        publisher.start()
        try:
            yield
        finally:
            await to_thread.run_sync(publisher.stop)
            db.dispose()

    session_config = SessionConfig(key=COOKIE, store="sessions", secure=settings.cookie_secure,
                                   httponly=True, samesite="lax", max_age=settings.session_max_age)
    logging.getLogger("waymark").setLevel(settings.log_level.upper())
    return Litestar(
        route_handlers=[healthz, readyz, api_docs, *ACCOUNT_ROUTES, *MAP_ROUTES, *FEATURE_ROUTES,
                        *IO_ROUTES, *PAGE_ROUTES],
        dependencies={"actor": Provide(provide_actor, sync_to_thread=True)},
        middleware=[session_config.middleware],
        stores=_stores(settings),
        exception_handlers={ApiError: _api_error, HTTPException: _http_error,
                            Exception: _internal_error},
        openapi_config=OpenAPIConfig(title="Waymark API", version=__version__, path="/api",
                                     render_plugins=[], description=(
                                         "Maps, layers, features, import/export. Errors are "
                                         '{"error": {"code", "message", "details"}}.')),
        request_max_body_size=settings.max_upload_bytes,
        lifespan=[lifespan],
        state=State({"services": services}),
        debug=settings.debug,
    )
