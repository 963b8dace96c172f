"""Job workers on several nodes (issue 15, item 2), on PostgreSQL and Redis: periodic tasks
run once per period however many workers enqueue them, and an import whose worker is
killed with SIGKILL is taken over by another worker and applied exactly once."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from huey import crontab
from litestar.testing import TestClient
from sqlalchemy import func, select

from tests.cluster_servers import wait_for
from tests.conftest import _fresh_postgres, make_settings
from tests.redis_servers import redis_server  # noqa: F401 - fixture
from waymark.app import create_app
from waymark.db.engine import Database
from waymark.db.models import Change, Feature, Job, Layer, PeriodicRun
from waymark.jobs.queue import Runtime, make_huey, set_runtime
from waymark.observability.metrics_server import ScrapeCollector
from waymark.storage.crypto import open_object_store
from waymark.storage.keys_provider import LocalKeyFile

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(300)]
WAYMARK = Path(sys.executable).parent / "waymark"


@pytest.fixture
def pg_url(postgres_server, postgres_template) -> str:  # type: ignore[no-untyped-def]
    return _fresh_postgres(postgres_server, postgres_template)


def _node_settings(tmp_path: Path, name: str, pg_url: str, redis_url: str, **extra):  # type: ignore[no-untyped-def]
    key = tmp_path / "master.key"
    if not key.exists():
        LocalKeyFile(key)
    return make_settings(tmp_path / name, pg_url, redis_url=redis_url, jobs_immediate=False,
                         object_store_url=f"file://{tmp_path / 'objects'}",
                         master_key_file=str(key), **extra)


def test_a_periodic_task_runs_once_per_period_across_workers(tmp_path, pg_url, redis_server) -> None:  # noqa: F811 - fixture
    """Two workers' schedulers enqueue the same periodic task for the same minute on one Redis
    queue; the task's work happens once per minute, whichever worker runs each message."""
    counter = redis_server.client()
    workers = []
    for name in ("w1", "w2"):
        huey = make_huey(_node_settings(tmp_path, name, pg_url, redis_server.url))

        @huey.periodic_task(crontab(), name="count_runs")
        def count_runs() -> None:
            counter.incr("runs")

        @huey.periodic_task(crontab(), name="with_context", context=True)
        def with_context(task) -> None:  # type: ignore[no-untyped-def]
            counter.incr("with_context")

        workers.append(huey)
    db = Database(pg_url)
    settings = _node_settings(tmp_path, "w1", pg_url, redis_server.url)
    shared = Runtime(settings, db, open_object_store(settings))
    for huey in workers:
        set_runtime(huey, shared)
    try:
        for minute in (datetime(2030, 1, 1, 12, 0, 5), datetime(2030, 1, 1, 12, 1, 40)):
            for huey in workers:  # each scheduler, in the same minute
                for task in huey.read_periodic(minute):
                    huey.enqueue(task)
            executed = 0
            while (task := workers[executed % 2].dequeue()) is not None:
                task.execute()  # raises on failure
                executed += 1
            assert executed == 3 * 2  # the three periodic tasks, from both schedulers
        assert int(counter.get("runs")) == 2  # once per minute, not once per enqueued message
        assert int(counter.get("with_context")) == 2
        with db.read() as s:
            runs = s.execute(select(PeriodicRun.name, func.count(), func.count(
                PeriodicRun.finished_at)).group_by(PeriodicRun.name)).all()
        assert sorted(tuple(r) for r in runs) == [("count_runs", 2, 2),
                                                  ("requeue_stale_jobs", 2, 2),
                                                  ("with_context", 2, 2)]
        count_runs.call_local()  # called directly (not from a scheduler) it just runs
        assert int(counter.get("runs")) == 3
    finally:
        db.dispose()


def _worker(tmp_path: Path, name: str, pg_url: str, redis_url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    env.update({"WAYMARK_DATA_DIR": str(tmp_path / name), "WAYMARK_DATABASE_URL": pg_url,
                "WAYMARK_REDIS_URL": redis_url, "WAYMARK_JOB_STALE_SECONDS": "2",
                "WAYMARK_OBJECT_STORE_URL": f"file://{tmp_path / 'objects'}",
                "WAYMARK_MASTER_KEY_FILE": str(tmp_path / "master.key"),
                "WAYMARK_LOG_LEVEL": "info"})
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([str(WAYMARK), "worker", "--threads", "1"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def test_an_import_whose_worker_is_killed_is_applied_exactly_once(tmp_path, pg_url, redis_server) -> None:  # noqa: F811 - fixture
    settings = _node_settings(tmp_path, "app", pg_url, redis_server.url, import_job_bytes=1000)
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [i / 100, 55]},
                 "properties": {"n": i}} for i in range(3000)]
    body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    app = create_app(settings)
    db = app.state.services.db
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with TestClient(app) as client:
            r = client.post("/api/v1/auth/signup", json={"email": "w@example.com",
                                                         "password": "correct horse battery"})
            client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            r = client.post("/api/v1/maps", json={"title": "jobs"})
            map_id, layer_id = r.json()["id"], r.json()["layers"][0]["id"]
            with db.read() as s:
                layer_pk = s.scalar(select(Layer.id).where(Layer.public_id == layer_id))
            # Hold the layer's row lock: the worker stages every feature, then waits in the
            # merge (which locks the layer) -- that is where it dies.
            with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql")) as lock:
                lock.execute("SELECT id FROM layers WHERE id = %s FOR UPDATE", (layer_pk,))
                r = client.post(f"/api/v1/maps/{map_id}/layers/{layer_id}/import",
                                files={"file": ("big.geojson", io.BytesIO(body))})
                assert r.status_code == 202, r.text
                job_id = r.json()["job"]["id"]
                workers.append(_worker(tmp_path, "w1", pg_url, redis_server.url))
                wait_for(lambda: _blocked_on_lock(pg_url, lock.info.backend_pid), 120,
                         "the worker waiting in the merge")
                assert _job(db, job_id)[:3] == ("running", 3000, 1)  # all staged, attempt 1
                workers[0].send_signal(signal.SIGKILL)
                workers[0].wait(10)
                lock.rollback()
            # the dead attempt is silent: once stale, a new worker takes the job over
            stale = wait_for(lambda: _job(db, job_id)[3] < _db_now(db) - timedelta(seconds=2),
                             60, "the job to go stale")
            assert stale
            workers.append(_worker(tmp_path, "w2", pg_url, redis_server.url))
            wait_for(lambda: _job(db, job_id)[0] == "done", 120, "the job to finish")
            status, progress, attempt, _ = _job(db, job_id)
            assert (status, progress, attempt) == ("done", 3000, 2)
            r = client.get(f"/api/v1/jobs/{job_id}")
            assert r.json()["result"]["imported"] == 3000
        with db.read() as s:
            assert s.scalar(select(func.count()).select_from(Feature)
                            .where(Feature.layer_id == layer_pk)) == 3000
            assert s.scalar(select(func.count()).select_from(Change).where(
                Change.layer_id == layer_pk, Change.op == "layer.import")) == 1
            assert s.scalar(select(func.count()).select_from(Layer)
                            .where(Layer.staging.is_(True))) == 0  # the dead attempt's dropped
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        app.state.services.db.dispose()


def _job(db: Database, public_id: str) -> tuple[str, int, int, datetime]:
    with db.read() as s:
        job = s.scalar(select(Job).where(Job.public_id == public_id))
        return job.status, job.progress, job.attempt or 0, job.updated_at


def _db_now(db: Database) -> datetime:
    with db.read() as s:
        return s.scalar(select(func.now()))


def _blocked_on_lock(url: str, holder_pid: int) -> bool:
    """Another backend waits for a lock that backend ``holder_pid`` holds (asked on a fresh
    connection: pg_stat_activity is a snapshot per transaction)."""
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        return c.execute("SELECT count(*) FROM pg_stat_activity "
                         "WHERE %s = ANY(pg_blocking_pids(pid))", (holder_pid,)).fetchone()[0] > 0


def test_the_job_queue_follows_the_sentinel_primary(tmp_path, pg_url) -> None:
    """WAYMARK_REDIS_URL=redis+sentinel://...: the queue (Huey, a synchronous client) works
    through Sentinel, and after a fail-over it enqueues and dequeues on the new primary."""
    from tests.redis_servers import start_sentinel_group

    group = start_sentinel_group()
    try:
        settings = _node_settings(tmp_path, "w1", pg_url, group.url)
        huey = make_huey(settings)
        huey.enqueue(huey.import_task.s("job-a"))
        # the serve process's queue-depth metric reads the same list through Sentinel
        depth = ScrapeCollector(settings)
        assert depth._queue_depth() == 1.0 == huey.pending_count()
        assert huey.dequeue().args == ("job-a",)
        assert depth._queue_depth() == 0.0
        old = group.primary.port
        group.primary.kill()
        wait_for(lambda: group.current_primary_port() not in (None, old), 60,
                 "Sentinel to promote the replica")

        def round_trip() -> bool:
            huey.enqueue(huey.import_task.s("job-b"))
            return huey.dequeue().args == ("job-b",)
        assert wait_for(round_trip, 60, "the queue on the new primary")
        assert group.replica.client().llen("huey.redis.waymark") == 0
    finally:
        group.stop()
