"""create_app(settings) -> Litestar: the one place where plugins, stores and routes are wired."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from litestar import Litestar, Request, Response
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore

from waymark import __version__
from waymark.accounts.sessions import COOKIE, SessionConfig
from waymark.api.account_routes import ROUTES as ACCOUNT_ROUTES
from waymark.api.admin_routes import ROUTES as ADMIN_ROUTES
from waymark.api.basemap_routes import ROUTES as BASEMAP_ROUTES
from waymark.api.feature_routes import ROUTES as FEATURE_ROUTES
from waymark.api.geocode_routes import ROUTES as GEOCODE_ROUTES
from waymark.api.io_routes import ROUTES as IO_ROUTES
from waymark.api.published_reads import PublishedReads
from waymark.api.reset_routes import ROUTES as RESET_ROUTES
from waymark.api.routes import ROUTES as MAP_ROUTES
from waymark.apidocs import api_docs
from waymark.db.engine import Database
from waymark.db.errors import database_unavailable, database_unavailable_error
from waymark.dependencies import ServicesPlugin
from waymark.errors import ApiError, internal_error_body
from waymark.geocode.service import make_geocoding
from waymark.health import healthz, readyz
from waymark.http_head import HeadAsGet
from waymark.jobs.queue import Runtime, make_huey
from waymark.maintenance.mode import ReadOnlyGuard, ReadOnlyMode
from waymark.maps.snapshots import Publisher
from waymark.observability import wiring as observability
from waymark.openapi import document_error_format, document_layer_style
from waymark.pages import ROUTES as PAGE_ROUTES
from waymark.pages import template_config
from waymark.realtime.setup import Realtime
from waymark.realtime.shutdown import close_websockets_on_stop
from waymark.security.headers import SecurityHeadersMiddleware
from waymark.settings import Settings, load_settings
from waymark.storage.crypto import open_object_store
from waymark.web import Services, http_exception_to_api, provide_actor
from waymark.web_assets import ROUTES as ASSET_ROUTES
from waymark.web_assets import gazetteer_path

log = logging.getLogger("waymark")


def _api_error(request: Request, exc: ApiError) -> Response:
    return Response(exc.body(), status_code=exc.status_code, headers=exc.headers)


def _http_error(request: Request, exc: HTTPException) -> Response:
    return _api_error(request, http_exception_to_api(exc))


def _internal_error(request: Request, exc: Exception) -> Response:
    if database_unavailable(exc):  # a fail-over, not a bug: 503 with Retry-After
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                    str(exc).splitlines()[0][:200])
        return _api_error(request, database_unavailable_error())
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(internal_error_body(), status_code=500)


def _stores(settings: Settings) -> dict:
    if settings.session_store == "file" or settings.broker_socket is not None:  # shared
        sessions = FileStore(settings.data_dir / "sessions", create_directories=True)
    else:
        sessions = MemoryStore()
    return {"sessions": sessions, "cache": MemoryStore()}


def setup_process(settings: Settings) -> None:
    """What an app worker sets up for its whole process, once, before create_app: JSON logs
    at WAYMARK_LOG_LEVEL, build info, error tracking, and (under granian) websockets closed
    with 1012 on SIGTERM. Not in create_app, which changes nothing outside the app it builds
    (two apps in one process keep their own settings; docs/decisions/0023)."""
    observability.setup_process(settings)
    close_websockets_on_stop()


def create_app(settings: Settings | None = None) -> Litestar:
    """The app for `settings`: everything it uses hangs off it (services, queue, stores)."""
    settings = settings or load_settings()
    db = Database.for_settings(settings)
    store = open_object_store(settings)  # encrypted at rest unless WAYMARK_ENCRYPT_OBJECTS=false
    publisher = Publisher(db, store, delay=settings.snapshot_delay_ms / 1000,
                          on_error=lambda layer_id, exc: log.warning(
                              "snapshot publish failed for layer %s: %s", layer_id, exc))
    realtime = Realtime(settings, db)  # Redis layer (or embedded): realtime, cache, limits
    services = Services(settings=settings, db=db, store=store,
                        make_queue=lambda: make_huey(settings, Runtime(settings, db, store)),
                        publisher=publisher,
                        snapshot_cache=realtime.cache.lru, edits=realtime.edits,
                        cache=realtime.cache, read_only=ReadOnlyMode(db),
                        presets=settings.basemap_presets,
                        geocoder=make_geocoding(settings, realtime.cache, gazetteer_path))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        publisher.start()
        if db.checkpointer is not None:
            db.checkpointer.start()
        await realtime.start()
        try:
            yield
        finally:
            await realtime.close()
            await to_thread.run_sync(publisher.stop)
            db.dispose()

    session_config = SessionConfig(key=COOKIE, store="sessions", secure=settings.cookie_secure,
                                   httponly=True, samesite="lax", max_age=settings.session_max_age)
    app = Litestar(
        route_handlers=[healthz, readyz, api_docs, *ACCOUNT_ROUTES, *RESET_ROUTES, *ADMIN_ROUTES,
                        *MAP_ROUTES, *FEATURE_ROUTES, *IO_ROUTES, *PAGE_ROUTES, *ASSET_ROUTES,
                        *BASEMAP_ROUTES, *GEOCODE_ROUTES, *observability.routes(settings),
                        *realtime.routes],
        dependencies={"actor": Provide(observability.track_user(provide_actor))},
        middleware=[session_config.middleware, realtime.middleware(),
                    DefineMiddleware(ReadOnlyGuard, mode=services.read_only)],
        stores={**_stores(settings), **realtime.stores()},
        template_config=template_config(),
        exception_handlers={ApiError: _api_error, HTTPException: _http_error,
                            Exception: _internal_error},
        after_exception=[observability.exception_hook(settings)],
        logging_config=None,  # observability/logging.py configures logging
        openapi_config=OpenAPIConfig(title="Waymark API", version=__version__, path="/api",
                                     render_plugins=[], description=(
                                         "Maps, layers, features, import/export. Errors are "
                                         '{"error": {"code", "message", "details"}}.')),
        request_max_body_size=settings.max_upload_bytes,
        lifespan=[lifespan],
        plugins=[ServicesPlugin(services, realtime)],  # `services`, `realtime`, `limiter`
        debug=settings.debug,
    )
    document_error_format(app)  # the schema shows the real error body
    document_layer_style(app)  # and the layer style document
    # security headers on every response, routed or not (404, 405, 429 included); anonymous
    # reads of cached published layers are answered before the framework, with the same headers
    app.asgi_handler = HeadAsGet(PublishedReads(
        SecurityHeadersMiddleware(app.asgi_handler, services.presets), services,
        realtime.limiter, COOKIE))
    return observability.instrument(app, settings)  # request ids, HTTP metrics, access log
