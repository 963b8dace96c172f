"""Routine maintenance jobs: one test per job (what it removes, what it keeps, its setting,
its metric), the runner (read-only mode, --only, the report) and their periodic registration."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text, update

from tests.conftest import make_settings
from waymark.db.engine import Database
from waymark.db.models import Change, Feature, Job, Layer, LivePosition, Map, User, utcnow
from waymark.maintenance.jobs import run_jobs
from waymark.storage import open_store

POINT = {"type": "Point", "coordinates": [-3.19, 55.95]}


def items(job: str) -> float:
    return REGISTRY.get_sample_value("waymark_maintenance_items_total", {"task": job}) or 0.0


def run_one(settings: Any, db: Database, name: str, now: datetime | None = None) -> Any:
    before = items(name)
    [report] = run_jobs(settings, db, open_store("memory://"), [name], now=now)
    assert report.outcome == "done", report
    assert items(name) - before == report.items  # the metric counts what the report says
    assert REGISTRY.get_sample_value("waymark_maintenance_last_success_timestamp_seconds",
                                     {"task": name}) > 0
    return report


@pytest.fixture
def owner_map(sqlite_url: str) -> tuple[Database, int]:
    """A database with one user, map and layer: (db, layer id)."""
    db = Database(sqlite_url)
    with db.write() as s:
        user = User(email="o@example.com", display_name="O", password_hash="x")
        s.add(user)
        s.flush()
        map_ = Map(public_id="m1", owner_id=user.id, title="M")
        s.add(map_)
        s.flush()
        layer = Layer(public_id="l1", map_id=map_.id, name="L")
        s.add(layer)
        s.flush()
        layer_id = layer.id
    yield db, layer_id
    db.dispose()


# ---- database ----------------------------------------------------------------------------------
def _fill_and_free(db: Database, layer_id: int, rows: int = 3000) -> None:
    with db.write() as s:
        s.add_all(Feature(uuid=f"00000000-0000-0000-0000-{i:012d}", layer_id=layer_id,
                          properties=json.dumps({"pad": "x" * 400})) for i in range(rows))
    with db.write() as s:
        s.execute(Feature.__table__.delete())


def _pragma(path: str, name: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def test_database_job_gives_free_pages_back_above_the_threshold(tmp_path, owner_map) -> None:  # type: ignore[no-untyped-def]
    db, layer_id = owner_map
    path = db.sqlite_path
    assert _pragma(path, "auto_vacuum") == 2  # new databases are made incremental
    _fill_and_free(db, layer_id)
    free = _pragma(path, "freelist_count")
    assert free > 100
    # under the threshold: optimize only
    report = run_one(make_settings(tmp_path, db.url, vacuum_free_pages=free + 1), db, "database")
    assert report.items == 0 and report.detail["optimized"] is True
    assert _pragma(path, "freelist_count") == free
    report = run_one(make_settings(tmp_path, db.url, vacuum_free_pages=100), db, "database")
    assert report.items == free and report.detail["free_pages_after"] == 0
    assert _pragma(path, "freelist_count") == 0
    assert REGISTRY.get_sample_value("waymark_db_free_pages") == 0


def test_database_job_converts_an_old_file_once(tmp_path, owner_map) -> None:  # type: ignore[no-untyped-def]
    db, layer_id = owner_map
    conn = sqlite3.connect(db.sqlite_path, isolation_level=None)
    conn.execute("PRAGMA auto_vacuum=NONE")
    conn.execute("VACUUM")  # as a database made before this release
    conn.close()
    assert _pragma(db.sqlite_path, "auto_vacuum") == 0
    _fill_and_free(db, layer_id)
    report = run_one(make_settings(tmp_path, db.url, vacuum_free_pages=10), db, "database")
    assert report.detail["converted_to_incremental"] is True and report.items > 100
    assert _pragma(db.sqlite_path, "auto_vacuum") == 2
    assert _pragma(db.sqlite_path, "freelist_count") == 0


@pytest.mark.postgres
def test_database_job_on_postgres_analyzes_and_reports(tmp_path, postgres_server,  # type: ignore[no-untyped-def]
                                                       postgres_template) -> None:
    from tests.conftest import _fresh_postgres

    url = _fresh_postgres(postgres_server, postgres_template)
    db = Database(url)
    try:
        report = run_one(make_settings(tmp_path, url, vacuum_free_pages=0), db, "database")
        assert report.detail["analyzed_tables"] >= 10 and report.items >= 10
        assert isinstance(report.detail["bloated"], list)
        deadline = time.monotonic() + 30  # statistics reach the view shortly after ANALYZE
        while True:
            with db.read() as s:
                analyzed = s.execute(text("SELECT count(*) FROM pg_stat_user_tables "
                                          "WHERE last_analyze IS NOT NULL")).scalar()
            if analyzed:
                break
            assert time.monotonic() < deadline, "ANALYZE not seen in pg_stat_user_tables"
            time.sleep(0.2)
    finally:
        db.dispose()


# ---- staging layers, live history, finished jobs ---------------------------------------------
def test_orphaned_staging_layers_are_removed(tmp_path, owner_map) -> None:  # type: ignore[no-untyped-def]
    db, layer_id = owner_map
    now = utcnow()
    with db.write() as s:
        map_id = s.get(Layer, layer_id).map_id
        old = Layer(public_id="old", map_id=map_id, name="x", staging=True,
                    created_at=now - timedelta(hours=30))
        fresh = Layer(public_id="fresh", map_id=map_id, name="y", staging=True,
                      created_at=now - timedelta(hours=1))
        s.add_all([old, fresh])
        s.flush()
        s.add(Feature(uuid="11111111-0000-0000-0000-000000000000", layer_id=old.id))
        s.add(Feature(uuid="22222222-0000-0000-0000-000000000000", layer_id=fresh.id))
    report = run_one(make_settings(tmp_path, db.url, staging_layer_hours=24), db,
                     "staging_layers")
    assert report.items == 1
    with db.read() as s:
        assert sorted(s.scalars(select(Layer.public_id))) == ["fresh", "l1"]
        assert list(s.scalars(select(Feature.uuid))) == ["22222222-0000-0000-0000-000000000000"]


def test_live_history_older_than_the_retention_goes(tmp_path, owner_map) -> None:  # type: ignore[no-untyped-def]
    db, layer_id = owner_map
    now = utcnow()
    with db.write() as s:
        for days in (40, 31, 29, 1):
            s.add(LivePosition(layer_id=layer_id, device="bus", lat=1, lon=2,
                               recorded_at=now - timedelta(days=days)))
    report = run_one(make_settings(tmp_path, db.url, live_history_days=30), db, "live_history")
    assert report.items == 2
    with db.read() as s:
        assert s.scalar(select(func.count(LivePosition.id))) == 2
    [off] = run_jobs(make_settings(tmp_path, db.url, live_history_days=0), db,
                     open_store("memory://"), ["live_history"])
    assert off.outcome == "skipped" and "WAYMARK_LIVE_HISTORY_DAYS" in off.detail["reason"]


def test_finished_jobs_older_than_the_retention_go(tmp_path, owner_map) -> None:  # type: ignore[no-untyped-def]
    db, _ = owner_map
    old = utcnow() - timedelta(days=45)
    with db.write() as s:
        for i, (status, when) in enumerate([("done", old), ("failed", old), ("running", old),
                                            ("done", utcnow())]):
            s.add(Job(public_id=f"j{i}", kind="import", status=status, updated_at=when))
    report = run_one(make_settings(tmp_path, db.url, job_retention_days=30), db, "finished_jobs")
    assert report.items == 2
    with db.read() as s:
        assert sorted(s.scalars(select(Job.public_id))) == ["j2", "j3"]


# ---- sessions, configuration backups -------------------------------------------------------------
def test_expired_file_sessions_are_removed(tmp_path, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from litestar.stores.file import FileStore

    settings = make_settings(tmp_path, sqlite_url, session_store="file")
    (settings.data_dir / "sessions").mkdir(parents=True)
    store = FileStore(settings.data_dir / "sessions", create_directories=True)

    async def fill() -> None:
        await store.set("expired", b"{}", expires_in=-60)
        await store.set("live", b"{}", expires_in=3600)

    asyncio.run(fill())
    db = Database(sqlite_url)
    report = run_one(settings, db, "sessions")
    assert report.items == 1 and report.detail["sessions_left"] == 1
    assert asyncio.run(store.get("live")) == b"{}"
    [memory] = run_jobs(make_settings(tmp_path, sqlite_url), db, open_store("memory://"),
                        ["sessions"])
    assert memory.outcome == "skipped"
    db.dispose()


def test_old_configuration_backups_go_but_the_newest_stays(tmp_path, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    backup = tmp_path / "backup"
    settings = make_settings(tmp_path, sqlite_url, backup_url=f"file://{backup}",
                             config_backup_days=90)
    config = open_store(f"file://{backup / 'config'}")
    now = datetime(2031, 1, 1, tzinfo=UTC)
    for days in (400, 200, 91, 10):
        stamp = (now - timedelta(days=days)).strftime("%Y%m%dT%H%M%SZ")
        config.put_sync(f"{stamp}.json", b"{}")
    config.put_sync("latest.json", b"{}")
    db = Database(sqlite_url)
    report = run_one(settings, db, "config_backups", now=now)
    assert report.items == 3
    assert [i.key for i in config.list_sync()] == [
        f"{(now - timedelta(days=10)).strftime('%Y%m%dT%H%M%SZ')}.json", "latest.json"]
    # long after the last backup: the newest still stays
    report = run_one(settings, db, "config_backups", now=now + timedelta(days=1000))
    assert report.items == 0 and len(config.list_sync()) == 2
    db.dispose()


# ---- history compaction ------------------------------------------------------------------------
def _features(client: Any, base: str) -> dict[str, Any]:
    data = client.get(base + "/data").json()
    return {f["id"]: f["properties"] for f in data["features"]}


def test_history_compaction_keeps_every_version_inside_the_window(db_app, db_clients) -> None:  # type: ignore[no-untyped-def]
    alice = db_clients()
    alice.signup("alice@example.com")
    m = alice.create_map("History")
    layer = m["layers"][0]["id"]
    base = f"/api/v1/maps/{m['id']}/layers/{layer}"
    fid = alice.post(base + "/features", json={"geometry": POINT,
                                                "properties": {"n": 0}}).json()["id"]
    states = {}
    for n in range(1, 7):
        r = alice.patch(f"{base}/features/{fid}", json={"properties": {"n": n}})
        states[int(r.headers["X-Layer-Version"])] = _features(alice, base)
    versions = sorted(states)
    floor = versions[2]  # the layer's version when the window began
    db = db_app.state.services.db
    now = utcnow()
    with db.write() as s:  # the first edits are old, the rest inside the window
        layer_pk = s.scalar(select(Layer.id).where(Layer.public_id == layer))
        s.execute(update(Change).where(Change.layer_id == layer_pk,
                                       Change.layer_version <= floor)
                  .values(created_at=now - timedelta(days=100)))
        s.execute(update(Change).where(Change.map_id == s.scalar(
            select(Map.id).where(Map.public_id == m["id"])), Change.layer_id.is_(None))
                  .values(created_at=now - timedelta(days=100)))
        before = s.scalar(select(func.count(Change.id)))
    settings = db_app.state.services.settings
    report = run_one(dataclasses.replace(settings, history_keep_days=30), db, "history")
    with db.read() as s:
        after = s.scalar(select(func.count(Change.id)))
    assert report.items == before - after > 0 and report.detail["layers_compacted"] == 1
    # every version inside the window reverts exactly as before compaction
    for version in reversed(versions[2:]):
        r = alice.post(base + "/revert", json={"version": version})
        assert r.status_code == 200, r.text
        assert _features(alice, base) == states[version], version
    r = alice.post(base + "/revert", json={"version": floor - 1})
    assert r.status_code == 422 and r.json()["error"]["code"] == "history_compacted"
    assert r.json()["error"]["details"]["revertible_from"] == floor


# ---- the runner, the command, the schedule -----------------------------------------------------
def test_nothing_runs_while_read_only(tmp_path, owner_map) -> None:  # type: ignore[no-untyped-def]
    from waymark.maintenance.mode import switch_off, switch_on

    db, _ = owner_map
    with db.write() as s:
        s.add(Job(public_id="old", kind="import", status="done",
                  updated_at=utcnow() - timedelta(days=99)))
    switch_on(db, "copying the database")
    reports = run_jobs(make_settings(tmp_path, db.url), db, open_store("memory://"))
    assert {r.outcome for r in reports} == {"skipped"}
    assert len(reports) == 7
    with db.read() as s:
        assert s.scalar(select(func.count(Job.id))) == 1
    switch_off(db)
    assert run_jobs(make_settings(tmp_path, db.url), db, open_store("memory://"),
                    ["finished_jobs"])[0].items == 1


def test_run_command_reports_and_rejects_unknown_jobs(tmp_path, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    from waymark.cli import main

    env = {"WAYMARK_DATABASE_URL": sqlite_url, "WAYMARK_DATA_DIR": str(tmp_path / "var"),
           "WAYMARK_ENCRYPT_OBJECTS": "false"}
    result = CliRunner().invoke(main, ["maintenance", "run", "--only", "finished_jobs",
                                       "--only", "staging_layers", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [(r["job"], r["outcome"]) for r in report] == [("staging_layers", "done"),
                                                          ("finished_jobs", "done")]
    result = CliRunner().invoke(main, ["maintenance", "run"], env=env)
    assert result.exit_code == 0, result.output
    assert "database" in result.output and "history" in result.output
    result = CliRunner().invoke(main, ["maintenance", "run", "--only", "nope"], env=env)
    assert result.exit_code == 1 and "no maintenance job nope" in result.output


def test_every_job_is_scheduled_in_the_worker(tmp_path: Path, sqlite_url: str) -> None:
    from waymark.jobs.queue import make_huey
    from waymark.maintenance.jobs import job_names

    huey = make_huey(make_settings(tmp_path, sqlite_url))
    day = datetime(2031, 1, 1)
    due = {(task.name, minute) for minute in range(24 * 60)
           for task in huey.read_periodic(day + timedelta(minutes=minute))}
    names = {name for name, _ in due}
    assert {f"maintenance_{name}" for name in job_names()} <= names and "retention" in names
    assert ("maintenance_database", 4 * 60 + 10) in due  # daily at 04:10
    assert sum(1 for name, _ in due if name == "maintenance_staging_layers") == 24  # hourly
