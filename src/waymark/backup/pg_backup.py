"""Setting up pgBackRest for Waymark's PostgreSQL, and taking base backups.

`waymark backup pg-setup` (on the database host, as root or the postgres user) writes the
configuration, creates the stanza, and then either says which postgresql.conf lines are
missing (WAL archiving needs a restart) or, when archiving works, checks it end to end and
takes the first full backup. The daily ``pg_backup`` job and `waymark backup pg-backup` take
the next one: full when the newest full backup is older than ``FULL_EVERY``, else
differential.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from waymark.backup import pgbackrest
from waymark.backup.litestream import BackupError
from waymark.settings import Settings

KINDS = ("auto", "full", "diff", "incr")


@dataclass
class SetupReport:
    config: str
    missing: dict[str, str] = field(default_factory=dict)  # postgresql.conf lines to add
    first_backup: dict[str, Any] | None = None


def _server_settings(settings: Settings, names: list[str]) -> dict[str, str]:
    from waymark.db.engine import make_engine

    engine = make_engine(settings.resolved_database_url, pool_size=1,
                         transaction_pooler=settings.db_transaction_pooler)
    try:
        with engine.connect() as conn:
            return {n: str(conn.execute(text("SELECT current_setting(:n)"), {"n": n}).scalar_one())
                    for n in names}
    finally:
        engine.dispose()


def _same(name: str, want: str, have: str) -> bool:
    if name == "archive_timeout":  # PostgreSQL reports "1min" for "60s"
        units = {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}
        def seconds(v: str) -> float:
            num = v.rstrip("abcdefghijklmnopqrstuvwxyz")
            return float(num) * units.get(v[len(num):] or "s", 1)
        return seconds(want) == seconds(have)
    return want == have


def setup(settings: Settings) -> SetupReport:
    pgbackrest.check_postgres(settings)
    at = pgbackrest.server(settings)
    report = SetupReport(str(pgbackrest.write_config(settings, at)))
    wanted = pgbackrest.postgres_conf(settings)
    have = _server_settings(settings, list(wanted))
    report.missing = {k: v for k, v in wanted.items() if not _same(k, v, have[k])}
    proc = pgbackrest.run(settings, "stanza-create", at=at, timeout=600)
    if proc.returncode != 0:
        raise pgbackrest.failed(proc, "pgbackrest stanza-create")
    if report.missing:
        return report
    proc = pgbackrest.run(settings, "check", at=at, timeout=600)
    if proc.returncode != 0:
        raise pgbackrest.failed(proc, "pgbackrest check (is WAL archiving working?)")
    if not pgbackrest.info(settings, at).get("backup"):
        report.first_backup = take_backup(settings, "full")
    return report


def choose_kind(info: dict[str, Any], now: float | None = None) -> str:
    """Full when there is no full backup newer than FULL_EVERY, else differential."""
    now = time.time() if now is None else now
    fulls = [b["timestamp"]["stop"] for b in info.get("backup", []) if b["type"] == "full"]
    if not fulls or now - max(fulls) >= pgbackrest.FULL_EVERY.total_seconds():
        return "full"
    return "diff"


def take_backup(settings: Settings, kind: str = "auto") -> dict[str, Any]:
    """One base backup; returns pgBackRest's record of it (label, type, times, sizes)."""
    if kind not in KINDS:
        raise BackupError(f"backup type must be one of {', '.join(KINDS)}")
    pgbackrest.check_postgres(settings)
    at = pgbackrest.server(settings)
    if kind == "auto":
        kind = choose_kind(pgbackrest.info(settings, at))
    proc = pgbackrest.run(settings, f"--type={kind}", "backup", at=at, timeout=24 * 3600)
    if proc.returncode != 0:
        raise pgbackrest.failed(proc, f"pgbackrest backup --type={kind}")
    backups = pgbackrest.info(settings, at).get("backup", [])
    return max(backups, key=lambda b: b["timestamp"]["stop"])


def push_wal(settings: Settings, lag_seconds: float | None) -> bool:
    """Switch to a new WAL segment (so it gets archived) when the archive lags more than
    twice archive_timeout. PostgreSQL 15 was seen skipping archive_timeout after a restart
    until its next checkpoint (up to checkpoint_timeout, 5 min): the RPO would silently
    grow. The worker's backup_lag job calls this every minute; True when it switched.
    Needs superuser or `GRANT EXECUTE ON FUNCTION pg_switch_wal() TO <waymark role>`."""
    from sqlalchemy.exc import ProgrammingError

    from waymark.db.engine import make_engine

    if lag_seconds is None or lag_seconds <= 2 * max(settings.pg_archive_timeout_seconds, 1):
        return False
    engine = make_engine(settings.resolved_database_url, pool_size=1,
                         transaction_pooler=settings.db_transaction_pooler)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_switch_wal()"))
        return True
    except ProgrammingError as exc:  # permission denied: said once per run of the job
        raise BackupError("the WAL archive lags and cannot be pushed: GRANT EXECUTE ON FUNCTION "
                          "pg_switch_wal() TO the Waymark database role") from exc
    finally:
        engine.dispose()
