"""The database layer on SQLite and PostgreSQL: tuning, write locking, migrations."""

import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from waymark.db.engine import Database
from waymark.db.migrate import current_revision, downgrade, head_revision, upgrade
from waymark.db.models import Base, User


def test_sqlite_is_tuned_for_a_web_server(sqlite_url):
    db = Database(sqlite_url)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    db.dispose()


def test_sqlite_writers_queue_instead_of_failing(sqlite_url):
    """Two write transactions that read then write: with BEGIN IMMEDIATE the second waits
    for the first and both succeed (a deferred BEGIN would fail with 'database is locked')."""
    db = Database(sqlite_url)
    with db.write() as s:
        s.add(User(email="c@example.com", display_name="0", password_hash="x"))
    errors = []

    def bump() -> None:
        try:
            with db.write() as s:
                user = s.query(User).filter_by(email="c@example.com").one()
                value = int(user.display_name)
                time.sleep(0.05)
                user.display_name = str(value + 1)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read() as s:
        assert s.query(User).filter_by(email="c@example.com").one().display_name == "6"
    db.dispose()


def _hold_process_lock(url: str, key: int, events) -> None:  # type: ignore[no-untyped-def]
    db = Database(url)
    with db.process_lock(key):
        events.put(("in", key))
        time.sleep(0.3)
        events.put(("out", key))
    db.dispose()


def test_commits_leave_checkpoints_to_the_background_checkpointer(sqlite_url):
    """A commit crossing SQLite's default 1,000-page threshold no longer checkpoints (the
    request would copy pages and fsync while holding the write lock); the Checkpointer
    thread moves them into the database file instead."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    path = Path(make_url(sqlite_url).database)
    db = Database(sqlite_url)
    db.checkpointer.interval = 0.05
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() > 1000
    for batch in range(6):  # ~1,500 pages of WAL
        with db.write() as s:
            s.execute(text("CREATE TABLE IF NOT EXISTS filler (b BLOB)"))
            for _ in range(250):
                s.execute(text("INSERT INTO filler VALUES (randomblob(4000))"))
    size_before = path.stat().st_size
    assert size_before < 6 * 250 * 4000  # the pages are still only in the WAL
    db.checkpointer.start()
    deadline = time.monotonic() + 10
    while path.stat().st_size < 6 * 250 * 4000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size >= 6 * 250 * 4000, "the checkpointer did not run"
    with db.read() as s:  # and nothing was lost on the way
        assert s.execute(text("SELECT count(*) FROM filler")).scalar() == 1500
    db.dispose()
    assert db.checkpointer._thread is None  # stopped with the database


def test_process_lock_excludes_other_processes_per_key(sqlite_url):
    """Snapshot builds run once across worker processes: holders of one key never overlap."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    procs = [ctx.Process(target=_hold_process_lock, args=(sqlite_url, key, events))
             for key in (7, 7, 8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    seq = [events.get(timeout=5) for _ in range(6)]
    assert [e for e, key in seq if key == 7] == ["in", "out", "in", "out"]  # never both inside


def test_peek_reads_committed_rows_without_the_orm(database_url):
    db = Database(database_url)
    with db.write() as s:
        s.add(User(email="peek@example.com", display_name="P", password_hash="x"))
    row = db.peek("SELECT display_name FROM users WHERE email = ?", ("peek@example.com",))
    if db.is_sqlite:
        assert row == ("P",)
        with db.write() as s:
            s.query(User).filter_by(email="peek@example.com").one().display_name = "Q"
        assert db.peek("SELECT display_name FROM users WHERE email = ?",
                       ("peek@example.com",)) == ("Q",)  # no stale read snapshot kept open
        assert db.peek("SELECT 1 FROM users WHERE email = ?", ("nobody",)) is None
    else:
        assert row is NotImplemented  # callers take the threaded ORM path
    db.dispose()


def test_migrations_match_the_models(database_url):
    """The migrated schema has no drift from the models, on both backends."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
    assert current_revision(database_url) == head_revision()


def test_migrations_downgrade_and_upgrade_again(database_url):
    downgrade(database_url, "base")
    engine = create_engine(database_url)
    with engine.connect() as conn:
        tables = conn.execute(text(
            "SELECT name FROM sqlite_master WHERE type='table'" if database_url.startswith("sqlite")
            else "SELECT tablename FROM pg_tables WHERE schemaname='public'")).scalars().all()
    engine.dispose()
    assert "maps" not in tables
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()


@pytest.mark.postgres
def test_postgres_database_url_is_used(postgres_server, tmp_path):
    from waymark.settings import load_settings

    url = postgres_server.create_database("settings_check")
    upgrade(url)
    s = load_settings(environ={"WAYMARK_DATABASE_URL": url, "WAYMARK_DATA_DIR": str(tmp_path)})
    db = Database(s.resolved_database_url)
    assert db.engine.dialect.name == "postgresql"
    db.ping()
    db.dispose()
