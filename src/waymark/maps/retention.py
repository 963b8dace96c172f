"""Retention: trash -> archive -> purge, and archiving of old layer snapshots.

Policy (all from settings):

- A deleted map stays in the trash for WAYMARK_TRASH_DAYS; its owner can restore it.
- Then it is *archived*: its bundle (maps/exports.make_bundle, plus who owned it and when it
  was deleted) is written, encrypted, to archive storage as
  ``maps/<public id>/<archived stamp>.json``; its rows (layers, features, history,
  snapshots, uploads) and its objects are deleted from the live system.
- The archive is *purged* WAYMARK_ARCHIVE_DAYS after archiving.
- Each layer keeps its newest WAYMARK_SNAPSHOT_KEEP_VERSIONS snapshot versions (and always
  the current one); older versions move to ``snapshots/<archived stamp>/<layer>/<version>-
  <sha>.geojson.gz`` in archive storage and are purged after WAYMARK_ARCHIVE_DAYS too.

The stamp in each archive key is the only clock: purging needs no database table and works
the same on every backend. Every function takes ``now`` so tests can move time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from waymark import jsonutil
from waymark.db.engine import Database
from waymark.db.models import Layer, Map, Snapshot, Upload, User, as_utc
from waymark.maps.exports import make_bundle
from waymark.settings import Settings
from waymark.storage import ObjectStore, open_store
from waymark.storage.crypto import EncryptedObjectStore, key_provider

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_MAP_ARCHIVE = re.compile(r"^maps/([0-9A-Za-z_-]+)/(\d{8}T\d{6}Z)\.json$")
_SNAP_ARCHIVE = re.compile(r"^snapshots/(\d{8}T\d{6}Z)/")


@dataclass
class RetentionReport:
    maps_archived: list[str] = field(default_factory=list)
    archives_purged: list[str] = field(default_factory=list)
    snapshots_archived: int = 0
    snapshot_archives_purged: int = 0
    objects_deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"maps_archived": self.maps_archived, "archives_purged": self.archives_purged,
                "snapshots_archived": self.snapshots_archived,
                "snapshot_archives_purged": self.snapshot_archives_purged,
                "objects_deleted": self.objects_deleted}

    def counts(self) -> dict[str, int]:
        """Items handled, by action (the `action` label of waymark_retention_items_total)."""
        return {"map_archived": len(self.maps_archived),
                "archive_purged": len(self.archives_purged),
                "snapshot_archived": self.snapshots_archived,
                "snapshot_archive_purged": self.snapshot_archives_purged}


def _stamp(now: datetime) -> str:
    return as_utc(now).astimezone(UTC).strftime(STAMP_FORMAT)


def _parse_stamp(stamp: str) -> datetime:
    return datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC)


def archive_store(settings: Settings) -> ObjectStore:
    store = open_store(settings.resolved_archive_url)
    if settings.encrypt_objects:
        return EncryptedObjectStore(store, key_provider(settings))
    return store


def _delete_unreferenced_snapshots(session, store: ObjectStore, shas: set[str]) -> int:  # type: ignore[no-untyped-def]
    """Delete snapshot objects no remaining Snapshot row or layer points to."""
    deleted = 0
    for sha in shas:
        used = session.scalar(select(func.count()).select_from(Snapshot)
                              .where(Snapshot.sha256 == sha))
        used = used or session.scalar(select(func.count()).select_from(Layer)
                                      .where(Layer.snapshot_sha == sha))
        if not used:
            from waymark.storage.keys import snapshot_key

            store.delete_sync(snapshot_key(sha))
            deleted += 1
    return deleted


def archive_trashed_maps(db: Database, store: ObjectStore, archive: ObjectStore,
                         trash_days: int, now: datetime) -> RetentionReport:
    report = RetentionReport()
    cutoff = as_utc(now) - timedelta(days=trash_days)
    with db.read() as s:
        due = [row for row in s.execute(select(Map.id, Map.public_id, Map.deleted_at)
                                        .where(Map.deleted_at.is_not(None)))
               if as_utc(row.deleted_at) <= cutoff]
    for map_pk, public_id, _deleted_at in due:
        archive_map(db, store, archive, map_pk, public_id, now, report)
    return report


def archive_map(db: Database, store: ObjectStore, archive: ObjectStore, map_pk: int,
                public_id: str, now: datetime, report: RetentionReport, *,
                keep_owner: bool = True) -> None:
    """Archive one map in the trash and delete it from the live system. keep_owner=False
    leaves the owner's e-mail out of the archive (their account is being deleted)."""
    with db.write() as s:
        map_ = s.get(Map, map_pk)
        if map_ is None or map_.deleted_at is None:  # restored meanwhile
            return
        bundle = make_bundle(s, map_)
        owner = s.get(User, map_.owner_id) if keep_owner else None
        bundle["archived"] = {"public_id": public_id, "owner_email": owner.email if owner else None,
                              "deleted_at": as_utc(map_.deleted_at).isoformat(),
                              "archived_at": as_utc(now).isoformat()}
        key = f"maps/{public_id}/{_stamp(now)}.json"
        archive.put_sync(key, jsonutil.dumpb(bundle), content_type="application/json")
        uploads = list(s.scalars(select(Upload.object_key).where(Upload.map_id == map_pk)))
        shas = set(s.scalars(select(Snapshot.sha256).join(Layer, Layer.id == Snapshot.layer_id)
                             .where(Layer.map_id == map_pk)))
        shas |= {sha for sha in s.scalars(select(Layer.snapshot_sha)
                                          .where(Layer.map_id == map_pk)) if sha}
        s.delete(map_)  # layers, features, snapshots, history, uploads, jobs cascade
        s.flush()
        report.objects_deleted += _delete_unreferenced_snapshots(s, store, shas)
    for object_key in uploads:
        store.delete_sync(object_key)
        report.objects_deleted += 1
    for prefix in (f"uploads/{public_id}", f"bundles/{public_id}"):
        for info in store.list_sync(prefix):
            store.delete_sync(info.key)
            report.objects_deleted += 1
    report.maps_archived.append(public_id)


def archiver(settings: Settings, db: Database, store: ObjectStore) -> Callable[[int, str], None]:
    """archive(map_pk, public_id): archive one trashed map now, leaving the owner's e-mail out
    (used when its owner's account is deleted)."""
    archive = archive_store(settings)

    def run(map_pk: int, public_id: str) -> None:
        archive_map(db, store, archive, map_pk, public_id, datetime.now(UTC), RetentionReport(),
                    keep_owner=False)

    return run


def archive_old_snapshots(db: Database, store: ObjectStore, archive: ObjectStore,
                          keep: int, now: datetime) -> RetentionReport:
    report = RetentionReport()
    stamp = _stamp(now)
    with db.read() as s:
        layers = list(s.execute(select(Layer.id, Layer.public_id, Layer.snapshot_sha)))
    for layer_pk, layer_public, current_sha in layers:
        with db.read() as s:
            versions = list(s.execute(select(Snapshot.id, Snapshot.version, Snapshot.sha256,
                                             Snapshot.object_key)
                                      .where(Snapshot.layer_id == layer_pk)
                                      .order_by(Snapshot.version.desc())))
        old = [v for v in versions[max(keep, 0):] if v.sha256 != current_sha]
        if not old:
            continue
        for snap_id, version, sha, object_key in old:
            try:
                data = store.get_sync(object_key)
            except Exception:  # noqa: BLE001 - object already gone: drop the row only
                data = None
            if data is not None:
                archive.put_sync(f"snapshots/{stamp}/{layer_public}/{version}-{sha}.geojson.gz",
                                 data, content_type="application/geo+json")
            with db.write() as s:
                s.execute(delete(Snapshot).where(Snapshot.id == snap_id))
                s.flush()
                report.objects_deleted += _delete_unreferenced_snapshots(s, store, {sha})
            report.snapshots_archived += 1
    return report


def purge_archives(archive: ObjectStore, archive_days: int, now: datetime) -> RetentionReport:
    report = RetentionReport()
    cutoff = as_utc(now) - timedelta(days=archive_days)
    for info in archive.list_sync("maps"):
        match = _MAP_ARCHIVE.match(info.key)
        if match and _parse_stamp(match.group(2)) <= cutoff:
            archive.delete_sync(info.key)
            report.archives_purged.append(info.key)
    for info in archive.list_sync("snapshots"):
        match = _SNAP_ARCHIVE.match(info.key)
        if match and _parse_stamp(match.group(1)) <= cutoff:
            archive.delete_sync(info.key)
            report.snapshot_archives_purged += 1
    return report


def run_retention(settings: Settings, db: Database, store: ObjectStore,
                  now: datetime | None = None, archive: ObjectStore | None = None,
                  record: Callable[[dict[str, int]], None] | None = None) -> RetentionReport:
    """One pass of the whole policy (the periodic `retention` job and `waymark backup
    retention`); `record` is told the counts of a finished pass (the callers pass the metrics
    recorder, observability.metrics.retention_finished)."""
    now = as_utc(now or datetime.now(UTC))
    archive = archive or archive_store(settings)
    total = RetentionReport()
    for part in (archive_trashed_maps(db, store, archive, settings.trash_days, now),
                 archive_old_snapshots(db, store, archive, settings.snapshot_keep_versions, now),
                 purge_archives(archive, settings.archive_days, now)):
        total.maps_archived += part.maps_archived
        total.archives_purged += part.archives_purged
        total.snapshots_archived += part.snapshots_archived
        total.snapshot_archives_purged += part.snapshot_archives_purged
        total.objects_deleted += part.objects_deleted
    if record is not None:
        record(total.counts())
    return total


def read_archive(archive: ObjectStore, key: str) -> bytes:
    """An archived object, decrypted: a map bundle re-imports through the bundle import
    (`POST /api/v1/maps/import-bundle`), a snapshot is the layer's gzip GeoJSON."""
    data = archive.get_sync(key)
    if key.startswith("maps/"):
        bundle = jsonutil.loads(data)
        bundle.pop("archived", None)
        return jsonutil.dumpb(bundle)
    return data

