"""Huey configuration and the tasks it runs.

Tasks receive only ids; they find the database, object store and settings in the queue's
own `Runtime` (`runtime_of(huey)`), given by the app factory (web process) or `waymark
worker` (worker process). Nothing is module-global, so two apps in one process each run
their jobs with their own settings (docs/decisions/0023-settings-parsed-once.md).
"""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from waymark.db.engine import Database
from waymark.jobs.periodic import OncePerPeriod
from waymark.settings import Settings
from waymark.storage import ObjectStore

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # imported where a queue is made: huey loads redis and psycopg with it
    from huey import Huey


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: ObjectStore


READ_ONLY_RETRY_SECONDS = 60  # a queued import waits this long while the service is read-only


def set_runtime(huey: Huey, runtime: Runtime) -> None:
    """Give `huey`'s tasks their database, object store and settings."""
    huey.runtime = runtime  # type: ignore[attr-defined]


def runtime_of(huey: Huey) -> Runtime:
    found: Runtime | None = getattr(huey, "runtime", None)
    if found is None:
        raise RuntimeError("job runtime not configured (create_app or `waymark worker` does it)")
    return found


def skip_unused_client_libraries(settings: Settings) -> None:
    """In a process that imports Huey and will never use Redis or PostgreSQL: huey imports
    the redis and psycopg packages whenever they are installed, about 27 MB (PSS) for
    nothing (bench/RESULTS.md, memory). ``sys.modules[name] = None`` is Python's documented
    way to stop an import. Called by the job worker and app workers only -- never in a
    process that may still connect to Redis or PostgreSQL later (tests, other commands)."""
    if not settings.redis_url:
        sys.modules.setdefault("redis", None)  # type: ignore[arg-type]
    if settings.is_sqlite:
        sys.modules.setdefault("psycopg", None)  # type: ignore[arg-type]


class _Periodic(OncePerPeriod):
    runtime: Runtime | None = None  # set_runtime

    def database(self) -> Database:
        return runtime_of(self).db  # type: ignore[arg-type]


def _queue_class(redis: bool) -> type:
    """Huey's Redis or SQLite queue with periodic tasks run once per period across workers.
    Made here, not at import: huey loads redis and psycopg with it."""
    from huey import RedisHuey, SqliteHuey

    base = RedisHuey if redis else SqliteHuey
    return type(f"Waymark{base.__name__}", (_Periodic, base), {})


def make_huey(settings: Settings, runtime: Runtime | None = None) -> Huey:
    """Build the queue and register tasks on it; its tasks run with `runtime` (or the one
    given later with set_runtime). Called once per app or worker."""
    from huey import crontab

    if settings.redis_url:
        from waymark.ops.redis import sync_sentinel_pool

        storage: dict[str, Any] = {"url": settings.redis_url}
        if settings.redis_target is not None and settings.redis_target.is_sentinel:
            storage = {"connection_pool": sync_sentinel_pool(settings.redis_url)}
        huey: Huey = _queue_class(redis=True)("waymark", immediate=settings.jobs_immediate, **storage)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        huey = _queue_class(redis=False)("waymark",
                                 filename=str((settings.data_dir / "jobs.db").resolve()),
                                 immediate=settings.jobs_immediate)

    @huey.task(retries=0, name="import")
    def import_task(job_public_id: str) -> None:
        from waymark.maintenance.mode import read_state
        from waymark.maps.import_jobs import run_import_job
        from waymark.observability import metrics

        rt = runtime_of(huey)
        if read_state(rt.db) is not None:  # accepted before: wait, do not fail
            import_task.schedule((job_public_id,), delay=READ_ONLY_RETRY_SECONDS)
            return
        run_import_job(rt.db, rt.store, job_public_id, rt.settings.job_stale_seconds,
                       record=metrics.import_finished)

    huey.import_task = import_task  # type: ignore[attr-defined]

    @huey.task(retries=2, retry_delay=60, name="password_reset_mail")
    def password_reset_mail_task(email: str) -> None:
        from waymark.accounts.reset import send_reset_mail

        rt = runtime_of(huey)
        send_reset_mail(rt.settings, rt.db, email)

    huey.password_reset_mail_task = password_reset_mail_task  # type: ignore[attr-defined]

    @huey.periodic_task(crontab(), name="requeue_stale_jobs")
    def requeue_stale_jobs_task() -> None:
        requeue_stale_jobs(huey)

    _register_data_safety_tasks(huey, settings)
    _register_maintenance_tasks(huey)
    if runtime is not None:
        set_runtime(huey, runtime)
    return huey


def requeue_stale_jobs(huey: Huey) -> list[str]:
    """Enqueue again the import jobs whose worker died (or whose message was lost); the job's
    own claim makes sure only one worker runs each (maps/import_jobs.py)."""
    from waymark.maps.import_jobs import stale_jobs

    rt = runtime_of(huey)
    ids = stale_jobs(rt.db, rt.settings.job_stale_seconds)
    for job_id in ids:
        enqueue_import(huey, job_id)
    return ids


def enqueue_import(huey: Huey, job_public_id: str) -> None:
    huey.import_task(job_public_id)  # type: ignore[attr-defined]


# ---- periodic data-safety tasks (docs/operations/backup.md) ----------------------------------
def _register_data_safety_tasks(huey: Huey, settings: Settings) -> None:
    """Retention every hour; with WAYMARK_BACKUP_URL also the object backup (every 5 min),
    the replication-lag metric (every minute) and a configuration backup (daily); on a
    self-hosted PostgreSQL also a pgBackRest base backup (daily)."""
    from huey import crontab

    @huey.periodic_task(crontab(minute="17"), name="retention")
    def retention_task() -> None:
        from waymark.maintenance.mode import read_state
        from waymark.maps.retention import run_retention
        from waymark.observability import metrics

        rt = runtime_of(huey)
        if read_state(rt.db) is not None:  # read-only: nothing changes (e.g. during a copy)
            log.info("retention skipped: the service is read-only")
            return
        run_retention(rt.settings, rt.db, rt.store, record=metrics.retention_finished)

    if not settings.backup_url:
        return

    @huey.periodic_task(crontab(minute="*/5"), name="backup_objects")
    def backup_objects_task() -> None:
        from waymark.backup.objects import backup_objects

        backup_objects(runtime_of(huey).settings)

    @huey.periodic_task(crontab(minute="30", hour="3"), name="backup_config")
    def backup_config_task() -> None:
        from waymark.backup.config import backup_config

        backup_config(runtime_of(huey).settings)

    if settings.is_sqlite:
        @huey.periodic_task(crontab(), name="backup_lag")
        def backup_lag_task() -> None:
            from waymark.backup.status import record_metrics

            record_metrics(runtime_of(huey).settings)
    elif not settings.postgres_managed:  # PostgreSQL with pgBackRest (backup/pgbackrest.py)
        if shutil.which("pgbackrest"):  # a worker on the database host; elsewhere: cron there
            @huey.periodic_task(crontab(minute="15", hour="1"), name="pg_backup")
            def pg_backup_task() -> None:
                from waymark.backup.pg_backup import take_backup

                take_backup(runtime_of(huey).settings)  # full weekly, differential the other days

        @huey.periodic_task(crontab(), name="backup_lag")
        def pg_backup_lag_task() -> None:
            from waymark.backup.pg_backup import push_wal
            from waymark.backup.pg_status import record_metrics

            status = record_metrics(runtime_of(huey).settings)
            push_wal(runtime_of(huey).settings, status.lag_seconds)  # WAL archive_timeout forgot


# ---- periodic routine maintenance (docs/operations/maintenance.md) ---------------------------
def _register_maintenance_tasks(huey: Huey) -> None:
    """One periodic task per maintenance job, on the job's own schedule; a job whose setting
    switches it off reports "skipped" and does nothing."""
    from huey import crontab

    from waymark.maintenance.jobs import jobs

    for job in jobs():
        def run(name: str = job.name) -> None:
            from waymark.maintenance.jobs import run_jobs

            rt = runtime_of(huey)
            run_jobs(rt.settings, rt.db, rt.store, [name])

        huey.periodic_task(crontab(**job.schedule), name=f"maintenance_{job.name}")(run)
