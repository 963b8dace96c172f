"""Huey configuration and the tasks it runs.

Tasks receive only ids; they find the database and object store through `runtime`, which
the app factory (web process) or `waymark worker` (worker process) sets up.
"""

from __future__ import annotations

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
    _huey = huey
    return huey


def enqueue_import(huey: Huey, job_public_id: str) -> None:
    huey.import_task(job_public_id)  # type: ignore[attr-defined]
