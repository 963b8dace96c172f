"""Serving /metrics: the multiprocess setup, scrape-time collectors and the listener.

`waymark serve` calls `prepare_multiprocess_dir` before any worker starts (every process
then writes its samples to files there) and `start_metrics_server` in the parent process:
a tiny threaded HTTP server on WAYMARK_METRICS_PORT that adds up all processes' files at
each scrape. With WAYMARK_METRICS_TOKEN set, it (and /metrics on the main app port,
see `metrics_route`) requires `Authorization: Bearer <token>`.

This module must not import observability/metrics.py at module level: the parent process only
reads other processes' files, it does not record samples of its own.
"""

from __future__ import annotations

import contextlib
import glob
import hmac
import logging
import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler, make_wsgi_app
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger("waymark.metrics")
REDIS_QUEUE_KEY = "huey.redis.waymark"  # RedisHuey("waymark") in jobs/queue.py
_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def prepare_multiprocess_dir(data_dir: Path) -> Path:
    """A fresh, empty directory for this run's metric files; exported to child processes."""
    path = Path(os.environ.get(MULTIPROC_ENV) or (data_dir / "prometheus")).resolve()
    if path.is_dir():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def _reap_dead_processes(path: str) -> None:
    """Drop live-gauge files of processes that died (a crashed or reloaded worker)."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = _LIVE_FILE.search(name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, path)
        except PermissionError:
            pass


class _Reaping(MultiProcessCollector):
    def collect(self) -> Any:
        _reap_dead_processes(self._path)
        return super().collect()


class ScrapeCollector(Collector):
    """Values read at scrape time rather than recorded: queue depth, free disk space."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._redis: Any = None

    def _queue_depth(self) -> float | None:
        try:
            if self.settings.redis_url:
                return self._redis_queue_depth()
            return _sqlite_queue_depth((self.settings.data_dir / "jobs.db").resolve())
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because of the queue
            log.warning("queue depth unavailable: %s", exc)
            return None

    def _redis_queue_depth(self) -> float:
        """The length of Huey's Redis list (what RedisHuey.pending_count reads), with the
        redis client alone: huey would also bring psycopg into the serve process."""
        if self._redis is None:
            import redis

            from waymark.ops.redis import sync_sentinel_pool

            if self.settings.redis_target.is_sentinel:  # the primary Sentinel names, as the queue
                self._redis = redis.Redis(connection_pool=sync_sentinel_pool(self.settings.redis_url))
            else:
                self._redis = redis.Redis.from_url(self.settings.redis_url, socket_timeout=2,
                                                   socket_connect_timeout=2)
        return float(self._redis.llen(REDIS_QUEUE_KEY))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = self._queue_depth()
        if depth is not None:
            yield GaugeMetricFamily("waymark_jobs_queue_depth",
                                    "Jobs waiting in the queue (not yet started).",
                                    value=depth)
        path = str(Path(self.settings.data_dir).resolve())
        try:
            usage = shutil.disk_usage(_existing(Path(path)))
        except OSError:
            return
        free = GaugeMetricFamily("waymark_data_dir_free_bytes",
                                 "Free bytes on the filesystem of the data directory "
                                 "(available to the app's user).", labels=["path"])
        free.add_metric([path], float(usage.free))
        yield free
        size = GaugeMetricFamily("waymark_data_dir_size_bytes",
                                 "Size in bytes of the filesystem of the data directory.",
                                 labels=["path"])
        size.add_metric([path], float(usage.total))
        yield size


def _sqlite_queue_depth(path: Path) -> float:
    """Jobs waiting in Huey's SQLite queue, read with sqlite3 (what SqliteHuey.pending_count
    runs): importing huey would import redis and psycopg into the serve process."""
    if not path.exists():
        return 0.0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                            timeout=2)) as conn:
        try:
            return float(conn.execute("SELECT count(id) FROM task WHERE queue = ?",
                                      ("waymark",)).fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return 0.0  # no job queued yet
            raise


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def scrape_registry(settings: Any) -> CollectorRegistry:
    """What a scrape returns: all processes' files (multiprocess) or this process's own."""
    path = os.environ.get(MULTIPROC_ENV)
    registry = CollectorRegistry(auto_describe=False)
    if path and os.path.isdir(path):
        from waymark.observability.process_metrics import ProcessTreeCollector

        _Reaping(registry, path)
        registry.register(ProcessTreeCollector())  # memory and CPU of every process
    else:
        import waymark.observability.metrics  # noqa: F401 - make sure every metric is registered

        registry.register(_Delegate(REGISTRY))
    registry.register(ScrapeCollector(settings))
    return registry


class _Delegate(Collector):
    def __init__(self, inner: CollectorRegistry) -> None:
        self.inner = inner

    def collect(self) -> Any:
        return self.inner.collect()


def authorized(header: str | None, token: str) -> bool:
    if not token:
        return True
    expected = f"Bearer {token}"
    return header is not None and hmac.compare_digest(header.encode(), expected.encode())


def metrics_wsgi_app(settings: Any) -> Any:
    inner = make_wsgi_app(scrape_registry(settings))
    token = settings.metrics_token

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "/") not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: scrape /metrics\n"]
        if not authorized(environ.get("HTTP_AUTHORIZATION"), token):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                ("WWW-Authenticate", "Bearer")])
            return [b"unauthorized\n"]
        return inner(environ, start_response)

    return app


def start_metrics_server(settings: Any, host: str, port: int) -> ThreadingWSGIServer | None:
    """Serve /metrics on host:port from a daemon thread; None (logged) if the port is busy."""
    from wsgiref.simple_server import make_server

    try:
        server = make_server(host, port, metrics_wsgi_app(settings), ThreadingWSGIServer,
                             handler_class=_SilentHandler)
    except OSError as exc:
        log.error("metrics listener not started on %s:%s: %s", host, port, exc)
        return None
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="metrics")
    thread.start()
    return server


GRANIAN_LOG_CONFIG = Path(__file__).with_name("granian-logging.json")


def prepare_serve(settings: Any, host: str) -> list[str]:
    """`waymark serve`, before starting granian: JSON logs in this process, a fresh metrics
    directory for the workers, the /metrics listener; returns extra granian arguments."""
    from waymark.observability.logging import configure_logging

    configure_logging(settings.log_level)
    path = prepare_multiprocess_dir(settings.data_dir)
    if settings.metrics_port and start_metrics_server(settings, host, settings.metrics_port):
        log.info("metrics on http://%s:%s/metrics (files in %s)", host,
                 settings.metrics_port, path)
    return ["--log-config", str(GRANIAN_LOG_CONFIG)]


def metrics_route(settings: Any) -> list[Any]:
    """GET /metrics on the main app, only when WAYMARK_METRICS_TOKEN is set (bearer auth)."""
    if not settings.metrics_token:
        return []
    from litestar import Request, Response, get  # the serve process never serves this route

    registry = scrape_registry(settings)
    token = settings.metrics_token

    @get("/metrics", include_in_schema=False, sync_to_thread=True,
         signature_namespace={"Request": Request, "Response": Response})
    def metrics_endpoint(request: Request) -> Response:
        if not authorized(request.headers.get("authorization"), token):
            return Response(b"unauthorized\n", status_code=401, media_type="text/plain",
                            headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})

    return [metrics_endpoint]


__all__ = [
    "MULTIPROC_ENV",
    "metrics_route",
    "prepare_multiprocess_dir",
    "prepare_serve",
    "scrape_registry",
    "start_metrics_server",
]
