"""PROTOTYPE (bench only, not product code): serialize SQLite write transactions.

Measures the change proposed in bench/RESULTS.md "Findings": before BEGIN IMMEDIATE, take a
per-process lock and then an exclusive flock() on `<db>.write-lock`, so concurrent writers
queue in the kernel and wake the moment the previous writer commits, instead of polling
SQLite's busy handler (which sleeps 1, 2, 5, ... up to 100 ms between retries and lets
newcomers overtake old waiters: multi-second tails under 16 concurrent editors).

Installed by monkeypatching waymark.db.engine.Database.write before the app is built; see
bench/proto/asgi_writegate.py. The real change belongs in src/waymark/db/engine.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from waymark.db import engine as engine_mod

_original_write = engine_mod.Database.write


def install() -> None:
    thread_lock = threading.RLock()
    fds: dict[str, int] = {}

    def lock_fd(db: engine_mod.Database) -> int | None:
        path = make_url(db.url).database
        if not path or path == ":memory:":
            return None
        if path not in fds:
            fds[path] = os.open(path + ".write-lock", os.O_RDWR | os.O_CREAT, 0o600)
        return fds[path]

    @contextlib.contextmanager
    def write(self: engine_mod.Database) -> Iterator[Session]:
        if not self.is_sqlite:
            with _original_write(self) as session:
                yield session
            return
        with thread_lock:
            fd = lock_fd(self)
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                with _original_write(self) as session:
                    yield session
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    engine_mod.Database.write = write  # type: ignore[method-assign]
