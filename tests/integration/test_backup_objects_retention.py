"""Backup copies of deleted objects are kept WAYMARK_ARCHIVE_DAYS after the *deletion*, not
after the backup copy was made: an old object deleted by mistake keeps its backup."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import make_settings
from waymark.backup.objects import backup_objects, backup_store
from waymark.settings import Settings
from waymark.storage import open_store

KEY = "uploads/ab/old-original.gpx"


def _settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return make_settings(tmp_path, sqlite_url, backup_url=f"file://{tmp_path / 'backup'}",
                         archive_days=365, encrypt_objects=False)


def _age_backup_copy(tmp_path: Path, days: int) -> None:
    """The backup copy was made long ago (its file's modification time)."""
    copy = tmp_path / "backup" / "objects" / KEY
    assert copy.is_file()
    when = (datetime.now(UTC) - timedelta(days=days)).timestamp()
    os.utime(copy, (when, when))


def _backed_up(settings: Settings) -> set[str]:
    return {info.key for info in backup_store(settings).list_sync()}


def test_old_object_deleted_today_keeps_its_backup_for_archive_days(tmp_path: Path,
                                                                    sqlite_url: str) -> None:
    settings = _settings(tmp_path, sqlite_url)
    primary = open_store(settings.resolved_object_store_url)
    primary.put_sync(KEY, b"<gpx>a walk from two years ago</gpx>")
    assert backup_objects(settings).copied == 1
    _age_backup_copy(tmp_path, days=700)  # backed up two years ago, unchanged since

    primary.delete_sync(KEY)  # deleted by mistake today
    today = datetime.now(UTC)
    assert backup_objects(settings, now=today).pruned == 0
    assert KEY in _backed_up(settings)
    # still there the day before the retention ends ...
    assert backup_objects(settings, now=today + timedelta(days=364)).pruned == 0
    assert KEY in _backed_up(settings)
    # ... and gone once WAYMARK_ARCHIVE_DAYS have passed since the deletion
    assert backup_objects(settings, now=today + timedelta(days=366)).pruned == 1
    assert KEY not in _backed_up(settings)


def test_an_object_that_comes_back_starts_its_retention_again(tmp_path: Path,
                                                              sqlite_url: str) -> None:
    settings = _settings(tmp_path, sqlite_url)
    primary = open_store(settings.resolved_object_store_url)
    primary.put_sync(KEY, b"v1")
    backup_objects(settings)
    primary.delete_sync(KEY)
    today = datetime.now(UTC)
    backup_objects(settings, now=today)  # deletion noticed
    primary.put_sync(KEY, b"v1")  # restored by its owner
    backup_objects(settings, now=today + timedelta(days=200))
    primary.delete_sync(KEY)  # deleted again
    assert backup_objects(settings, now=today + timedelta(days=300)).pruned == 0
    assert backup_objects(settings, now=today + timedelta(days=600)).pruned == 0
    assert backup_objects(settings, now=today + timedelta(days=666)).pruned == 1
