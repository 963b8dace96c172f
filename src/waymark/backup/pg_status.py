"""`waymark backup status` on PostgreSQL: WAL archiving (PostgreSQL's own pg_stat_archiver)
and base backups (`pgbackrest info`), as status.py does for Litestream."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from waymark.backup import pgbackrest, urls
from waymark.backup.litestream import BackupError, required_target
from waymark.settings import Settings

ARCHIVER_SQL = text("""
    SELECT current_setting('archive_mode'), a.last_archived_wal, a.last_archived_time,
           a.failed_count, a.last_failed_wal, a.last_failed_time,
           pg_walfile_name(pg_current_wal_lsn()), pg_current_wal_lsn() - '0/0'::pg_lsn,
           pg_size_bytes(current_setting('wal_segment_size'))
    FROM pg_stat_archiver a""")


@dataclass
class PostgresBackupStatus:
    repository: str
    stanza: str
    archive_mode: str
    last_archived_wal: str | None
    last_archived_at: str | None
    current_wal: str | None
    lag_seconds: float | None  # 0 when every written WAL byte is archived
    archive_failures: int
    last_failed_wal: str | None
    last_failed_at: str | None
    last_backup: dict[str, Any] | None
    backups: int
    oldest_restore_point: str | None
    newest_wal_in_repository: str | None
    pitr_window_hours: int
    error: str | None = None  # pgbackrest info could not run

    @property
    def archiving_failing(self) -> bool:
        return bool(self.last_failed_at and (not self.last_archived_at
                                             or self.last_failed_at > self.last_archived_at))

    @property
    def ok(self) -> bool:
        return self.last_backup is not None and self.archive_mode == "on" \
            and not self.archiving_failing

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def segment_end(name: str, segment_bytes: int) -> int | None:
    """LSN (as a number) just past WAL segment ``name`` (TTTTTTTTXXXXXXXXYYYYYYYY)."""
    if len(name) != 24 or not all(c in "0123456789ABCDEF" for c in name.upper()):
        return None  # a .history or .partial file
    return int(name[8:16], 16) * 2**32 + (int(name[16:24], 16) + 1) * segment_bytes


def _archiver(settings: Settings) -> dict[str, Any]:
    from waymark.db.engine import make_engine

    engine = make_engine(settings.resolved_database_url, pool_size=1,
                         transaction_pooler=settings.db_transaction_pooler)
    try:
        with engine.connect() as conn:
            row = conn.execute(ARCHIVER_SQL).one()
    except Exception as exc:  # noqa: BLE001 - reported with the fix
        raise BackupError(f"cannot read pg_stat_archiver: {exc}") from None
    finally:
        engine.dispose()
    mode, wal, at, failures, failed_wal, failed_at, current, lsn, segment = row
    lag = None
    if wal and at:
        end = segment_end(wal, int(segment))
        # after a timeline history file: behind if the current segment holds WAL
        behind = int(lsn) > end if end is not None else int(lsn) % int(segment) != 0
        lag = max(0.0, time.time() - at.timestamp()) if behind else 0.0
    return {"archive_mode": mode, "last_archived_wal": wal, "last_archived_at": _iso(at),
            "archive_failures": int(failures or 0), "last_failed_wal": failed_wal,
            "last_failed_at": _iso(failed_at), "current_wal": current, "lag_seconds": lag}


def _stamp(epoch: int | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch else None


def _backups(settings: Settings) -> dict[str, Any]:
    try:
        info = pgbackrest.info(settings)
    except BackupError as exc:
        return {"error": str(exc), "last_backup": None, "backups": 0,
                "oldest_restore_point": None, "newest_wal_in_repository": None}
    backups = sorted(info.get("backup", []), key=lambda b: b["timestamp"]["stop"])
    last = backups[-1] if backups else None
    archive = info.get("archive") or [{}]
    return {
        "last_backup": {"label": last["label"], "type": last["type"],
                        "started_at": _stamp(last["timestamp"]["start"]),
                        "finished_at": _stamp(last["timestamp"]["stop"]),
                        "size": last["info"]["size"],
                        "repository_size": last["info"]["repository"]["size"]} if last else None,
        "backups": len(backups),
        "oldest_restore_point": _stamp(backups[0]["timestamp"]["stop"]) if backups else None,
        "newest_wal_in_repository": archive[-1].get("max"), "error": None,
    }


def backup_status(settings: Settings) -> PostgresBackupStatus:
    pgbackrest.check_postgres(settings)
    return PostgresBackupStatus(
        repository=urls.public(required_target(settings).sub("pg")), stanza=pgbackrest.STANZA,
        pitr_window_hours=settings.pitr_window_hours, **_archiver(settings), **_backups(settings))


def record_metrics(settings: Settings) -> PostgresBackupStatus:
    """waymark_backup_lag_seconds, _last_success_timestamp_seconds (the last archived WAL)
    and waymark_backup_base_timestamp_seconds (the newest base backup)."""
    from waymark.observability import metrics

    status = backup_status(settings)
    if status.lag_seconds is not None:
        metrics.BACKUP_LAG.set(status.lag_seconds)
    if status.last_archived_at and not status.archiving_failing:
        metrics.BACKUP_LAST_SUCCESS.set(datetime.fromisoformat(status.last_archived_at).timestamp())
    if status.last_backup:
        metrics.BACKUP_BASE_LAST.set(
            datetime.fromisoformat(status.last_backup["finished_at"]).timestamp())
    return status


def describe_backups(settings: Settings) -> tuple[str, str | None]:
    """For `waymark check`: one line on the PostgreSQL backups, and a problem (or None)."""
    if settings.postgres_managed:
        line = ("the provider's (WAYMARK_POSTGRES_MANAGED): point-in-time recovery is in its "
                "console; pgBackRest is not used")
        return line, None
    fix = ("run `waymark backup pg-setup` on the database host, or set "
           "WAYMARK_POSTGRES_MANAGED=true if a cloud provider backs this database up")
    if not settings.backup_url:
        return "none (no WAYMARK_BACKUP_URL)", f"PostgreSQL is not backed up: {fix}"
    try:
        status = backup_status(settings)
    except BackupError as exc:
        return f"unknown: {exc}", f"PostgreSQL backups cannot be checked ({exc}): {fix}"
    last = status.last_backup["finished_at"] if status.last_backup else "none"
    line = (f"pgBackRest to {status.repository}: last base backup {last}, last archived WAL "
            f"{status.last_archived_wal or 'none'} ({status.archive_failures} failures)")
    if status.ok:
        return line, None
    why = status.error or ("WAL archiving is failing" if status.archiving_failing else
                           "archive_mode is off" if status.archive_mode != "on" else
                           "no base backup yet")
    return line, f"PostgreSQL backups are not working ({why}): {fix}"
