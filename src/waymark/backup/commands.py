"""CLI groups `waymark backup`, `waymark restore`, `waymark keys` (thin: logic lives in the
backup, storage.crypto and maps.retention modules)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from waymark.backup.litestream import BackupError


def _settings():  # type: ignore[no-untyped-def]
    from waymark.cli_support import settings_or_exit as load

    return load()


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group()
def backup() -> None:
    """Continuous database backup, object and configuration backups, retention."""


@backup.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def backup_status_cmd(as_json: bool) -> None:
    """Replica position, last sync, lag and size; exit 1 when there is no replica.

    PostgreSQL: last archived WAL, archive lag and failures, last base backup (pgBackRest)."""
    from waymark.backup import pg_status
    from waymark.backup import status as litestream_status

    settings = _settings()
    try:
        status = (litestream_status if settings.is_sqlite else pg_status).backup_status(settings)
    except BackupError as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(status.as_dict(), indent=2))
    else:
        for key, value in status.as_dict().items():
            click.echo(f"{key:>22}: {value}")
    if not status.ok:
        sys.exit(1)


@backup.command("config")
def backup_config_cmd() -> None:
    """Write the effective configuration (no secrets), schema version and key ids."""
    from waymark.backup.config import backup_config

    try:
        where, doc = backup_config(_settings())
    except BackupError as exc:
        raise _fail(exc) from None
    click.echo(f"wrote {where} (schema {doc['schema_revision']}, "
               f"keys {', '.join(doc['master_keys'].get('key_ids', [])) or 'none'})")


@backup.command("objects")
def backup_objects_cmd() -> None:
    """Copy new objects to <backup_url>/objects (incremental; ciphertext as stored)."""
    from waymark.backup.objects import backup_objects

    try:
        r = backup_objects(_settings())
    except BackupError as exc:
        raise _fail(exc) from None
    click.echo(f"objects: {r.scanned} scanned, {r.copied} copied ({r.bytes:,} bytes), "
               f"{r.skipped} already backed up, {r.pruned} pruned, {r.seconds:.2f}s")


@backup.command("restore-objects")
@click.option("--force", is_flag=True, help="Copy every object, even those present.")
def restore_objects_cmd(force: bool) -> None:
    """Copy objects back from the backup and verify every snapshot's hash."""
    from waymark.backup.objects import restore_objects

    try:
        r = restore_objects(_settings(), force=force)
    except BackupError as exc:
        raise _fail(exc) from None
    click.echo(f"objects: {r.scanned} in backup, {r.copied} restored ({r.bytes:,} bytes), "
               f"{r.skipped} already present; {r.verified} snapshots verified, "
               f"{len(r.errors)} errors, {r.seconds:.2f}s")
    for error in r.errors:
        click.echo(f"FAIL: {error}", err=True)
    if r.errors:
        sys.exit(1)


@backup.command("retention")
def retention_cmd() -> None:
    """Run the retention policy once: trash -> archive -> purge, old snapshots -> archive."""
    from waymark.db.engine import Database
    from waymark.maps.retention import run_retention
    from waymark.observability import metrics
    from waymark.storage.crypto import open_object_store

    settings = _settings()
    db = Database.for_settings(settings)
    try:
        report = run_retention(settings, db, open_object_store(settings),
                               record=metrics.retention_finished)
    finally:
        db.dispose()
    click.echo(json.dumps(report.as_dict(), indent=2))


@backup.command("archive-get")
@click.argument("key")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def archive_get_cmd(key: str, output: Path) -> None:
    """Decrypt one archived object (a map bundle: re-import it with
    POST /api/v1/maps/import-bundle)."""
    from waymark.maps.retention import archive_store, read_archive

    data = read_archive(archive_store(_settings()), key)
    output.write_bytes(data)
    click.echo(f"wrote {len(data):,} bytes to {output}")


@backup.command("config-file")
def config_file_cmd() -> None:
    """Print the Litestream (SQLite) or pgBackRest (PostgreSQL) configuration generated from
    the settings (credentials left out)."""
    from waymark.backup import litestream, pgbackrest

    settings = _settings()
    try:
        click.echo((litestream if settings.is_sqlite else pgbackrest).render(settings), nl=False)
    except BackupError as exc:
        raise _fail(exc) from None


@backup.command("pg-setup")
def pg_setup_cmd() -> None:
    """PostgreSQL: write the pgBackRest configuration, create the stanza; when WAL archiving
    is on, check it and take the first full backup, else print the lines it needs."""
    from waymark.backup.pg_backup import setup

    try:
        report = setup(_settings())
    except BackupError as exc:
        raise _fail(exc) from None
    click.echo(f"wrote {report.config}; stanza created")
    if report.missing:
        click.echo("add to postgresql.conf (or ALTER SYSTEM SET ...), restart PostgreSQL, then "
                   "run `waymark backup pg-setup` again:")
        for key, value in report.missing.items():
            click.echo(f"  {key} = '{value}'")
        sys.exit(2)
    click.echo("WAL archiving checked: OK")
    if report.first_backup:
        click.echo(f"first full backup: {report.first_backup['label']}")


@backup.command("pg-backup")
@click.option("--type", "kind", default="auto", show_default=True,
              type=click.Choice(["auto", "full", "diff", "incr"]),
              help="auto: full when the newest full backup is over 7 days old, else diff.")
def pg_backup_cmd(kind: str) -> None:
    """PostgreSQL: take a base backup now (the daily pg_backup job does this)."""
    from waymark.backup.pg_backup import take_backup

    try:
        done = take_backup(_settings(), kind)
    except BackupError as exc:
        raise _fail(exc) from None
    click.echo(f"{done['type']} backup {done['label']}: {done['info']['size']:,} bytes "
               f"({done['info']['repository']['delta']:,} stored)")


@click.command()
@click.option("--to-time", default=None, help="Point in time (ISO-8601, UTC if no zone).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write here instead of the live database: a file (SQLite) or a new data "
              "directory (PostgreSQL).")
@click.option("--force", is_flag=True, help="Replace an existing database, the live one included "
              "(stop the app, or PostgreSQL, first).")
@click.option("--boot", is_flag=True, help="What `waymark serve` does on start, for a separate "
              "init step (SQLite): restore only if the database file is missing and a replica "
              "exists. Exit 1 if that restore fails or the replica cannot be read: never go on "
              "with an empty database that would then replicate over the backup.")
def restore(to_time: str | None, output: Path | None, force: bool, boot: bool) -> None:
    """Restore the database from its backup (latest, or --to-time), then integrity-check it."""
    from waymark.backup.pg_restore import restore_cluster
    from waymark.backup.restore import boot_restore, restore_database

    settings = _settings()
    if boot:
        try:
            result = boot_restore(settings)
        except BackupError as exc:
            raise click.ClickException(f"boot-time restore failed: {exc}") from None
        click.echo("restored the database from the replica" if result else
                   "nothing to restore (the database exists, or no replica yet)")
        return
    try:
        run = restore_database if settings.is_sqlite else restore_cluster
        r = run(settings, to_time=to_time, output=output, force=force)
    except BackupError as exc:
        raise _fail(exc) from None
    click.echo(f"restored {r.path} ({r.size:,} bytes) to {r.to_time or 'latest'} in "
               f"{r.seconds:.2f}s; integrity_check: {r.integrity}")


@click.group()
def keys() -> None:
    """Master keys of the object encryption (envelope encryption)."""


@keys.command("list")
def keys_list() -> None:
    """Key ids in the master key file; the current one is marked."""
    from waymark.storage.crypto import key_provider

    provider = key_provider(_settings())
    current = provider.current_key_id()
    for key_id in provider.key_ids():
        click.echo(f"{'*' if key_id == current else ' '} {key_id}")


@keys.command("create")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The new key file (refused if it exists).")
def keys_create(output: Path) -> None:
    """Make a new master key file (mode 0600) to share between nodes as a secret
    (WAYMARK_MASTER_KEY_FILE); back it up like any other key."""
    from waymark.storage.keys_provider import LocalKeyFile

    if output.exists():
        raise click.ClickException(f"{output} exists: a key file is never overwritten")
    key_id = LocalKeyFile(output).current_key_id()
    click.echo(f"wrote master key {key_id} to {output}")


@keys.command("rotate")
@click.option("--retire-old", is_flag=True,
              help="Remove the old master keys once every object is re-wrapped.")
def keys_rotate(retire_old: bool) -> None:
    """New master key, then re-wrap every object's data key (online, no downtime)."""
    from waymark.maps.retention import archive_store
    from waymark.storage.crypto import key_provider, open_object_store, rewrap_all

    settings = _settings()
    provider = key_provider(settings)
    if not hasattr(provider, "add_key"):
        raise click.ClickException(
            "the master key is a KMS key: rotate it inside the KMS (automatic key rotation), "
            "or set WAYMARK_KMS_KEY_ID to a new key and re-wrap (docs/operations/backup.md)")
    old = provider.key_ids()
    new = provider.add_key()
    click.echo(f"new master key {new}; re-wrapping...")
    stores = [("objects", open_object_store(settings)), ("archive", archive_store(settings))]
    if settings.backup_url:
        from waymark.backup.objects import backup_store

        stores.append(("object backup", backup_store(settings)))
    for name, store in stores:
        r = rewrap_all(store, provider)
        click.echo(f"{name}: {r.scanned} objects, {r.rewrapped} re-wrapped, {r.plaintext} plaintext")
    if retire_old:
        provider.retire(old)
        click.echo(f"retired {', '.join(old)}")
    click.echo("back up the master key file now: see docs/operations/backup.md")
