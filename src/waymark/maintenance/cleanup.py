"""Maintenance jobs that remove what is no longer needed, each bounded by its setting:
orphaned import staging layers (decision 0004), live-position history, expired file-store
sessions, old configuration backups and finished import jobs."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from waymark.db.models import Job, Layer, LivePosition
from waymark.maintenance.jobs import Context, Outcome, delete_in_batches

_CONFIG_BACKUP = re.compile(r"^(\d{8}T\d{6}Z)\.json$")


def staging_layers(ctx: Context) -> Outcome:
    """Hidden staging layers older than WAYMARK_STAGING_LAYER_HOURS: left by an import whose
    process died (a failed import drops its own). Invisible, so safe to delete."""
    from waymark.maps.imports import drop_staging

    cutoff = ctx.now - timedelta(hours=ctx.settings.staging_layer_hours)
    with ctx.db.read() as s:
        orphans = list(s.scalars(select(Layer.id).where(Layer.staging.is_(True),
                                                        Layer.created_at < cutoff)))
    for layer_id in orphans:
        drop_staging(ctx.db, layer_id)
    return Outcome(len(orphans), {"older_than_hours": ctx.settings.staging_layer_hours})


def live_history(ctx: Context) -> Outcome:
    """Live-device positions older than WAYMARK_LIVE_HISTORY_DAYS."""
    days = ctx.settings.live_history_days
    removed = delete_in_batches(ctx.db, LivePosition,
                                 LivePosition.recorded_at < ctx.now - timedelta(days=days))
    return Outcome(removed, {"older_than_days": days})


def finished_jobs(ctx: Context) -> Outcome:
    """Import jobs that finished (done or failed) more than WAYMARK_JOB_RETENTION_DAYS ago."""
    days = ctx.settings.job_retention_days
    removed = delete_in_batches(ctx.db, Job, Job.status.in_(("done", "failed")),
                                 Job.updated_at < ctx.now - timedelta(days=days))
    return Outcome(removed, {"older_than_days": days})


def sessions(ctx: Context) -> Outcome:
    """Expired sessions of the file session store (a file each; Litestar removes one only
    when it is read again, so sessions never used again would stay forever)."""
    from litestar.stores.file import FileStore

    directory = ctx.settings.data_dir / "sessions"
    if not directory.is_dir():
        return Outcome(detail={"note": "no session directory yet"})
    before = sum(1 for _ in directory.iterdir())
    asyncio.run(FileStore(directory).delete_expired())
    after = sum(1 for _ in directory.iterdir())
    return Outcome(before - after, {"sessions_left": after})


def config_backups(ctx: Context) -> Outcome:
    """Configuration backups (`<backup_url>/config/<stamp>.json`) older than
    WAYMARK_CONFIG_BACKUP_DAYS; the newest one and latest.json always stay."""
    from waymark.backup.litestream import required_target
    from waymark.storage import open_store

    store = open_store(required_target(ctx.settings).sub("config"))
    stamped = sorted((m.group(1), info.key) for info in store.list_sync("")
                     if (m := _CONFIG_BACKUP.match(info.key.rsplit("/", 1)[-1])))
    cutoff = ctx.now - timedelta(days=ctx.settings.config_backup_days)
    removed = 0
    for stamp, key in stamped[:-1]:  # never the newest
        if datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) < cutoff:
            store.delete_sync(key)
            removed += 1
    return Outcome(removed, {"kept": len(stamped) - removed})
