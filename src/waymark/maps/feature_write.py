"""Single-feature update and delete as a few prepared Core statements.

These are the hot write path (live editing: every drag or property change is one of them).
Through the ORM an edit cost 7-10 ms of CPU over ~10 statements, which at 16 concurrent
editors queued up behind SQLite's one writer; here it is one access query and four short
writes in one transaction. Same rules as the rest of the app: the access decision is
`access.check`, input checks and history records are those of `editing.LayerEditor` (which
still does create, batch and revert). See docs/decisions/0011-core-statement-edits.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, bindparam, false, func, insert, select, update

from waymark import jsonutil
from waymark.accounts.actor import Actor
from waymark.db.models import Change, Feature, Layer, Map, Member, utcnow
from waymark.errors import NotFound, PreconditionFailed
from waymark.formats.geometry import geometry_bbox
from waymark.maps import access
from waymark.maps.editing import (
    BUMP_MAP,
    UNSET,
    check_geometry,
    check_properties,
    parse_feature_id,
)
from waymark.maps.state import feature_json, feature_state, last_editor

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
_RECORD = insert(_changes)
_SET_BBOX = (update(_l).where(_l.c.id == bindparam("layer_pk"))
             .values(minx=bindparam("minx"), miny=bindparam("miny"), maxx=bindparam("maxx"),
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
class Edited:
    layer_pk: int
    layer_version: int
    feature: dict[str, Any] | None  # feature_json after an update; None after a delete
    feature_uuid: str


def update_feature(conn: Connection, actor: Actor, map_id: str, layer_id: str, feature_id: str,
                   *, geometry: Any = UNSET, properties: Any = UNSET,
                   expected_version: int | None = None) -> Edited:
    """PATCH (members not given stay UNSET) or PUT (both given) one feature."""
    if geometry is not UNSET:
        geometry = check_geometry(geometry)
    if properties is not UNSET:
        properties = check_properties(properties)
    fid = parse_feature_id(feature_id)
    layer_pk, map_pk, user_id = _target(conn, actor, map_id, layer_id)
    now = utcnow()
    layer = _bump_layer(conn, layer_pk, 0, now)
    row = _locked_feature(conn, fid, layer_pk, expected_version)
    bbox: tuple[float | None, ...] = (row.minx, row.miny, row.maxx, row.maxy)
    geometry_text = row.geometry
    if geometry is not UNSET:
        geometry_text = jsonutil.dumps(geometry) if geometry is not None else None
        bbox = (geometry_bbox(geometry) if geometry is not None else None) or (None,) * 4
    after = FeatureRow(fid, geometry_text,
                       row.properties if properties is UNSET else jsonutil.dumps(properties),
                       row.version + 1, row.created_version, now)
    conn.execute(_UPDATE_FEATURE, {
        "pk": row.id, "geometry": after.geometry, "properties": after.properties,
        "minx": bbox[0], "miny": bbox[1], "maxx": bbox[2], "maxy": bbox[3],
        "version": after.version, "user_id": user_id, "now": now})
    if geometry is not UNSET:
        _fit_bbox(conn, layer_pk, layer, old=(row.minx, row.miny, row.maxx, row.maxy), new=bbox)
    _record(conn, map_pk, layer_pk, layer.version, fid, user_id, "feature.update",
            feature_state(row), feature_state(after), now)
    conn.execute(BUMP_MAP, {"map_pk": map_pk, "now": now})
    return Edited(layer_pk, layer.version, feature_json(after), fid)


def delete_feature(conn: Connection, actor: Actor, map_id: str, layer_id: str, feature_id: str,
                   *, expected_version: int | None = None) -> Edited:
    fid = parse_feature_id(feature_id)
    layer_pk, map_pk, user_id = _target(conn, actor, map_id, layer_id)
    now = utcnow()
    layer = _bump_layer(conn, layer_pk, -1, now)
    row = _locked_feature(conn, fid, layer_pk, expected_version)
    conn.execute(_DELETE_FEATURE, {"pk": row.id})
    _fit_bbox(conn, layer_pk, layer, old=(row.minx, row.miny, row.maxx, row.maxy), new=None)
    _record(conn, map_pk, layer_pk, layer.version, fid, user_id, "feature.delete",
            feature_state(row), None, now)
    conn.execute(BUMP_MAP, {"map_pk": map_pk, "now": now})
    return Edited(layer_pk, layer.version, None, fid)


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


def _locked_feature(conn: Connection, fid: str, layer_pk: int, expected: int | None) -> Any:
    row = conn.execute(_FEATURE, {"uuid": fid, "layer_pk": layer_pk}).first()
    if row is None:
        raise NotFound(f"feature {fid} not found in this layer", details={"id": fid})
    if expected is not None and expected != row.version:
        raise PreconditionFailed(f"feature {fid} is at version {row.version}, not {expected}",
                                 details={"id": fid, "current": feature_json(row),
                                          "updated_by": last_editor(conn, row)},
                                 headers={"ETag": f'"{row.version}"'})
    return row


def _fit_bbox(conn: Connection, layer_pk: int, layer: Any, *, old: tuple[Any, ...],
              new: tuple[Any, ...] | None) -> None:
    """Keep the layer bbox exact: grow it to a new geometry; recompute when a feature that
    touched its edge moved or went (the only case in which it can shrink)."""
    current = (layer.minx, layer.miny, layer.maxx, layer.maxy)
    on_edge = old[0] is not None and current[0] is not None and (
        old[0] <= current[0] or old[1] <= current[1] or old[2] >= current[2] or old[3] >= current[3])
    if on_edge:
        fitted = tuple(conn.execute(_LAYER_BBOX, {"layer_pk": layer_pk}).one())
    elif new is None or new[0] is None:
        return
    elif current[0] is None:
        fitted = tuple(new)
    else:
        fitted = (min(current[0], new[0]), min(current[1], new[1]),
                  max(current[2], new[2]), max(current[3], new[3]))
    if fitted != current:
        conn.execute(_SET_BBOX, {"layer_pk": layer_pk, "minx": fitted[0], "miny": fitted[1],
                                 "maxx": fitted[2], "maxy": fitted[3]})


def _record(conn: Connection, map_pk: int, layer_pk: int, version: int, fid: str,
            user_id: int, op: str, before: Any, after: Any, now: datetime) -> None:
    conn.execute(_RECORD, {"map_id": map_pk, "layer_id": layer_pk, "layer_version": version,
                           "feature_uuid": fid, "user_id": user_id, "op": op,
                           "before": jsonutil.dumps(before) if before is not None else None,
                           "after": jsonutil.dumps(after) if after is not None else None,
                           "created_at": now})
