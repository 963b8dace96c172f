"""Restoring the database from its Litestream replica.

``restore_database`` restores into a temporary file next to the target, runs SQLite's
``PRAGMA integrity_check`` on it, and only then moves it into place. It refuses to replace
the live database unless ``force`` is given (stop the app first: a running app keeps the
old file open). ``boot_restore`` is what ``waymark serve`` does before migrations when the
database file is missing and a replica exists.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from waymark.backup import litestream
from waymark.backup.litestream import BackupError
from waymark.settings import Settings


@dataclass
class RestoreResult:
    path: Path
    restored: bool
    to_time: str | None
    integrity: str
    seconds: float
    size: int


def parse_moment(value: str) -> datetime:
    """An ISO-8601 time (naive = UTC), in UTC."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BackupError(f"--to-time {value!r} is not an ISO-8601 time "
                          "(e.g. 2026-01-31T12:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_time(value: str) -> str:
    """An ISO-8601 time (naive = UTC) as Litestream's RFC 3339 UTC form."""
    moment = parse_moment(value)
    frac = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def integrity_check(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return "; ".join(str(r[0]) for r in rows)


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + s) for s in ("-wal", "-shm")]


def _litestream_state(path: Path) -> Path:
    return path.with_name(f".{path.name}-litestream")


def restore_database(settings: Settings, *, to_time: str | None = None,
                     output: Path | None = None, force: bool = False,
                     if_replica_exists: bool = False) -> RestoreResult:
    live = litestream.database_path(settings)
    target = (output or live).resolve()
    is_live = target == live
    if target.exists() and not force:
        what = "the live database" if is_live else "an existing file"
        raise BackupError(f"refusing to overwrite {what} {target}: stop the app and pass "
                          "--force, or restore elsewhere with --output PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.restore-{os.getpid()}")
    for leftover in (tmp, *_sidecars(tmp)):
        leftover.unlink(missing_ok=True)
    args = ["restore", "-o", str(tmp)]
    stamp = parse_time(to_time) if to_time else None
    if stamp:
        args += ["-timestamp", stamp]
    if if_replica_exists:
        args.append("-if-replica-exists")
    started = time.monotonic()
    proc = litestream.run(settings, *args, str(live))
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BackupError(f"litestream restore failed: {detail[0]}")
    if not tmp.exists():
        if if_replica_exists:
            return RestoreResult(target, False, stamp, "no replica", 0.0, 0)
        raise BackupError("litestream restore wrote nothing: is WAYMARK_BACKUP_URL right?")
    result = integrity_check(tmp)
    if result != "ok":
        tmp.unlink(missing_ok=True)
        raise BackupError(f"restored database failed the integrity check: {result}")
    for path in _sidecars(target):
        path.unlink(missing_ok=True)
    if is_live:
        # Litestream's local state belongs to the replaced file: it is rebuilt on start.
        shutil.rmtree(_litestream_state(target), ignore_errors=True)
    os.replace(tmp, target)
    for path in _sidecars(tmp):
        path.unlink(missing_ok=True)
    return RestoreResult(target, True, stamp, result, time.monotonic() - started,
                         target.stat().st_size)


def replica_exists(settings: Settings) -> bool:
    proc = litestream.run(settings, "ltx", "-json", "-level", "all",
                          str(litestream.database_path(settings)), timeout=120)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BackupError(f"cannot list the replica: {detail[0]}")
    return proc.stdout.strip() not in ("", "[]", "null")


def boot_restore(settings: Settings) -> RestoreResult | None:
    """Before migrations: restore the database if its file is missing and a replica exists.

    Refused, with nothing changed, when the master key file is missing too: the app would
    create a new key on start, and every object encrypted under the old one would stay
    unreadable while new objects went under a key nobody has backed up."""
    if not settings.backup_url or not settings.is_sqlite:
        return None
    live = litestream.database_path(settings)
    if live.exists():
        return None
    key_file = settings.resolved_master_key_path
    if (settings.encrypt_objects and settings.master_key_source == "local-file"
            and not key_file.exists() and replica_exists(settings)):
        raise BackupError(
            f"the database is missing and a replica exists, but the master key file {key_file} "
            "is missing too: put it back from its separate backup first "
            "(docs/operations/restore.md, 'Master key'); starting now would create a new key "
            "that cannot read the existing objects")
    result = restore_database(settings, if_replica_exists=True)
    return result if result.restored else None
