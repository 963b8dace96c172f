"""Continuous backup and point-in-time restore of PostgreSQL with real pgBackRest: the
commands of docs/operations/backup.md and restore.md ("PostgreSQL") on a real server whose
WAL is archived to a real repository, on loopback."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.pg_backup_support import (
    ArchivedPostgres,
    start_archived_postgres,
    start_copy,
    stop_copy,
    wait_archived,
)
from tests.integration.test_dr import waymark
from waymark.db.engine import Database
from waymark.db.migrate import head_revision
from waymark.jobs.queue import Runtime, make_huey, set_runtime
from waymark.observability import metrics
from waymark.storage.crypto import open_object_store

pytestmark = [pytest.mark.postgres]
FEATURES = "SELECT count(*) FROM features"


@pytest.fixture
def archived(tmp_path: Path) -> Iterator[ArchivedPostgres]:
    pg = start_archived_postgres({"WAYMARK_DATA_DIR": str(tmp_path / "var")})
    try:
        yield pg
    finally:
        pg.stop()


def _add_features(pg: ArchivedPostgres, n: int) -> None:
    pg.query("INSERT INTO users (email, display_name, password_hash, is_admin, created_at, "
             "password_changed_at) VALUES ('pitr@example.com', 'P', 'x', false, now(), now()) "
             "ON CONFLICT DO NOTHING")
    pg.query("INSERT INTO maps (public_id, owner_id, title, description, visibility, basemap, "
             "version, created_at, updated_at) SELECT 'pitrmap', id, 'PITR', '', 'private', "
             "'default', 1, now(), now() FROM users WHERE email = 'pitr@example.com' "
             "ON CONFLICT DO NOTHING")
    pg.query("INSERT INTO layers (public_id, map_id, name, style, position, visible, staging, "
             "version, feature_count, created_at, updated_at) SELECT 'pitrlayer', id, 'L', '{}', "
             "0, true, false, 1, 0, now(), now() FROM maps WHERE public_id = 'pitrmap' "
             "ON CONFLICT DO NOTHING")
    pg.query("INSERT INTO features (uuid, layer_id, geometry, properties, version, "  # noqa: S608 - n is an int
             f"created_version, updated_at) SELECT gen_random_uuid()::text, l.id, NULL, "
             f"'{{}}', 1, 1, now() FROM layers l, generate_series(1, {n}) WHERE "
             "l.public_id = 'pitrlayer'")


def test_setup_status_scheduled_backup_and_point_in_time_restore(archived: ArchivedPostgres,
                                                                 tmp_path: Path) -> None:
    env = archived.env
    before = waymark(env, "backup", "status", "--json", check=False)
    assert before.returncode == 1 and json.loads(before.stdout)["last_backup"] is None

    setup = waymark(env, "backup", "pg-setup").stdout
    assert "WAL archiving checked: OK" in setup and "first full backup: " in setup
    printed = waymark(env, "backup", "config-file").stdout
    assert f"repo1-path={archived.root}/backup/pg" in printed
    assert f"pg1-path={archived.server.data_dir}" in printed and "[waymark]" in printed

    _add_features(archived, 40)
    status = wait_archived(env)
    # pushes failed until pg-setup made the stanza; none since
    assert status["archive_mode"] == "on" and (status["last_failed_at"] or "") < status["last_archived_at"]
    failures = status["archive_failures"]
    assert status["last_backup"]["type"] == "full" and status["backups"] == 1
    assert status["repository"] == f"file://{archived.root}/backup/pg"
    before_delete = datetime.now(UTC)
    archived.query("SELECT pg_sleep(1.1)")
    archived.query("DELETE FROM features")
    wait_archived(env)

    # the daily job: a differential backup (the full one is recent), metrics from the status
    settings = archived.settings
    huey = make_huey(settings)
    due = {t.name for t in huey.read_periodic(datetime(2030, 1, 1, 1, 15))}
    assert due - {"requeue_stale_jobs"} == {"pg_backup", "backup_lag", "backup_objects"}
    db = Database.for_settings(settings)
    set_runtime(huey, Runtime(settings, db, open_object_store(settings)))
    try:
        tasks = {t.name: t for t in huey.read_periodic(datetime(2030, 1, 1, 1, 15))}
        backup_started = time.time()
        tasks["pg_backup"].execute()  # raises on failure
        wait_archived(env)  # the backup itself wrote WAL (its start and stop records)
        metrics.BACKUP_LAG.set(-1)
        tasks["backup_lag"].execute()  # (its once-per-period claim itself writes WAL)
        # lag = time since the last archived WAL, and the backup's own WAL was archived after
        # it started: the gauge is at most that old
        lag_bound = time.time() - backup_started
    finally:
        db.dispose()
    status = json.loads(waymark(env, "backup", "status", "--json").stdout)
    assert status["backups"] == 2 and status["last_backup"]["type"] == "diff"
    assert status["archive_failures"] == failures
    assert metrics.BACKUP_BASE_LAST._value.get() == datetime.fromisoformat(
        status["last_backup"]["finished_at"]).timestamp()
    assert 0 <= metrics.BACKUP_LAG._value.get() <= lag_bound  # set by the task, from the status

    # restoring over the live data directory is refused
    refused = waymark(env, "restore", "--to-time", before_delete.isoformat(), check=False)
    assert refused.returncode != 0 and "refusing to overwrite the live data directory" in refused.stderr

    # to just before the delete, into a new data directory: checked, the 40 features are back
    side = archived.root / "before-delete"
    out = waymark(env, "restore", "--to-time", before_delete.isoformat(), "--output", str(side))
    assert "integrity_check: ok (amcheck: " in out.stdout and f"schema revision {head_revision()}" in out.stdout
    latest = archived.root / "latest"
    out = waymark(env, "restore", "--output", str(latest)).stdout
    assert "integrity_check: ok" in out
    for copy, expected in ((side, 40), (latest, 0)):
        port = start_copy(archived, copy)
        try:
            assert archived.query(FEATURES, port=port) == [(expected,)]
            # a side copy never archives into the live repository
            assert archived.query("SHOW archive_mode", port=port) == [("off",)]
        finally:
            stop_copy(archived, copy)
    assert archived.query(FEATURES) == [(0,)]  # the live cluster is untouched

    checked = waymark(env, "check", "--deploy", check=False)
    assert "database backups: pgBackRest to file://" in checked.stdout
    assert "PostgreSQL backups" not in checked.stderr


def test_a_managed_postgresql_leaves_backups_to_the_provider(tmp_path: Path, postgres_server) -> None:  # type: ignore[no-untyped-def]
    from waymark.db.migrate import upgrade

    url = postgres_server.create_database("managed")
    upgrade(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    env.update({"WAYMARK_DATA_DIR": str(tmp_path / "var"), "WAYMARK_DATABASE_URL": url,
                "WAYMARK_BACKUP_URL": f"file://{tmp_path}/backup",
                "WAYMARK_PGBACKREST_CONFIG": str(tmp_path / "pgbackrest.conf")})
    unmanaged = waymark(env, "check", "--deploy", check=False)
    assert "FAIL: PostgreSQL backups are not working (" in unmanaged.stderr
    assert "WAYMARK_POSTGRES_MANAGED=true" in unmanaged.stderr
    env["WAYMARK_POSTGRES_MANAGED"] = "true"
    managed = waymark(env, "check", "--deploy", check=False)
    assert "database backups: the provider's (WAYMARK_POSTGRES_MANAGED)" in managed.stdout
    assert "PostgreSQL backups" not in managed.stderr
    status = waymark(env, "backup", "status", check=False)
    assert status.returncode == 1 and "are the provider's" in status.stderr
    from waymark.settings import load_settings

    huey = make_huey(load_settings(environ=env))
    assert {t.name for t in huey.read_periodic(datetime(2030, 1, 1, 1, 15))} - {
        "requeue_stale_jobs"} == {"backup_objects"}  # every minute, on any database
