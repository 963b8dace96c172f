"""Feature edits (create, update, delete) as a few prepared Core statements: the one edit path.

`apply_feature_edit` is what every single edit runs, over HTTP (POST/PUT/PATCH/DELETE of a
feature) and over the websocket; `apply_batch` runs many through the same `LayerEdit`, as
one layer version. Each edit: access (`access.check`), input checks (`editing.check_*`),
version check, the row write, one history row, the layer and map version bumps; the caller
publishes `Edited.event` after the commit. See docs/decisions/0020-one-edit-path.md.

These are the hot write path (live editing: every drag or property change is one of them).
Through the ORM an edit cost 7-10 ms of CPU over ~10 statements, which at 16 concurrent
editors queued up behind SQLite's one writer; here it is one access query and four short
writes in one transaction (docs/decisions/0011-hot-edit-path.md). `editing.LayerEditor`
(ORM) is left to revert and imports, with the same checks and history records.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, bindparam, false, func, insert, select, update

from waymark import jsonutil
from waymark.accounts.actor import Actor
from waymark.db.models import Change, Feature, Layer, Map, Member, utcnow
from waymark.errors import Conflict, Invalid, NotFound
from waymark.formats.geometry import geometry_bbox
from waymark.maps import access
from waymark.maps.editing import (
    BUMP_MAP,
    MAX_BATCH,
    UNSET,
    _where,
    change_values,
    check_geometry,
    check_properties,
    check_version,
    parse_feature_id,
    parse_version,
)
from waymark.maps.events import feature_event
from waymark.maps.state import feature_json, feature_state

Bbox = tuple[Any, Any, Any, Any]  # minx, miny, maxx, maxy (all None: no geometry)
_NO_BBOX: Bbox = (None, None, None, None)
# Core tables (the ORM types `__table__` as any FromClause)
_m, _l, _f = cast(Table, Map.__table__), cast(Table, Layer.__table__), cast(Table, Feature.__table__)
_members, _changes = cast(Table, Member.__table__), cast(Table, Change.__table__)

_ROLE = (select(_members.c.role)
         .where(_members.c.map_id == _m.c.id, _members.c.user_id == bindparam("uid"))
         .scalar_subquery())
# Outer join: "map not found" and "layer not found" stay distinct answers.
_ACCESS = (select(_m.c.id, _m.c.owner_id, _m.c.visibility, _m.c.deleted_at, _ROLE.label("role"),
                  _l.c.id.label("layer_pk"))
           .select_from(_m.outerjoin(_l, and_(_l.c.map_id == _m.c.id,
                                              _l.c.public_id == bindparam("layer"),
                                              _l.c.staging == false())))
           .where(_m.c.public_id == bindparam("map")))
# Bumping the layer first takes its row lock on PostgreSQL (edits of one layer serialise,
# as LayerEditor's SELECT ... FOR UPDATE does) and hands back the new version in one trip.
_BUMP_LAYER = (update(_l).where(_l.c.id == bindparam("layer_pk"))
               .values(version=_l.c.version + 1, feature_count=_l.c.feature_count + bindparam("delta"),
                       updated_at=bindparam("now"))
               .returning(_l.c.version, _l.c.minx, _l.c.miny, _l.c.maxx, _l.c.maxy))
_FEATURE = select(_f.c.id, _f.c.uuid, _f.c.geometry, _f.c.properties, _f.c.version,
                  _f.c.created_version, _f.c.updated_at, _f.c.updated_by, _f.c.minx, _f.c.miny,
                  _f.c.maxx, _f.c.maxy).where(_f.c.uuid == bindparam("uuid"),
                                   _f.c.layer_id == bindparam("layer_pk"))
_UPDATE_FEATURE = (update(_f).where(_f.c.id == bindparam("pk"))
                   .values(geometry=bindparam("geometry"), properties=bindparam("properties"),
                           minx=bindparam("minx"), miny=bindparam("miny"), maxx=bindparam("maxx"),
                           maxy=bindparam("maxy"), version=bindparam("version"),
                           updated_by=bindparam("user_id"), updated_at=bindparam("now")))
_DELETE_FEATURE = _f.delete().where(_f.c.id == bindparam("pk"))
_INSERT_FEATURE = insert(_f)
_UUID_TAKEN = select(_f.c.id).where(_f.c.uuid == bindparam("uuid"))
_RECORD = insert(_changes)
_FINISH_LAYER = (update(_l).where(_l.c.id == bindparam("layer_pk"))
                 .values(feature_count=_l.c.feature_count + bindparam("delta"),
                         minx=bindparam("minx"), miny=bindparam("miny"), maxx=bindparam("maxx"),
                         maxy=bindparam("maxy")))
_LAYER_BBOX = (select(func.min(_f.c.minx), func.min(_f.c.miny), func.max(_f.c.maxx),
                      func.max(_f.c.maxy)).where(_f.c.layer_id == bindparam("layer_pk")))


@dataclass
class FeatureRow:
    """A feature after the edit, shaped like the ORM object for feature_json/feature_state."""

    uuid: str
    geometry: str | None
    properties: str
    version: int
    created_version: int
    updated_at: datetime


@dataclass
class FeatureEdit:
    """One edit of one feature. op: create | update | delete; geometry and properties UNSET
    are left as they are (PATCH); feature_id None on create picks a new UUID."""

    op: str
    feature_id: str | None = None
    geometry: Any = UNSET
    properties: Any = UNSET
    expected_version: int | None = None

    @classmethod
    def of(cls, op: str, data: dict[str, Any], version: int | None = None) -> FeatureEdit:
        """From a JSON message (a websocket frame, a batch operation): a create takes its
        geometry and properties as given; an update changes only the members present."""
        if op == "create":
            return cls(op, data.get("id") or None, data.get("geometry"), data.get("properties"))
        return cls(op, str(data.get("id")), data.get("geometry", UNSET),
                   data.get("properties", UNSET), version)


@dataclass
class Edited:
    layer_pk: int
    layer_version: int
    feature: dict[str, Any] | None  # feature_json after a create or update; None after a delete
    feature_uuid: str
    op: str = "update"

    def event(self, layer_id: str, actor: Actor) -> dict[str, Any]:
        """The edit-bus event of this edit (publish it after the commit)."""
        if self.feature is not None:
            return feature_event(f"feature.{self.op}", layer_id, self.layer_version, actor,
                                 feature=self.feature)
        return feature_event("feature.delete", layer_id, self.layer_version, actor,
                             feature_id=self.feature_uuid)


def apply_feature_edit(conn: Connection, actor: Actor, map_id: str, layer_id: str,
                       edit: FeatureEdit) -> Edited:
    """The one single-feature edit: access, checks, version check, write, history, bumps."""
    if edit.op not in ("create", "update", "delete"):
        raise Invalid("op must be create, update or delete", details={"field": "op"})
    layer_pk, map_pk, user_id = _target(conn, actor, map_id, layer_id)
    delta = {"create": 1, "delete": -1}.get(edit.op, 0)
    layer_edit = LayerEdit(conn, layer_pk, map_pk, user_id, delta=delta)
    feature, fid = layer_edit.apply(edit)
    layer_edit.finish()
    return Edited(layer_pk, layer_edit.version, feature, fid, edit.op)


def apply_batch(conn: Connection, actor: Actor, map_id: str, layer_id: str,
                operations: Any) -> tuple[int, int, list[dict[str, Any]]]:
    """Apply add/update/delete operations atomically, as one layer version: the same edit
    as `apply_feature_edit`, many times; any failure rolls back all of them. Returns (layer
    pk, new layer version, one result per operation)."""
    if not isinstance(operations, list) or not operations:
        raise Invalid("operations must be a non-empty list", details={"field": "operations"})
    if len(operations) > MAX_BATCH:
        raise Invalid(f"at most {MAX_BATCH} operations per batch", details={"field": "operations"})
    layer_pk, map_pk, user_id = _target(conn, actor, map_id, layer_id)
    layer_edit = LayerEdit(conn, layer_pk, map_pk, user_id)
    results = []
    for i, op in enumerate(operations):
        if not isinstance(op, dict):
            raise Invalid(f"operation {i} must be an object", details={"index": i})
        kind = op.get("op")
        version = parse_version(op.get("version"), index=i)
        if kind not in ("add", "update", "delete"):
            raise Invalid(f"operation {i}: op must be add, update or delete",
                          details={"index": i, "field": "op"})
        if kind != "add" and not op.get("id"):
            raise Invalid(f"operation {i}: id is required", details={"index": i, "field": "id"})
        feature, fid = layer_edit.apply(
            FeatureEdit.of("create" if kind == "add" else kind, op, version), index=i)
        if feature is None:
            results.append({"op": "delete", "id": op["id"]})
        else:
            results.append({"op": kind, "id": fid, "version": feature["version"]})
    layer_edit.finish()
    return layer_pk, layer_edit.version, results


class LayerEdit:
    """Edits of one layer in one write transaction: the layer row is bumped (and so locked)
    first, each `apply` writes one feature and one history row, `finish` settles the count,
    the bbox and the map version."""

    def __init__(self, conn: Connection, layer_pk: int, map_pk: int, user_id: int, *,
                 delta: int = 0) -> None:
        self.conn, self.layer_pk, self.map_pk, self.user_id = conn, layer_pk, map_pk, user_id
        self.now = utcnow()
        layer = _bump_layer(conn, layer_pk, delta, self.now)
        self.version = layer.version
        self.bbox = self.start_bbox = (layer.minx, layer.miny, layer.maxx, layer.maxy)
        self.bbox_dirty = False
        self.delta = 0
        self.counted = delta

    def apply(self, edit: FeatureEdit, *,
              index: int | None = None) -> tuple[dict[str, Any] | None, str]:
        """(feature_json after the edit or None after a delete, feature id)."""
        if edit.op == "create":
            return self._create(edit, index)
        if edit.op == "update":
            geometry = edit.geometry if edit.geometry is UNSET else check_geometry(edit.geometry,
                                                                                   index=index)
            properties = edit.properties if edit.properties is UNSET \
                else check_properties(edit.properties, index=index)
        fid = parse_feature_id(str(edit.feature_id), index=index)
        row = self.conn.execute(_FEATURE, {"uuid": fid, "layer_pk": self.layer_pk}).first()
        if row is None:
            raise NotFound(f"feature {fid} not found in this layer",
                           details=_where(index, id=fid))
        check_version(self.conn, row, edit.expected_version, index)
        old = (row.minx, row.miny, row.maxx, row.maxy)
        if edit.op == "delete":
            self.conn.execute(_DELETE_FEATURE, {"pk": row.id})
            self._fit(old, None)
            self.delta -= 1
            self._record(fid, "feature.delete", feature_state(row), None)
            return None, fid
        bbox, geometry_text = old, row.geometry
        if geometry is not UNSET:
            geometry_text = jsonutil.dumps(geometry) if geometry is not None else None
            bbox = (geometry_bbox(geometry) if geometry is not None else None) or _NO_BBOX
            self._fit(old, bbox)
        after = FeatureRow(fid, geometry_text,
                           row.properties if properties is UNSET else jsonutil.dumps(properties),
                           row.version + 1, row.created_version, self.now)
        self.conn.execute(_UPDATE_FEATURE, {
            "pk": row.id, "geometry": after.geometry, "properties": after.properties,
            "minx": bbox[0], "miny": bbox[1], "maxx": bbox[2], "maxy": bbox[3],
            "version": after.version, "user_id": self.user_id, "now": self.now})
        self._record(fid, "feature.update", feature_state(row), feature_state(after))
        return feature_json(after), fid

    def _create(self, edit: FeatureEdit, index: int | None) -> tuple[dict[str, Any], str]:
        geometry = check_geometry(edit.geometry, index=index)
        properties = check_properties(edit.properties, index=index)
        fid = parse_feature_id(edit.feature_id, index=index) if edit.feature_id \
            else str(uuidlib.uuid4())
        if self.conn.execute(_UUID_TAKEN, {"uuid": fid}).first() is not None:
            raise Conflict(f"feature {fid} already exists", code="feature_exists",
                           details=_where(index, id=fid))
        bbox = (geometry_bbox(geometry) if geometry is not None else None) or _NO_BBOX
        after = FeatureRow(fid, jsonutil.dumps(geometry) if geometry is not None else None,
                           jsonutil.dumps(properties), 1, self.version, self.now)
        self.conn.execute(_INSERT_FEATURE, {
            "uuid": fid, "layer_id": self.layer_pk, "geometry": after.geometry,
            "properties": after.properties, "minx": bbox[0], "miny": bbox[1], "maxx": bbox[2],
            "maxy": bbox[3], "version": 1, "created_version": self.version,
            "updated_by": self.user_id, "updated_at": self.now})
        self._fit(_NO_BBOX, bbox)
        self.delta += 1
        self._record(fid, "feature.create", None, feature_state(after))
        return feature_json(after), fid

    def finish(self) -> None:
        """Count and bbox of the layer (one statement, only if they changed), map version."""
        bbox = self.bbox
        if self.bbox_dirty:
            bbox = tuple(self.conn.execute(_LAYER_BBOX, {"layer_pk": self.layer_pk}).one())
        delta = self.delta - self.counted
        if delta or bbox != self.start_bbox:
            self.conn.execute(_FINISH_LAYER, {"layer_pk": self.layer_pk, "delta": delta,
                                              "minx": bbox[0], "miny": bbox[1],
                                              "maxx": bbox[2], "maxy": bbox[3]})
        self.conn.execute(BUMP_MAP, {"map_pk": self.map_pk, "now": self.now})

    def _fit(self, old: Bbox, new: Bbox | None) -> None:
        """Keep the layer bbox exact: grow it to a new geometry; recompute at the end when a
        feature that touched its edge moved or went (the only case in which it can shrink)."""
        current = self.bbox
        if old[0] is not None and current[0] is not None and (
                old[0] <= current[0] or old[1] <= current[1]
                or old[2] >= current[2] or old[3] >= current[3]):
            self.bbox_dirty = True
        if new is None or new[0] is None:
            return
        if current[0] is None:
            self.bbox = new
        else:
            self.bbox = (min(current[0], new[0]), min(current[1], new[1]),
                         max(current[2], new[2]), max(current[3], new[3]))

    def _record(self, fid: str, op: str, before: Any, after: Any) -> None:
        self.conn.execute(_RECORD, change_values(self.map_pk, self.layer_pk, self.version, fid,
                                                 self.user_id, op, before, after, self.now))


def _target(conn: Connection, actor: Actor, map_id: str, layer_id: str) -> tuple[int, int, int]:
    """(layer pk, map pk, user id) if the actor may edit this layer; else 401/403/404."""
    row = conn.execute(_ACCESS, {"map": map_id, "layer": layer_id, "uid": actor.user_id}).first()
    if row is None:
        raise NotFound("map not found")
    role = access.role_from(row.owner_id, row.role, actor)
    access.check(row.visibility, row.deleted_at is not None, role, actor, "edit")
    if row.layer_pk is None:
        raise NotFound("layer not found")
    return row.layer_pk, row.id, actor.require_write()


def _bump_layer(conn: Connection, layer_pk: int, delta: int, now: datetime) -> Any:
    layer = conn.execute(_BUMP_LAYER, {"layer_pk": layer_pk, "delta": delta, "now": now}).first()
    if layer is None:
        raise NotFound("layer not found")  # deleted since the access check
    return layer
