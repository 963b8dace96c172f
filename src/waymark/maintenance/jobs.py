"""Routine maintenance: the jobs, their schedule, and the runner that reports on them.

Each job has a setting (docs/configuration.md), a schedule (run periodically by the job
worker, registered in jobs/queue.py like retention and backups), the metrics
`waymark_maintenance_runs_total{task,outcome}`, `…_items_total{task}` and
`…_last_success_timestamp_seconds{task}` (label `task`: `job` is Prometheus's own), and a test. `waymark maintenance run [--only NAME]`
runs them by hand. Nothing runs while the service is read-only: that is when operators copy
or restore the database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from waymark.db.engine import Database
from waymark.settings import Settings
from waymark.storage import ObjectStore

log = logging.getLogger("waymark.maintenance")
BATCH_ROWS = 5000  # rows deleted per write transaction


@dataclass
class Context:
    settings: Settings
    db: Database
    store: ObjectStore
    now: datetime


@dataclass
class Outcome:
    """What one job did: a count of items (pages, rows, files) and details for the report."""

    items: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MaintenanceJob:
    name: str
    setting: str  # the WAYMARK_* variable that governs it
    schedule: dict[str, str]  # huey crontab(...) arguments
    run: Callable[[Context], Outcome]
    enabled: Callable[[Settings], bool] = lambda settings: True
    about: str = ""


@dataclass
class JobReport:
    job: str
    outcome: str  # done | skipped | failed
    items: int = 0
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job, "outcome": self.outcome, "items": self.items,
                "seconds": round(self.seconds, 3), "detail": self.detail}


def jobs() -> tuple[MaintenanceJob, ...]:
    """Every job, in the order `waymark maintenance run` runs them."""
    from waymark.maintenance import cleanup, database, history

    return (
        MaintenanceJob("database", "WAYMARK_VACUUM_FREE_PAGES", {"minute": "10", "hour": "4"},
                       database.run, about="SQLite: PRAGMA optimize, incremental vacuum above "
                       "the free-page threshold; PostgreSQL: ANALYZE and a bloat report"),
        MaintenanceJob("staging_layers", "WAYMARK_STAGING_LAYER_HOURS", {"minute": "40"},
                       cleanup.staging_layers, about="orphaned import staging layers"),
        MaintenanceJob("live_history", "WAYMARK_LIVE_HISTORY_DAYS", {"minute": "20", "hour": "4"},
                       cleanup.live_history, lambda s: s.live_history_days > 0,
                       about="live positions older than the retention"),
        MaintenanceJob("sessions", "WAYMARK_SESSION_MAX_AGE", {"minute": "50"},
                       cleanup.sessions, lambda s: s.session_store == "file" and not s.redis_url,
                       about="expired sessions of the file session store"),
        MaintenanceJob("config_backups", "WAYMARK_CONFIG_BACKUP_DAYS",
                       {"minute": "40", "hour": "3"}, cleanup.config_backups,
                       lambda s: bool(s.backup_url) and s.config_backup_days > 0,
                       about="configuration backups older than the retention"),
        MaintenanceJob("finished_jobs", "WAYMARK_JOB_RETENTION_DAYS",
                       {"minute": "30", "hour": "4"}, cleanup.finished_jobs,
                       lambda s: s.job_retention_days > 0, about="finished import jobs"),
        MaintenanceJob("history", "WAYMARK_HISTORY_KEEP_DAYS", {"minute": "0", "hour": "5"},
                       history.compact, lambda s: s.history_keep_days > 0,
                       about="change history older than the window, every layer revertible "
                       "to any version inside it"),
    )


def delete_in_batches(db: Database, model: Any, *conditions: Any) -> int:
    """Delete matching rows a batch per write transaction, so other writers wait at most one
    batch; returns how many went."""
    from sqlalchemy import delete, select

    removed = 0
    while True:
        with db.write() as s:
            ids = list(s.scalars(select(model.id).where(*conditions).limit(BATCH_ROWS)))
            if ids:
                s.execute(delete(model).where(model.id.in_(ids)))
        removed += len(ids)
        if len(ids) < BATCH_ROWS:
            return removed


def job_names() -> list[str]:
    return [job.name for job in jobs()]


def run_jobs(settings: Settings, db: Database, store: ObjectStore, only: list[str] | None = None,
             now: datetime | None = None) -> list[JobReport]:
    """Run the named jobs (default: all), each on its own; a failure is reported, not raised."""
    from waymark.maintenance.mode import read_state
    from waymark.observability import metrics

    unknown = set(only or ()) - set(job_names())
    if unknown:
        raise ValueError(f"no maintenance job {', '.join(sorted(unknown))}; "
                         f"the jobs are {', '.join(job_names())}")
    ctx = Context(settings, db, store, now or datetime.now(UTC))
    read_only = read_state(db)
    reports = []
    for job in jobs():
        if only and job.name not in only:
            continue
        if read_only is not None:
            report = JobReport(job.name, "skipped", detail={"reason": "the service is read-only"})
        elif not job.enabled(settings):
            report = JobReport(job.name, "skipped", detail={"reason": f"off ({job.setting})"})
        else:
            report = _run_one(job, ctx)
        metrics.MAINTENANCE_RUNS.labels(task=job.name, outcome=report.outcome).inc()
        if report.outcome == "done":
            metrics.MAINTENANCE_ITEMS.labels(task=job.name).inc(report.items)
            metrics.MAINTENANCE_LAST_SUCCESS.labels(task=job.name).set(time.time())
        reports.append(report)
    return reports


def _run_one(job: MaintenanceJob, ctx: Context) -> JobReport:
    started = time.monotonic()
    try:
        outcome = job.run(ctx)
    except Exception as exc:  # reported, and the other jobs still run
        log.exception("maintenance job %s failed", job.name)
        return JobReport(job.name, "failed", seconds=time.monotonic() - started,
                         detail={"error": f"{type(exc).__name__}: {exc}"[:500]})
    return JobReport(job.name, "done", outcome.items, time.monotonic() - started, outcome.detail)
