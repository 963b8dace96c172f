"""Observability wiring for a process: logs, build info, error tracking, request layer.

Each app worker (asgi.py, through app.setup_process) and `waymark worker` call
`setup_process` once; create_app calls `exception_hook`, `routes`, `instrument`. Details
live in the modules beside it: logging.py, metrics.py, metrics_server.py,
request_observer.py and errors_tracking.py; the operator's view is in
docs/operations/monitoring.md.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

from waymark import __version__
from waymark.observability import metrics
from waymark.observability.errors_tracking import (
    after_exception,
    capture_job_exception,
    init_error_tracking,
)
from waymark.observability.logging import configure_logging
from waymark.observability.metrics_server import metrics_route
from waymark.observability.request_observer import RequestObserver, track_user

RELEASE = f"waymark@{__version__}"


@functools.lru_cache(maxsize=1)
def _git_commit() -> str:
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return ""
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],  # noqa: S607  # nosec B607
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def build_commit(settings: Any) -> str:
    """WAYMARK_COMMIT (set by the image build), else the git checkout's HEAD, else unknown."""
    return settings.commit or _git_commit() or "unknown"


def setup_process(settings: Any) -> None:
    """Process-wide, once per process before its app or job worker starts (never in
    create_app: building an app changes nothing outside it)."""
    configure_logging(settings.log_level)
    commit = build_commit(settings)
    metrics.set_build_info(commit)
    metrics.REDIS_CONFIGURED.set(1 if settings.redis_url else 0)
    init_error_tracking(settings.sentry_dsn, release=RELEASE, environment=settings.env,
                        commit=commit)


# Jobs that record their own outcome (import_jobs.py catches its errors and counts them,
# by format): the signals below would count them twice.
SELF_COUNTING_JOBS = frozenset({"import"})


def watch_jobs(huey: Any, report_errors: bool) -> None:
    """In the job worker: count every other job's outcome in waymark_jobs_finished_total
    (periodic retention and backup tasks included), and, with `report_errors` (a
    WAYMARK_SENTRY_DSN), report jobs that raise to error tracking, tagged with the task name."""
    from huey.signals import SIGNAL_COMPLETE, SIGNAL_ERROR

    @huey.signal(SIGNAL_COMPLETE)
    def _job_done(signal: str, task: Any, *a: Any) -> None:
        kind = getattr(task, "name", "unknown")
        if kind not in SELF_COUNTING_JOBS:
            metrics.JOBS_FINISHED.labels(kind=kind, status="done").inc()

    @huey.signal(SIGNAL_ERROR)
    def _job_failed(signal: str, task: Any, exc: BaseException | None = None, *a: Any) -> None:
        kind = getattr(task, "name", "unknown")
        if kind not in SELF_COUNTING_JOBS:
            metrics.JOBS_FINISHED.labels(kind=kind, status="failed").inc()
        if exc is not None and report_errors:
            capture_job_exception(exc, job=kind)


def exception_hook(settings: Any) -> Any:
    """The app's after_exception hook: reports to error tracking when its settings say so."""
    return after_exception(bool(settings.sentry_dsn))


def routes(settings: Any) -> list[Any]:
    """Extra route handlers: /metrics on the app port when WAYMARK_METRICS_TOKEN is set."""
    return metrics_route(settings)


def instrument(app: Any, settings: Any) -> Any:
    """Wrap the app's whole ASGI handler (routing included) in the request observer; its
    pending access lines are written when the app shuts down."""
    observer = RequestObserver(app.asgi_handler, slow_request_ms=settings.slow_request_ms,
                               access_log_flush_ms=settings.access_log_flush_ms)
    app.asgi_handler = observer
    app.on_shutdown.append(observer.lines.flush)
    return app


__all__ = [
    "RELEASE",
    "build_commit",
    "exception_hook",
    "instrument",
    "routes",
    "setup_process",
    "track_user",
    "watch_jobs",
]
