"""Huey configuration and the tasks it runs.

Tasks receive only ids; they find the database and object store through `runtime`, which
the app factory (web process) or `waymark worker` (worker process) sets up.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from huey import Huey, RedisHuey, SqliteHuey

from waymark.db.engine import Database
from waymark.settings import Settings
from waymark.storage import ObjectStore


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: ObjectStore


_runtime: Runtime | None = None
_huey: Huey | None = None


def set_runtime(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("job runtime not configured (create_app or `waymark worker` does it)")
    return _runtime


def make_huey(settings: Settings) -> Huey:
    """Build the queue and register tasks on it. Called once per process."""
    global _huey
    if settings.redis_url:
        huey: Huey = RedisHuey("waymark", url=settings.redis_url, immediate=settings.jobs_immediate)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey("waymark", filename=str((settings.data_dir / "jobs.db").resolve()),
                          immediate=settings.jobs_immediate)

    @huey.task(retries=0, name="import")
    def import_task(job_public_id: str) -> None:
        from waymark.maps.import_jobs import run_import_job

        rt = runtime()
        run_import_job(rt.db, rt.store, job_public_id)

    huey.import_task = import_task  # type: ignore[attr-defined]
    _register_data_safety_tasks(huey, settings)
    _huey = huey
    return huey


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
        from waymark.maps.retention import run_retention

        rt = runtime()
        run_retention(rt.settings, rt.db, rt.store)

    if not settings.backup_url:
        return

    @huey.periodic_task(crontab(minute="*/5"), name="backup_objects")
    def backup_objects_task() -> None:
        from waymark.backup.objects import backup_objects

        backup_objects(runtime().settings)

    @huey.periodic_task(crontab(minute="30", hour="3"), name="backup_config")
    def backup_config_task() -> None:
        from waymark.backup.config import backup_config

        backup_config(runtime().settings)

    if settings.is_sqlite:
        @huey.periodic_task(crontab(), name="backup_lag")
        def backup_lag_task() -> None:
            from waymark.backup.status import record_metrics

            record_metrics(runtime().settings)
    elif not settings.postgres_managed:  # PostgreSQL with pgBackRest (backup/pgbackrest.py)
        if shutil.which("pgbackrest"):  # a worker on the database host; elsewhere: cron there
            @huey.periodic_task(crontab(minute="15", hour="1"), name="pg_backup")
            def pg_backup_task() -> None:
                from waymark.backup.pg_backup import take_backup

                take_backup(runtime().settings)  # full weekly, differential the other days

        @huey.periodic_task(crontab(), name="backup_lag")
        def pg_backup_lag_task() -> None:
            from waymark.backup.pg_backup import push_wal
            from waymark.backup.pg_status import record_metrics

            status = record_metrics(runtime().settings)
            push_wal(runtime().settings, status.lag_seconds)  # WAL archive_timeout forgot
