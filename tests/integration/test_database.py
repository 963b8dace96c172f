"""The database layer on SQLite and PostgreSQL: tuning, write locking, migrations."""

import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from tests.servers import hold_write_gate
from waymark.db.engine import Database, WriteBusy
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


def _hold_process_lock(url: str, key: int, log_path: str) -> None:
    # One O_APPEND write per event, done before the lock is released: a multiprocessing
    # Queue would flush from a background thread, after the next holder's "in".
    import os

    db = Database(url)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with db.process_lock(key):
        os.write(fd, f"in {key}\n".encode())
        time.sleep(0.3)
        os.write(fd, f"out {key}\n".encode())
    os.close(fd)
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
    for _batch in range(6):  # ~1,500 pages of WAL
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


def test_process_lock_excludes_other_processes_per_key(sqlite_url, tmp_path):
    """Snapshot builds run once across worker processes: holders of one key never overlap."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    log = tmp_path / "events.log"
    procs = [ctx.Process(target=_hold_process_lock, args=(sqlite_url, key, str(log)))
             for key in (7, 7, 8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    seq = [line.split() for line in log.read_text().splitlines()]
    assert len(seq) == 6
    assert [e for e, key in seq if key == "7"] == ["in", "out", "in", "out"]  # never both inside


def test_write_without_waiting_refuses_a_taken_lock_and_changes_nothing(sqlite_url, tmp_path):
    """write(wait=False) is what lets an edit run on the event loop: it must never block,
    whether another process or another thread of this one holds the write lock. The other
    process holds it until the test lets go: a refusal while it holds is a refusal at once."""
    import multiprocessing

    db = Database(sqlite_url)
    assert db.can_write_without_waiting
    marker = tmp_path / "released"
    ctx = multiprocessing.get_context("spawn")
    held, let_go = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=hold_write_gate,
                         args=(db.engine.url.database + "-writegate", held, let_go, str(marker)))
    holder.start()
    try:
        assert held.wait(60)
        refused: list[BaseException] = []

        def try_without_waiting() -> None:
            try:
                with db.write(wait=False) as s:
                    s.add(User(email="busy@example.com", display_name="B", password_hash="x"))
            except BaseException as exc:  # noqa: BLE001 - checked below
                refused.append(exc)

        attempt = threading.Thread(target=try_without_waiting)
        attempt.start()
        attempt.join(60)  # the holder holds until let_go: a waiting write would still be here
        assert not attempt.is_alive(), "write(wait=False) waited for the lock"
        assert len(refused) == 1 and isinstance(refused[0], WriteBusy), refused
        waited: list[bool] = []

        def write_waiting() -> None:
            with db.write() as s:  # waiting is still the default: done once the holder lets go
                waited.append(marker.exists())
                s.add(User(email="waited@example.com", display_name="W", password_hash="x"))

        writer = threading.Thread(target=write_waiting)
        writer.start()
    finally:
        let_go.set()
        holder.join(60)
    writer.join(60)
    assert waited == [True]  # it got the lock only after the other process let go

    in_thread, release = threading.Event(), threading.Event()

    def hold_in_thread() -> None:
        with db.write():
            in_thread.set()
            release.wait(10)

    t = threading.Thread(target=hold_in_thread)
    t.start()
    assert in_thread.wait(10)
    with pytest.raises(WriteBusy), db.write(wait=False):
        pass
    release.set()
    t.join(10)
    with db.write(wait=False) as s:  # free again: no wait needed
        s.add(User(email="free@example.com", display_name="F", password_hash="x"))
    with db.read() as s:
        emails = {u.email for u in s.query(User)}
    assert emails == {"waited@example.com", "free@example.com"}
    db.dispose()


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
        assert not db.can_write_without_waiting  # writes wait on the network: never on the loop
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
