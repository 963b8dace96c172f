"""Editing a layer: the rules every feature edit shares, and the ORM LayerEditor.

The rules (input checks, `check_version`, `change_values` for the history row, `BUMP_MAP`)
are used by the one edit path, feature_write.apply_feature_edit (HTTP single edits, batches,
websocket edits), and by LayerEditor, which revert and imports use. A LayerEditor works
inside one write transaction. Every operation checks the feature's version, writes one row,
and appends one Change; `finish()` bumps the layer version once, so a batch of operations is
one version and one unit of undo.
"""

from __future__ import annotations

import uuid as uuidlib
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from waymark import jsonutil
from waymark.db.models import Change, Feature, Layer, Map, utcnow
from waymark.errors import Conflict, Invalid, NotFound, PreconditionFailed
from waymark.formats.geometry import geometry_bbox, validate_geometry
from waymark.maps.state import feature_json, feature_state, last_editor

UNSET: Any = object()
_maps = cast(Table, Map.__table__)  # the ORM types `__table__` as any FromClause
BUMP_MAP = (update(_maps).where(_maps.c.id == bindparam("map_pk"))
             .values(updated_at=bindparam("now"), version=_maps.c.version + 1))
MAX_PROPERTIES_BYTES = 256 * 1024
MAX_BATCH = 10_000


def parse_feature_id(value: str, *, index: int | None = None) -> str:
    try:
        return str(uuidlib.UUID(str(value)))
    except ValueError:
        raise Invalid(f"feature id {value!r} is not a UUID",
                      details=_where(index, field="id")) from None


def _where(index: int | None, **extra: Any) -> dict[str, Any]:
    details = dict(extra)
    if index is not None:
        details["index"] = index
    return details


def parse_version(value: Any, *, index: int | None = None) -> int | None:
    """The version a client says it edited (None: no check), which must be an integer."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        where = f"operation {index}: " if index is not None else ""
        raise Invalid(f"{where}version must be an integer", details=_where(index, field="version"))
    return value


def check_version(conn: Any, feature: Any, expected: int | None, index: int | None = None) -> None:
    """412 with the current feature and its last editor unless `expected` is its version."""
    if expected is not None and expected != feature.version:
        raise PreconditionFailed(
            f"feature {feature.uuid} is at version {feature.version}, not {expected}",
            details=_where(index, id=feature.uuid, current=feature_json(feature),
                           updated_by=last_editor(conn, feature)),
            headers={"ETag": f'"{feature.version}"'},
        )


def change_values(map_pk: int, layer_pk: int, layer_version: int, fid: str | None,
                  user_id: int | None, op: str, before: Any, after: Any,
                  now: datetime) -> dict[str, Any]:
    """The history row of one change (Change's columns)."""
    return {"map_id": map_pk, "layer_id": layer_pk, "layer_version": layer_version,
            "feature_uuid": fid, "user_id": user_id, "op": op,
            "before": jsonutil.dumps(before) if before is not None else None,
            "after": jsonutil.dumps(after) if after is not None else None, "created_at": now}


def check_geometry(geometry: Any, *, index: int | None = None) -> dict[str, Any] | None:
    if geometry is None:
        return None
    if not isinstance(geometry, dict):
        raise Invalid("geometry must be a GeoJSON geometry object or null",
                      details=_where(index, field="geometry"))
    try:
        validate_geometry(geometry)
    except ValueError as exc:
        raise Invalid(f"invalid geometry: {exc}", details=_where(index, field="geometry")) from None
    return geometry


def check_properties(properties: Any, *, index: int | None = None) -> dict[str, Any]:
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise Invalid("properties must be a JSON object", details=_where(index, field="properties"))
    if len(jsonutil.dumpb(properties)) > MAX_PROPERTIES_BYTES:
        raise Invalid(f"properties exceed {MAX_PROPERTIES_BYTES // 1024} KB",
                      details=_where(index, field="properties"))
    return properties


class LayerEditor:
    def __init__(self, session: Session, map_: Map, layer: Layer, user_id: int | None) -> None:
        self.session = session
        self.map = map_
        self.user_id = user_id
        # Lock the layer row first (PostgreSQL); SQLite already holds the write lock.
        # populate_existing: the caller has usually loaded this layer already, unlocked; without
        # it the ORM keeps those (possibly stale) values and concurrent edits lose updates.
        locked = session.scalar(select(Layer).where(Layer.id == layer.id).with_for_update()
                                .execution_options(populate_existing=True))
        if locked is None:
            raise NotFound("layer not found")  # deleted since the caller looked it up
        self.layer: Layer = locked
        self.new_version = self.layer.version + 1
        self.touched = False
        self.bbox_dirty = False
        self.count_delta = 0

    # ---- operations -----------------------------------------------------------------
    def add(self, geometry: Any, properties: Any, feature_id: str | None = None, *,
            index: int | None = None) -> Feature:
        geometry = check_geometry(geometry, index=index)
        properties = check_properties(properties, index=index)
        fid = parse_feature_id(feature_id, index=index) if feature_id else str(uuidlib.uuid4())
        if self.session.scalar(select(Feature.id).where(Feature.uuid == fid)) is not None:
            raise Conflict(f"feature {fid} already exists", code="feature_exists",
                           details=_where(index, id=fid))
        feature = Feature(uuid=fid, layer_id=self.layer.id, properties=jsonutil.dumps(properties),
                          version=1, created_version=self.new_version, updated_by=self.user_id,
                          updated_at=utcnow())
        self._set_geometry(feature, geometry)
        self.session.add(feature)
        self._expand(feature)
        self.count_delta += 1
        self._record("feature.create", fid, None, feature_state(feature))
        return feature

    def get(self, feature_id: str, *, index: int | None = None) -> Feature:
        fid = parse_feature_id(feature_id, index=index)
        feature = self.session.scalar(select(Feature).where(Feature.uuid == fid,
                                                           Feature.layer_id == self.layer.id)
                                      .with_for_update())
        if feature is None:
            raise NotFound(f"feature {fid} not found in this layer", details=_where(index, id=fid))
        return feature

    def update(self, feature_id: str, *, geometry: Any = UNSET, properties: Any = UNSET,
               expected_version: int | None = None, index: int | None = None) -> Feature:
        feature = self.get(feature_id, index=index)
        self._check_version(feature, expected_version, index)
        before = feature_state(feature)
        if geometry is not UNSET:
            geometry = check_geometry(geometry, index=index)
            if self._on_edge(feature):
                self.bbox_dirty = True
            self._set_geometry(feature, geometry)
            self._expand(feature)
        if properties is not UNSET:
            feature.properties = jsonutil.dumps(check_properties(properties, index=index))
        feature.version += 1
        feature.updated_by = self.user_id
        feature.updated_at = utcnow()
        self._record("feature.update", feature.uuid, before, feature_state(feature))
        return feature

    def delete(self, feature_id: str, *, expected_version: int | None = None,
               index: int | None = None) -> None:
        feature = self.get(feature_id, index=index)
        self._check_version(feature, expected_version, index)
        if self._on_edge(feature):
            self.bbox_dirty = True
        self._record("feature.delete", feature.uuid, feature_state(feature), None)
        self.session.delete(feature)
        self.count_delta -= 1

    def restore(self, feature_id: str, state: dict[str, Any]) -> None:
        """Bring a feature back to a recorded state (used by revert)."""
        existing = self.session.scalar(select(Feature).where(Feature.uuid == feature_id))
        if existing is None:
            feature = self.add(state["geometry"], state["properties"], feature_id)
            feature.created_version = state.get("created_version", self.new_version)
        else:
            self.update(feature_id, geometry=state["geometry"], properties=state["properties"])

    def finish(self) -> Layer:
        """Close the edit: one new layer version, count, bbox and map timestamps."""
        if not self.touched:
            return self.layer
        self.session.flush()
        layer = self.layer
        layer.version = self.new_version
        layer.feature_count += self.count_delta
        layer.updated_at = utcnow()
        if self.bbox_dirty:
            recompute_bbox(self.session, layer)
        # A Core statement built once: the ORM bulk-update path cost more than the edit itself.
        self.session.connection().execute(BUMP_MAP, {"map_pk": self.map.id, "now": utcnow()})
        return layer

    # ---- internals ------------------------------------------------------------------
    def _check_version(self, feature: Feature, expected: int | None, index: int | None) -> None:
        check_version(self.session.connection(), feature, expected, index)

    def _set_geometry(self, feature: Feature, geometry: dict[str, Any] | None) -> None:
        feature.geometry = jsonutil.dumps(geometry) if geometry is not None else None
        bbox = geometry_bbox(geometry) if geometry is not None else None
        feature.minx, feature.miny, feature.maxx, feature.maxy = bbox or (None, None, None, None)

    def _expand(self, feature: Feature) -> None:
        layer = self.layer
        if feature.minx is None:
            return
        if layer.minx is None:
            layer.minx, layer.miny = feature.minx, feature.miny
            layer.maxx, layer.maxy = feature.maxx, feature.maxy
            return
        # the four bbox columns are all set or all None: minx stands for them (for mypy too)
        layer.minx = min(layer.minx, feature.minx)
        layer.miny = min(layer.miny, feature.miny)  # type: ignore[type-var]
        layer.maxx = max(layer.maxx, feature.maxx)  # type: ignore[type-var]
        layer.maxy = max(layer.maxy, feature.maxy)  # type: ignore[type-var]

    def _on_edge(self, feature: Feature) -> bool:
        """A feature touching the layer bbox may shrink it when it moves or goes."""
        layer = self.layer
        if feature.minx is None or layer.minx is None:
            return False
        return (feature.minx <= layer.minx or feature.miny <= layer.miny  # type: ignore[operator]
                or feature.maxx >= layer.maxx or feature.maxy >= layer.maxy)  # type: ignore[operator]

    def _record(self, op: str, fid: str | None, before: Any, after: Any) -> None:
        self.touched = True
        self.session.add(Change(**change_values(self.map.id, self.layer.id, self.new_version, fid,
                                                self.user_id, op, before, after, utcnow())))

    def record_layer_op(self, op: str, before: Any, after: Any) -> None:
        self._record(op, None, before, after)


def recompute_bbox(session: Session, layer: Layer) -> None:
    row = session.execute(select(func.min(Feature.minx), func.min(Feature.miny),
                                 func.max(Feature.maxx), func.max(Feature.maxy))
                          .where(Feature.layer_id == layer.id)).one()
    layer.minx, layer.miny, layer.maxx, layer.maxy = row
