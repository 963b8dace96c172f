"""Engine and sessions, tuned for a web server.

SQLite: WAL (readers never block the writer), synchronous=NORMAL (durable at checkpoints,
safe with WAL), a busy timeout, foreign keys on, and write transactions that BEGIN IMMEDIATE
so two writers queue on the lock instead of failing with "database is locked" on upgrade.
Read sessions use a plain deferred BEGIN so they never take the write lock.
PostgreSQL: the same code through psycopg 3, from a bounded pool: at most
WAYMARK_DB_POOL_SIZE connections per process, no overflow, so nodes x processes x pool size
is the most the app can ever open (docs/operations/scaling.md, "PostgreSQL connections").
Behind PgBouncer in transaction mode (WAYMARK_DB_TRANSACTION_POOLER) psycopg's server-side
prepared statements are off: consecutive transactions of one client may run on different
server connections, where a statement prepared on another one does not exist.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import NotImplementedType
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from waymark.observability.metrics import instrument_engine
from waymark.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Commits checkpoint only as a backstop (about 32 MB of WAL): in the app the Checkpointer
# thread does it every second, so no request pays for copying pages and the fsync.
SQLITE_AUTOCHECKPOINT_PAGES = 8_000
CHECKPOINT_INTERVAL_S = 1.0
# First half of the two-int PostgreSQL advisory lock keys taken by Database.process_lock
ADVISORY_NAMESPACE = 0x574D  # "WM"
DEFAULT_POOL_SIZE = 10
POOL_TIMEOUT_S = 30  # a request waits this long for a free connection, then fails


def make_engine(url: str, *, pool_size: int = DEFAULT_POOL_SIZE,
                transaction_pooler: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=8,
            max_overflow=16,
        )
        _tune_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {"prepare_threshold": None} if transaction_pooler else {}
    # A bounded connect: during a fail-over a connection attempt must fail fast (503) rather
    # than hang the request; the URL can still set its own connect_timeout.
    if "connect_timeout" not in url:
        connect_args["connect_timeout"] = 5
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=0,
                         pool_timeout=POOL_TIMEOUT_S, connect_args=connect_args)


def fold_text(value: Any) -> Any:
    """Unicode lower case ("CAFÉ" -> "café"), as PostgreSQL's ILIKE compares."""
    return value.casefold() if isinstance(value, str) else value


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
        # SQLite's lower() and LIKE fold ASCII only; text filters use this (maps/table.py)
        dbapi_conn.create_function("wm_fold", 1, fold_text, deterministic=True)
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        if conn.get_execution_options().get("waymark_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class WriteBusy(Exception):
    """Another writer holds the write lock (raised only when asked not to wait)."""


class WriteGate:
    """Serialises SQLite writers: a lock between threads, flock(2) between processes.

    SQLite allows one writer at a time; others wait in its busy handler, which polls with
    sleeps of up to 100 ms, so under contention tail latency explodes. Waiting on a kernel
    file lock instead wakes the next writer the moment the lock is released.
    """

    def __init__(self, path: Path) -> None:
        self._thread_lock = threading.RLock()
        self._path = path
        self._fd: int | None = None
        self._depth = 0  # re-entry by the holding thread must not release the file lock early

    @contextlib.contextmanager
    def hold(self, wait: bool = True) -> Iterator[None]:
        """wait=False: raise WriteBusy at once if another thread or process holds it."""
        if not self._thread_lock.acquire(blocking=wait):
            raise WriteBusy
        try:
            if self._depth == 0:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise WriteBusy from None
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)  # type: ignore[arg-type]
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Checkpointer:
    """Moves committed pages from the WAL into the database file in a background thread.

    SQLite's default is to do it inside the COMMIT that crosses 1,000 WAL pages: that one
    request then copies the pages and fsyncs the file (30-130 ms measured here) while it
    holds the write lock, and every writer queued behind it waits. A PASSIVE checkpoint
    from this thread never blocks readers or writers, and never moves past a reader's
    snapshot (Litestream's included), so it is as safe as the automatic one.
    """

    def __init__(self, path: str, interval: float = CHECKPOINT_INTERVAL_S) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """(busy, WAL frames, frames checkpointed), as PRAGMA wal_checkpoint reports them."""
        return tuple(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())  # type: ignore[return-value]

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            while not self._stop.wait(self.interval):
                # busy or transient: the next round (or the backstop) catches up
                with contextlib.suppress(sqlite3.Error):
                    self.checkpoint(conn)
        finally:
            conn.close()


class Database:
    """Owns the engine; hands out read sessions and write transactions."""

    def __init__(self, url: str, *, pool_size: int = DEFAULT_POOL_SIZE,
                 transaction_pooler: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, transaction_pooler=transaction_pooler)
        instrument_engine(self.engine)  # waymark_db_query_duration_seconds
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            self.engine.execution_options(waymark_write=True), expire_on_commit=False
        )
        database = make_url(url).database
        file_db = self.is_sqlite and bool(database) and database != ":memory:"
        self._gate = WriteGate(Path(database + "-writegate")) if file_db else None  # type: ignore[operator]
        self._peek_path = database if file_db else None
        self._peek_conn: sqlite3.Connection | None = None
        self._peek_lock = threading.Lock()
        self._locks_fd: int | None = None
        self.checkpointer = Checkpointer(database) if file_db else None  # type: ignore[arg-type]

    @classmethod
    def for_settings(cls, settings: Settings) -> Database:
        """The database of these settings, with their pool size and pooler mode."""
        return cls(settings.resolved_database_url, pool_size=settings.db_pool_size,
                   transaction_pooler=settings.db_transaction_pooler)

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextlib.contextmanager
    def write(self, wait: bool = True) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any exception.

        wait=False (only where `can_write_without_waiting`): raise WriteBusy instead of
        waiting when another writer holds the lock; nothing has been done then."""
        gate = self._gate.hold(wait) if self._gate else contextlib.nullcontext()
        with gate, self._write() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def writes_paused(self) -> Iterator[None]:
        """Hold the SQLite write lock without a transaction, for maintenance that cannot run
        inside one (VACUUM): writers queue on the lock meanwhile. A no-op elsewhere."""
        with self._gate.hold() if self._gate else contextlib.nullcontext():
            yield

    @property
    def sqlite_path(self) -> str | None:
        """The database file, on SQLite; None otherwise."""
        return self._peek_path

    @property
    def can_write_without_waiting(self) -> bool:
        """True where write(wait=False) never blocks: SQLite files, behind the WriteGate. Then a
        short write can run on the event loop; on PostgreSQL a write waits on the network."""
        return self._gate is not None

    @property
    def can_peek(self) -> bool:
        return self._peek_path is not None

    def peek(self, sql: str, params: tuple[Any, ...] | dict[str, Any]) -> tuple[Any, ...] | None | NotImplementedType:
        """One row of a point lookup by unique key, read without a thread hop or the ORM.

        For the hot read paths (published snapshots, layer data, who is calling): on SQLite a
        read-only connection per process answers in microseconds, so it runs on the event
        loop. Returns NotImplemented on other databases; callers then take the usual path.
        """
        if self._peek_path is None:
            return NotImplemented
        with self._peek_lock:
            if self._peek_conn is None:
                self._peek_conn = sqlite3.connect(
                    f"file:{self._peek_path}?mode=ro", uri=True, check_same_thread=False,
                    isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
            rows = self._peek_conn.execute(sql, params).fetchall()  # run to the end: no open read
        return rows[0] if rows else None

    @contextlib.contextmanager
    def process_lock(self, key: int) -> Iterator[None]:
        """Exclusive across every process using this database, for work that needs doing
        once, not once per worker (building a layer snapshot). On a SQLite file: one
        byte-range lock per key on one sidecar file. On PostgreSQL: a session advisory lock
        on a connection of its own, so it holds across nodes and is released by the server
        if this process dies. Not a lock between threads of one process."""
        if self.engine.dialect.name == "postgresql":
            with self._advisory_lock(key):
                yield
            return
        if self._peek_path is None:
            yield
            return
        with self._peek_lock:
            if self._locks_fd is None:
                self._locks_fd = os.open(self._peek_path + "-locks", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.lockf(self._locks_fd, fcntl.LOCK_EX, 1, key)
        try:
            yield
        finally:
            fcntl.lockf(self._locks_fd, fcntl.LOCK_UN, 1, key)

    @contextlib.contextmanager
    def _advisory_lock(self, key: int) -> Iterator[None]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("SELECT pg_advisory_lock(:ns, :key)"),
                         {"ns": ADVISORY_NAMESPACE, "key": key})
            try:
                yield
            finally:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"),
                                 {"ns": ADVISORY_NAMESPACE, "key": key})
                except Exception:  # noqa: BLE001 - close it: the server drops its locks
                    conn.invalidate()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.engine.dispose()
        if self._peek_conn is not None:
            self._peek_conn.close()
            self._peek_conn = None
        if self._locks_fd is not None:
            os.close(self._locks_fd)
            self._locks_fd = None
        if self._gate:
            self._gate.close()
