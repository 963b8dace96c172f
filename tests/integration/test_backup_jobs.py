"""The periodic data-safety jobs (jobs/queue.py) are scheduled as documented in
docs/operations/backup.md and really do their work when the worker runs them."""

from __future__ import annotations

import json
from datetime import datetime

from tests.conftest import make_settings
from waymark.db.engine import Database
from waymark.jobs.queue import Runtime, make_huey, set_runtime
from waymark.observability import metrics
from waymark.storage.crypto import open_object_store


def _due(huey, when: datetime) -> set[str]:  # type: ignore[no-untyped-def]
    return {task.name for task in huey.read_periodic(when)}


def test_schedule_without_and_with_a_backup_target(tmp_path, sqlite_url):
    plain = make_huey(make_settings(tmp_path / "a", sqlite_url))
    every_minute = {"requeue_stale_jobs"}  # import jobs whose worker died (maps/import_jobs.py)
    assert _due(plain, datetime(2030, 1, 1, 3, 30)) == every_minute
    assert _due(plain, datetime(2030, 1, 1, 5, 17)) == {"retention"} | every_minute

    settings = make_settings(tmp_path / "b", sqlite_url, backup_url=f"file://{tmp_path}/bk")
    huey = make_huey(settings)
    every_minute |= {"backup_lag"}
    assert _due(huey, datetime(2030, 1, 1, 5, 17)) == {"retention"} | every_minute
    assert _due(huey, datetime(2030, 1, 1, 5, 20)) == {"backup_objects"} | every_minute
    assert _due(huey, datetime(2030, 1, 1, 3, 30)) == {"backup_objects", "backup_config"} | \
        every_minute


def test_jobs_do_their_work(tmp_path, sqlite_url):
    settings = make_settings(tmp_path, sqlite_url, backup_url=f"file://{tmp_path}/bk")
    huey = make_huey(settings)
    db = Database(sqlite_url)
    store = open_object_store(settings)
    set_runtime(huey, Runtime(settings, db, store))
    try:
        store.put_sync("uploads/m/u/a.geojson", b"{}")
        retention_before = metrics.RETENTION_LAST_RUN._value.get()
        copied_before = metrics.OBJECT_BACKUP_COPIED._value.get()
        for task in huey.read_periodic(datetime(2030, 1, 1, 3, 30)):
            task.execute()  # raises on failure (huey.execute would only log)
        assert (tmp_path / "bk" / "objects" / "uploads" / "m" / "u" / "a.geojson").exists()
        assert metrics.OBJECT_BACKUP_COPIED._value.get() == copied_before + 1
        doc = json.loads((tmp_path / "bk" / "config" / "latest.json").read_text())
        assert doc["kind"] == "waymark-config-backup"
        for task in huey.read_periodic(datetime(2030, 1, 1, 5, 17)):
            task.execute()  # retention; backup_lag: no replica yet, nothing to report
        assert metrics.RETENTION_LAST_RUN._value.get() > retention_before
    finally:
        db.dispose()
