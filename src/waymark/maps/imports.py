"""Putting parsed features into layers, all or nothing, with progress.

Rows are inserted in chunks into a hidden staging layer, each chunk committed (so progress
is visible and a long import never holds the SQLite write lock for long). One final
transaction moves them into the target layer and records the history entry; until then no
reader sees any of them, and on any failure the staging layer is dropped. So an import is
atomic for users while its progress stays observable.

A file with several layers is merged in one transaction too, and a job passes `on_merged`
to mark itself done in that same transaction: a job whose worker dies is either merged and
done, or not merged at all and run again (staging layers carry the job's name, so the next
attempt drops what the dead one left).
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from waymark import jsonutil
from waymark.db.engine import Database
from waymark.db.models import Feature, Layer, Map, utcnow
from waymark.errors import NotFound
from waymark.formats import ImportResult, ParsedFeature
from waymark.formats.geometry import geometry_bbox
from waymark.ids import new_uuid
from waymark.maps.editing import LayerEditor
from waymark.maps.layers import create_layer
from waymark.maps.state import DEFAULT_STYLE

CHUNK = 5_000
Progress = Callable[[int, int], None]
OnMerged = Callable[[Any, "ImportSummary"], None]  # (session, summary), inside the merge
STAGING_NAME = "(import in progress)"


@dataclass
class ImportSummary:
    imported: int = 0
    layers: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reprojected_from: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"imported": self.imported, "layers": self.layers, "warnings": self.warnings,
                "reprojected_from": self.reprojected_from}


def _rows(features: Iterable[ParsedFeature], layer_id: int, user_id: int | None):  # type: ignore[no-untyped-def]
    now = utcnow()
    for f in features:
        bbox = geometry_bbox(f.geometry) if f.geometry is not None else None
        minx, miny, maxx, maxy = bbox or (None, None, None, None)
        yield {"uuid": str(uuidlib.uuid4()), "layer_id": layer_id,
               "geometry": jsonutil.dumps(f.geometry) if f.geometry is not None else None,
               "properties": jsonutil.dumps(f.properties or {}), "minx": minx, "miny": miny,
               "maxx": maxx, "maxy": maxy, "version": 1, "created_version": 0,
               "updated_by": user_id, "updated_at": now}


def _stage(db: Database, map_id: int, features: list[ParsedFeature], user_id: int | None,
           progress: Progress | None, done: int, total: int, name: str) -> int:
    with db.write() as session:
        staging = Layer(public_id=new_uuid(), map_id=map_id, name=name,
                        style="{}", position=-1, staging=True)
        session.add(staging)
        session.flush()
        staging_id = staging.id
    rows = _rows(features, staging_id, user_id)
    try:
        while True:
            chunk = [row for _, row in zip(range(CHUNK), rows, strict=False)]
            if not chunk:
                break
            with db.write() as session:
                session.execute(insert(Feature), chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    except BaseException:
        drop_staging(db, staging_id)
        raise
    return staging_id


def drop_staging(db: Database, staging_id: int) -> None:
    with db.write() as session:
        session.execute(delete(Feature).where(Feature.layer_id == staging_id))
        session.execute(delete(Layer).where(Layer.id == staging_id, Layer.staging.is_(True)))


def drop_staging_named(db: Database, map_id: int, name: str) -> int:
    """Drop the staging layers an earlier attempt of the same import left behind."""
    with db.read() as session:
        ids = list(session.scalars(select(Layer.id).where(
            Layer.map_id == map_id, Layer.staging.is_(True), Layer.name == name)))
    for staging_id in ids:
        drop_staging(db, staging_id)
    return len(ids)


def _merge(session, map_: Map, staging_id: int, target: Layer | dict[str, Any],  # type: ignore[no-untyped-def]
           user_id: int | None, info: dict[str, Any]) -> dict[str, Any]:
    """Create the layer if asked, move the staged rows in, record history."""
    if isinstance(target, dict):
        layer = create_layer(session, map_, user_id, target)
        session.flush()
    else:
        layer = session.get(Layer, target.id)
        if layer is None:
            raise NotFound("layer not found (deleted during the import?)")
    editor = LayerEditor(session, map_, layer, user_id)
    count, minx, miny, maxx, maxy = session.execute(
        select(func.count(Feature.id), func.min(Feature.minx), func.min(Feature.miny),
               func.max(Feature.maxx), func.max(Feature.maxy))
        .where(Feature.layer_id == staging_id)).one()
    session.execute(update(Feature).where(Feature.layer_id == staging_id)
                    .values(layer_id=layer.id, created_version=editor.new_version))
    session.execute(delete(Layer).where(Layer.id == staging_id))
    editor.count_delta = count
    if minx is not None:
        probe = Feature(minx=minx, miny=miny, maxx=maxx, maxy=maxy)
        editor._expand(probe)
    editor.record_layer_op("layer.import", None, {"count": count, **info})
    layer = editor.finish()
    return {"id": layer.public_id, "name": layer.name, "imported": count,
            "feature_count": layer.feature_count, "version": layer.version}


def _merge_all(db: Database, map_id: int, staged: list[tuple[Any, int]], user_id: int | None,
               info: dict[str, Any], summary: ImportSummary, on_merged: OnMerged | None) -> None:
    """One transaction for every staged layer (and the caller's completion record)."""
    with db.write() as session:
        map_ = session.get(Map, map_id)
        if map_ is None or map_.deleted_at is not None:
            raise NotFound("map not found")
        for target, staging_id in staged:
            merged = _merge(session, map_, staging_id, target, user_id, info)
            summary.imported += merged["imported"]
            summary.layers.append(merged)
        if on_merged is not None:
            on_merged(session, summary)


def import_result(db: Database, map_id: int, result: ImportResult, user_id: int | None, *,
                  layer: Layer | None = None, default_name: str = "Imported",
                  info: dict[str, Any] | None = None, progress: Progress | None = None,
                  staging_name: str = STAGING_NAME,
                  on_merged: OnMerged | None = None) -> ImportSummary:
    """Import parsed layers: into `layer` (all features) or as new layers of the map."""
    if layer is not None:
        groups: list[tuple[Any, list[ParsedFeature]]] = [
            (layer, [f for parsed in result.layers for f in parsed.features])]
    else:
        groups = [({"name": (parsed.name or default_name)[:200], "style": dict(DEFAULT_STYLE)},
                   parsed.features) for parsed in result.layers if parsed.features] or \
                 [({"name": default_name[:200], "style": dict(DEFAULT_STYLE)}, [])]
    return import_groups(db, map_id, groups, user_id, info=info, progress=progress,
                         staging_name=staging_name, on_merged=on_merged,
                         warnings=list(result.warnings),
                         reprojected_from=result.reprojected_from)


def import_groups(db: Database, map_id: int, groups: list[tuple[Any, list[ParsedFeature]]],
                  user_id: int | None, *, info: dict[str, Any] | None = None,
                  progress: Progress | None = None, staging_name: str = STAGING_NAME,
                  on_merged: OnMerged | None = None,
                  warnings: list[str] | None = None,
                  reprojected_from: str | None = None) -> ImportSummary:
    """Each group is (existing Layer or new-layer fields, features)."""
    info = info or {}
    summary = ImportSummary(warnings=warnings or [], reprojected_from=reprojected_from)
    total = sum(len(features) for _, features in groups)
    if progress:
        progress(0, total)
    staged: list[tuple[Any, int]] = []
    done = 0
    try:
        for target, features in groups:
            staged.append((target, _stage(db, map_id, features, user_id, progress, done, total,
                                          staging_name)))
            done += len(features)
        _merge_all(db, map_id, staged, user_id, info, summary, on_merged)
    except BaseException:
        for _, staging_id in staged:
            drop_staging(db, staging_id)
        raise
    return summary
