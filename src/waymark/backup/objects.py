"""Incremental backup of object storage to ``<backup_url>/objects``, and its restore.

Objects are copied byte for byte, as stored: encrypted objects stay encrypted in the
backup (the master key is backed up separately, never next to the data). Objects are
immutable or rewritten whole, so "same key, same size" means already backed up.

On S3 the first line of defence is the bucket itself (versioning + replication to a second
bucket, see docs/operations/backup.md); this copy works on every backend and is what the
restore drill uses.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from waymark.backup.litestream import required_target
from waymark.settings import Settings
from waymark.storage import ObjectStore, open_store
from waymark.storage.crypto import open_object_store
from waymark.storage.errors import ObjectNotFound

_SNAPSHOT = re.compile(r"^snapshots/[0-9a-f]{2}/([0-9a-f]{64})\.geojson\.gz$")


@dataclass
class CopyReport:
    scanned: int = 0
    copied: int = 0
    skipped: int = 0
    pruned: int = 0
    bytes: int = 0
    verified: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def backup_store(settings: Settings) -> ObjectStore:
    return open_store(required_target(settings).sub("objects"))


def _primary_raw(settings: Settings) -> ObjectStore:
    return open_store(settings.resolved_object_store_url)


def _copy(src: ObjectStore, dst: ObjectStore, force: bool, report: CopyReport) -> None:
    started = time.monotonic()
    have = {info.key: info.size for info in dst.list_sync()}
    for info in src.list_sync():
        report.scanned += 1
        if not force and have.get(info.key) == info.size:
            report.skipped += 1
            continue
        dst.put_sync(info.key, src.get_sync(info.key))
        report.copied += 1
        report.bytes += info.size
    report.seconds = time.monotonic() - started


def backup_objects(settings: Settings, *, prune_after_days: int | None = None,
                   now: datetime | None = None) -> CopyReport:
    """Copy new and changed objects to the backup. The backup copy of an object deleted from
    primary storage is kept for WAYMARK_ARCHIVE_DAYS after the deletion was first seen (the
    copy itself may be years old: an old object deleted by mistake must stay restorable)."""
    src, dst = _primary_raw(settings), backup_store(settings)
    report = CopyReport()
    _copy(src, dst, False, report)
    days = settings.archive_days if prune_after_days is None else prune_after_days
    now = now or datetime.now(UTC)
    present = {info.key for info in src.list_sync()}
    ledger = DeletionLedger(settings)
    seen_deleted = ledger.load()
    deleted_since: dict[str, str] = {}
    for info in dst.list_sync():
        if info.key in present:
            continue
        since = datetime.fromisoformat(seen_deleted.get(info.key) or now.isoformat())
        if since <= now - timedelta(days=days):
            dst.delete_sync(info.key)
            report.pruned += 1
        else:
            deleted_since[info.key] = since.isoformat()
    if deleted_since != seen_deleted:
        ledger.save(deleted_since)
    try:
        from waymark.observability import metrics

        metrics.OBJECT_BACKUP_COPIED.inc(report.copied)
        metrics.BACKUP_LAST_SUCCESS.set(time.time())
    except ImportError:  # pragma: no cover - metrics are optional in minimal installs
        pass
    return report


class DeletionLedger:
    """When each backed-up object was first seen missing from primary storage:
    ``<backup_url>/objects-deleted/ledger.json`` (beside the copies, never among them)."""

    KEY = "ledger.json"

    def __init__(self, settings: Settings) -> None:
        self.store = open_store(required_target(settings).sub("objects-deleted"))

    def load(self) -> dict[str, str]:
        try:
            return json.loads(self.store.get_sync(self.KEY))
        except ObjectNotFound:
            return {}

    def save(self, deleted_since: dict[str, str]) -> None:
        self.store.put_sync(self.KEY, json.dumps(deleted_since, sort_keys=True).encode())


def restore_objects(settings: Settings, *, force: bool = False, verify: bool = True) -> CopyReport:
    """Copy objects from the backup into primary storage (missing or different ones; all
    with ``force``), then check that every snapshot's content still hashes to its name."""
    src, dst = backup_store(settings), _primary_raw(settings)
    report = CopyReport()
    _copy(src, dst, force, report)
    if verify:
        verify_snapshots(settings, report)
    return report


def verify_snapshots(settings: Settings, report: CopyReport) -> None:
    """Decrypt and hash every snapshot: the SHA-256 of the plaintext is its name (and ETag)."""
    store = open_object_store(settings)
    for info in store.list_sync("snapshots"):
        match = _SNAPSHOT.match(info.key)
        if not match:
            continue
        try:
            raw = gzip.decompress(store.get_sync(info.key))
        except Exception as exc:  # noqa: BLE001 - reported
            report.errors.append(f"{info.key}: {exc}")
            continue
        if hashlib.sha256(raw).hexdigest() != match.group(1):
            report.errors.append(f"{info.key}: content does not match its hash")
        else:
            report.verified += 1
