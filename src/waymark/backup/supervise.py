"""How `waymark serve` runs with continuous backup.

    waymark serve                     (outer: restore a missing DB, migrate, seed)
      └─ exec litestream replicate -config <generated> -exec "waymark serve --no-migrate ..."
           └─ waymark serve           (inner: WAYMARK_UNDER_LITESTREAM=1)
                ├─ granian (app workers)
                └─ waymark worker (jobs)

Litestream is the parent: it replicates from before the first request until after the
last one (a SIGTERM is forwarded to the app, then a final sync runs), and when the app dies
it syncs and exits so the service manager restarts the whole unit.
"""

from __future__ import annotations

import os
import sys

import click

from waymark.backup import litestream
from waymark.backup.restore import boot_restore
from waymark.settings import Settings


def is_inner() -> bool:
    """Is this `serve` the app that Litestream runs (the outer `serve` execed into it)?"""
    return os.environ.get(litestream.UNDER_LITESTREAM) == "1"


def before_serve(settings: Settings, backup: bool) -> tuple[bool, bool]:
    """(run under Litestream?, are we already the app under Litestream?)"""
    if os.environ.pop(litestream.UNDER_LITESTREAM, None) == "1":
        litestream.restore_ca_bundle()
        return False, True
    if not (backup and settings.backup_url):
        return False, False
    if not settings.is_sqlite:
        how = ("its provider's (WAYMARK_POSTGRES_MANAGED)" if settings.postgres_managed else
               "pgBackRest's, on the database host (`waymark backup status`)")
        click.echo("WAYMARK_BACKUP_URL: the database is PostgreSQL, so Litestream is not used; "
                   f"database backups are {how} (object and configuration backups still run)",
                   err=True)
        return False, False
    try:
        result = boot_restore(settings)
    except litestream.BackupError as exc:
        raise click.ClickException(f"boot-time restore failed: {exc}") from None
    if result is not None:
        click.echo(f"database was missing: restored {result.size:,} bytes from the replica in "
                   f"{result.seconds:.2f}s (integrity_check: {result.integrity})")
    return True, False


def exec_under_litestream(settings: Settings, host: str, port: int, workers: int, reload: bool,
                          job_worker: bool) -> None:
    app = [sys.executable, "-m", "waymark.cli", "serve", "--no-migrate", "--host", host,
           "--port", str(port), "--workers", str(workers),
           "--job-worker" if job_worker else "--no-job-worker"]
    if reload:
        app.append("--reload")
    click.echo(f"continuous backup: Litestream -> {litestream.required_target(settings).public}"
               f"/db (PITR window {settings.pitr_window_hours} h)")
    litestream.exec_replicate(settings, app)
