"""Every Prometheus metric Waymark exports, in one place, so other modules import them here.

Several granian workers (and the job worker) are separate processes: `waymark serve` sets
PROMETHEUS_MULTIPROC_DIR to a fresh directory before they start, so each process writes
its samples to memory-mapped files there and the metrics listener adds them up at scrape
time (see observability/metrics_server.py and docs/decisions/0005-metrics-and-logs.md). Without
that variable (tests, a single process) the default in-process registry is used.

Gauges say how values from several processes combine (`multiprocess_mode`):
`livesum` for things each live process holds (requests in flight, websocket
connections), `max`/`min`/`mostrecent` for process-independent facts.

Metrics for parts that do not exist yet (Redis, websockets, rate limits, backups) are
defined here already, with the names the later code must use; they read zero until used.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from waymark import __version__

# ---- HTTP ---------------------------------------------------------------------------------
# Latency objective: 99 % of requests under 0.5 s (deploy/prometheus/rules/waymark.yml);
# 0.5 must stay a bucket boundary.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "<unmatched>"  # 404s and other requests no route handled: one label value

HTTP_REQUESTS = Counter(
    "waymark_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "waymark_http_request_duration_seconds",
    "Time from request start to the last byte of the response, by route template and method.",
    ["route", "method"],
    buckets=HTTP_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "waymark_http_requests_in_flight",
    "HTTP requests being processed right now (all live processes; each process writes its "
    "count at most once a second, and at once when it returns to zero).",
    multiprocess_mode="livesum",
)
HTTP_RESPONSE_BYTES = Counter(
    "waymark_http_response_bytes_total",
    "Response body bytes sent, by route template.",
    ["route"],
)
UNHANDLED_EXCEPTIONS = Counter(
    "waymark_unhandled_exceptions_total",
    "Exceptions no handler expected (answered with 500), by exception type.",
    ["exception"],
)

# ---- database -------------------------------------------------------------------------------
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
DB_QUERY_DURATION = Histogram(
    "waymark_db_query_duration_seconds",
    "Database statement execution time, by statement kind (select, insert, update, ...).",
    ["operation"],
    buckets=DB_BUCKETS,
)

# ---- caches ---------------------------------------------------------------------------------
CACHE_REQUESTS = Counter(
    "waymark_cache_requests_total",
    "Cache lookups by cache level (process = per-process LRU, redis = shared) and result "
    "(hit or miss).",
    ["level", "result"],
)

# ---- real time (websockets) -------------------------------------------------------------------
WS_CONNECTIONS = Gauge(
    "waymark_ws_connections",
    "Open websocket connections, per live process (label pid; sum them for the server).",
    multiprocess_mode="liveall",
)
WS_MESSAGES = Counter(
    "waymark_ws_messages_total",
    "Websocket messages, by direction (in = from clients, out = to clients).",
    ["direction"],
)

# ---- rate limiting ----------------------------------------------------------------------------
RATELIMIT_REJECTIONS = Counter(
    "waymark_ratelimit_rejections_total",
    "Requests refused with 429 by the rate limiter, by route class (auth, api, write, ...).",
    ["route_class"],
)
RATELIMIT_FAILOPEN = Counter(
    "waymark_ratelimit_failopen_total",
    "Requests let through without a rate-limit check because Redis was unavailable "
    "(the limiter fails open), by route class.",
    ["route_class"],
)

# ---- Redis --------------------------------------------------------------------------------------
REDIS_UP = Gauge(
    "waymark_redis_up",
    "1 when the app reaches Redis, 0 when not (the lowest value over live processes); "
    "absent-or-zero when no Redis is configured (see waymark_redis_configured).",
    multiprocess_mode="livemin",
)
REDIS_CONFIGURED = Gauge(
    "waymark_redis_configured",
    "1 when WAYMARK_REDIS_URL is set.",
    multiprocess_mode="max",
)
REDIS_ERRORS = Counter(
    "waymark_redis_errors_total",
    "Redis commands that failed because Redis could not serve them, by error type "
    "(TimeoutError, ConnectionError, ...); the app falls back or retries, so a rate above "
    "zero means degraded. Recorded by RedisHub.run (backends/redis/hub.py).",
    ["error"],
)

# ---- jobs -----------------------------------------------------------------------------------------
JOBS_FINISHED = Counter(
    "waymark_jobs_finished_total",
    "Background jobs finished, by kind and status (done or failed).",
    ["kind", "status"],
)
IMPORT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
IMPORT_DURATION = Histogram(
    "waymark_import_duration_seconds",
    "Import job duration (read, validate, write features), by file format and status.",
    ["format", "status"],
    buckets=IMPORT_BUCKETS,
)
# waymark_jobs_queue_depth is collected at scrape time: see observability/metrics_server.py.

# ---- object storage --------------------------------------------------------------------------------
STORE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STORE_DURATION = Histogram(
    "waymark_objectstore_operation_duration_seconds",
    "Object store call duration, by operation (get, put, put_if_absent, head, delete, list, "
    "ping).",
    ["operation"],
    buckets=STORE_BUCKETS,
)
STORE_ERRORS = Counter(
    "waymark_objectstore_errors_total",
    "Object store calls that failed (a missing object on a read is not a failure), by "
    "operation.",
    ["operation"],
)

# ---- backups ------------------------------------------------------------------------------------
BACKUP_LAG = Gauge(
    "waymark_backup_lag_seconds",
    "How far the continuous backup replica is behind the database, in seconds (set every "
    "minute by the worker's backup_lag job: backup/status.record_metrics).",
    multiprocess_mode="mostrecent",
)
class _NewestTime(Gauge):
    """A timestamp gauge that only moves forward. Two jobs in the worker report backup
    successes (object backup: now; replication: Litestream's last sync, which stays old
    while the database is idle): the newest must win, not the last one written."""

    def set(self, value: float) -> None:
        if float(value) > self._value.get():
            super().set(value)


BACKUP_LAST_SUCCESS = _NewestTime(
    "waymark_backup_last_success_timestamp_seconds",
    "Unix time of the newest successful backup (object copy or database replication); "
    "0 = never. Set by backup/objects.py and backup/status.record_metrics.",
    multiprocess_mode="max",
)
BACKUP_BASE_LAST = _NewestTime(
    "waymark_backup_base_timestamp_seconds",
    "PostgreSQL: Unix time the newest pgBackRest base backup (full or differential) "
    "finished; 0 = none yet. Set by backup/pg_status.record_metrics.",
    multiprocess_mode="max",
)
OBJECT_BACKUP_COPIED = Counter(
    "waymark_backup_objects_copied_total",
    "Objects copied to backup storage by the incremental object backup.",
)
RETENTION_ITEMS = Counter(
    "waymark_retention_items_total",
    "Items handled by the retention jobs, by action: map_archived (trash -> archive, rows "
    "purged), archive_purged (archive retention ended), snapshot_archived, "
    "snapshot_archive_purged.",
    ["action"],
)
RETENTION_LAST_RUN = Gauge(
    "waymark_retention_last_run_timestamp_seconds",
    "Unix time the retention job last finished successfully; 0 = never.",
    multiprocess_mode="max",
)

# ---- accounts and maintenance -----------------------------------------------------------------
PASSWORD_RESET_MAILS = Counter(
    "waymark_password_reset_mails_total",
    "Password-reset requests handled by the mail job, by outcome: sent, failed (SMTP error), "
    "no_account (unknown or disabled address: nothing sent).",
    ["outcome"],
)
MAINTENANCE_ITEMS = Counter(
    "waymark_maintenance_items_total",
    "Items handled by the routine maintenance jobs (maintenance/jobs.py), by job: pages "
    "vacuumed, staging layers, live positions, sessions, config backups, jobs, changes "
    "removed.",
    ["task"],
)
MAINTENANCE_RUNS = Counter(
    "waymark_maintenance_runs_total",
    "Runs of the routine maintenance jobs, by job and outcome (done, failed, skipped: the "
    "service was read-only or the job is switched off).",
    ["task", "outcome"],
)
MAINTENANCE_LAST_SUCCESS = Gauge(
    "waymark_maintenance_last_success_timestamp_seconds",
    "Unix time each maintenance job last finished; 0 = never.",
    ["task"],
    multiprocess_mode="max",
)
DB_FREE_PAGES = Gauge(
    "waymark_db_free_pages",
    "SQLite: pages on the free list (reclaimed by the database job's incremental vacuum "
    "above WAYMARK_VACUUM_FREE_PAGES). PostgreSQL: dead tuples over all tables.",
    multiprocess_mode="mostrecent",
)

# ---- build ----------------------------------------------------------------------------------------
BUILD_INFO = Gauge(
    "waymark_build_info",
    "Always 1; the labels say which build runs.",
    ["version", "commit"],
    multiprocess_mode="max",
)

def set_build_info(commit: str) -> None:
    BUILD_INFO.labels(version=__version__, commit=commit or "unknown").set(1)


# ---- recorders handed to the domain's jobs (maps/ imports no metrics) ----------------------------
def import_finished(fmt: str, status: str, seconds: float) -> None:
    """An import job ended (done, failed, superseded): counted, and its duration by format."""
    JOBS_FINISHED.labels(kind="import", status=status).inc()
    IMPORT_DURATION.labels(format=fmt or "unknown", status=status).observe(seconds)


def retention_finished(counts: Mapping[str, int]) -> None:
    """A retention pass ended: the items it handled by action, and when."""
    for action, count in counts.items():
        if count:
            RETENTION_ITEMS.labels(action=action).inc(count)
    RETENTION_LAST_RUN.set(time.time())


# ---- helpers used on hot paths -------------------------------------------------------------------
_PROCESS_HIT = CACHE_REQUESTS.labels(level="process", result="hit")
_PROCESS_MISS = CACHE_REQUESTS.labels(level="process", result="miss")


def process_cache(hit: bool) -> None:
    (_PROCESS_HIT if hit else _PROCESS_MISS).inc()


_DB_OPS = ("select", "insert", "update", "delete", "begin", "commit", "pragma", "with")
_DB_CHILDREN = {op: DB_QUERY_DURATION.labels(operation=op) for op in (*_DB_OPS, "other")}


def instrument_engine(engine: Any) -> None:
    """Time every statement of a SQLAlchemy engine (cursor execute events)."""
    from sqlalchemy import event

    if getattr(engine, "_waymark_instrumented", False):
        return
    engine._waymark_instrumented = True

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        conn.info.setdefault("waymark_t0", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        stack = conn.info.get("waymark_t0")
        if not stack:
            return
        elapsed = time.perf_counter() - stack.pop()
        head = statement.lstrip()[:7].lower().split(None, 1)
        child = _DB_CHILDREN.get(head[0] if head else "") or _DB_CHILDREN["other"]
        child.observe(elapsed)

    @event.listens_for(engine, "handle_error")
    def _error(context):  # type: ignore[no-untyped-def]
        conn = context.connection
        if conn is not None:
            stack = conn.info.get("waymark_t0")
            if stack:
                stack.pop()


__all__ = [name for name in dir() if name.isupper() and not name.startswith("_")] + [
    "set_build_info", "process_cache", "instrument_engine"]
