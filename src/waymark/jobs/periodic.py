"""Periodic tasks that run once per period, however many job workers there are.

Every `waymark worker` runs Huey's scheduler, and each one enqueues every periodic task
whose schedule matches the current minute. So that the work is done once, each enqueued
run carries the minute it was scheduled for, and before working it claims that minute
in the database: an INSERT into `periodic_runs` keyed by (task, minute). The first worker
to insert runs the task; the others get a unique-key violation and skip. The claim is
atomic on SQLite and PostgreSQL alike and needs nothing but the database every worker
already shares.

`OncePerPeriod` puts this into `periodic_task` itself, so every periodic task registered
on Waymark's queue gets it without asking. A task called directly (tests, the CLI) runs.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from waymark.db.engine import Database
from waymark.db.models import PeriodicRun, utcnow
from waymark.ids import process_name

log = logging.getLogger("waymark.jobs")
KEEP_RUNS = timedelta(days=14)  # claims older than this are pruned as new ones are made


def claim(db: Database, name: str, scheduled_for: datetime) -> bool:
    """True if this process is the one to run ``name`` for ``scheduled_for``."""
    try:
        with db.write() as session:
            session.add(PeriodicRun(name=name, scheduled_for=scheduled_for,
                                    claimed_by=process_name(), claimed_at=utcnow()))
    except IntegrityError:
        return False
    with db.write() as session:
        session.execute(delete(PeriodicRun).where(PeriodicRun.name == name,
                                                  PeriodicRun.scheduled_for
                                                  < scheduled_for - KEEP_RUNS))
    return True


def finished(db: Database, name: str, scheduled_for: datetime) -> None:
    with db.write() as session:
        session.execute(update(PeriodicRun).where(PeriodicRun.name == name,
                                                  PeriodicRun.scheduled_for == scheduled_for)
                        .values(finished_at=utcnow()))


class OncePerPeriod:
    """Mixed into a Huey class: periodic tasks claim their scheduled minute before running.

    ``database`` returns the Database to claim in (the job runtime's, set once the worker
    has started)."""

    database: Callable[[], Database]

    def periodic_task(self, validate_datetime: Any, *args: Any, name: str | None = None,
                      **kwargs: Any) -> Callable[[Callable[..., None]], Any]:
        parent = super().periodic_task  # type: ignore[misc]

        def decorator(fn: Callable[..., None]) -> Any:
            task_name = name or fn.__name__

            @functools.wraps(fn)
            def once(scheduled: str | None = None, **kwargs: Any) -> None:
                if scheduled is None:  # called directly, not from a worker's scheduler
                    fn(**kwargs)
                    return
                minute = datetime.fromisoformat(scheduled)
                db = self.database()
                if not claim(db, task_name, minute):
                    log.info("periodic task %s for %s: claimed by another worker", task_name,
                             scheduled)
                    return
                log.info("periodic task %s for %s: running", task_name, scheduled)
                fn(**kwargs)  # e.g. task=... for context=True tasks
                finished(db, task_name, minute)

            return parent(validate_datetime, *args, name=name, **kwargs)(once)

        return decorator

    def read_periodic(self, timestamp: datetime | None) -> list[Any]:
        """The periodic tasks due now, each carrying the minute it is scheduled for."""
        timestamp = timestamp or self._get_timestamp()  # type: ignore[attr-defined]
        minute = timestamp.replace(second=0, microsecond=0)
        if minute.tzinfo is None:
            minute = minute.replace(tzinfo=UTC)  # Huey's clock is naive UTC
        due = super().read_periodic(timestamp)  # type: ignore[misc]
        return [type(task)(args=(minute.isoformat(),)) for task in due]
