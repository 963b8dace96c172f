"""Plain-dict views of rows: what the API returns and what history records."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select

from waymark import jsonutil
from waymark.db.models import Change, Layer, Map, Member, User, as_utc
from waymark.maps.change_diff import change_diff

# Which controls a map shows on its page and in its embed, unless its owner chose otherwise.
DEFAULT_CONTROLS = {"page": {"search": True, "basemaps": True, "table": True, "legend": False},
                    "embed": {"search": True, "basemaps": True, "table": False, "legend": True}}
DEFAULT_STYLE = {"color": "#3388ff", "weight": 3, "opacity": 1.0, "fillColor": "#3388ff",
                 "fillOpacity": 0.2, "markerColor": "#3388ff"}


class FeatureFields(Protocol):
    """What the views below read: an ORM Feature or a row shaped like one (feature_write)."""

    @property
    def uuid(self) -> str: ...
    @property
    def geometry(self) -> str | None: ...
    @property
    def properties(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def created_version(self) -> int: ...
    @property
    def updated_at(self) -> datetime: ...


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which we always store as UTC."""
    if dt is None:
        return None
    return as_utc(dt).isoformat()


def feature_state(f: FeatureFields) -> dict[str, Any]:
    """The part of a feature that history records and revert restores."""
    return {"geometry": jsonutil.loads(f.geometry), "properties": jsonutil.loads(f.properties),
            "version": f.version, "created_version": f.created_version}


def feature_json(f: FeatureFields) -> dict[str, Any]:
    return {"type": "Feature", "id": f.uuid, "geometry": jsonutil.loads(f.geometry),
            "properties": jsonutil.loads(f.properties), "version": f.version,
            "updated_at": iso(f.updated_at)}


def last_editor(conn: Any, row: Any) -> dict[str, Any] | None:
    """Who saved this feature last ({id, display_name}), for the 412 of a stale edit: the
    person whose edit was refused sees whom to ask rather than "someone else"."""
    user_id = getattr(row, "updated_by", None)
    if not user_id:
        return None
    name = conn.execute(select(User.display_name).where(User.id == user_id)).scalar()
    return {"id": user_id, "display_name": name}


def layer_state(layer: Layer) -> dict[str, Any]:
    return {"name": layer.name, "style": jsonutil.loads(layer.style), "visible": layer.visible,
            "position": layer.position}


def layer_json(layer: Layer, map_public_id: str) -> dict[str, Any]:
    bbox = None
    if layer.minx is not None:
        bbox = [layer.minx, layer.miny, layer.maxx, layer.maxy]
    base = f"/api/v1/maps/{map_public_id}/layers/{layer.public_id}"
    snapshot_url = None
    if layer.snapshot_sha and layer.snapshot_version == layer.version:
        snapshot_url = f"{base}/snapshots/{layer.snapshot_sha}.geojson"
    return {"id": layer.public_id, "name": layer.name, "style": jsonutil.loads(layer.style),
            "visible": layer.visible, "position": layer.position, "version": layer.version,
            "feature_count": layer.feature_count, "bbox": bbox, "data_url": f"{base}/data",
            "snapshot_url": snapshot_url, "updated_at": iso(layer.updated_at)}


def map_controls(m: Map) -> dict[str, dict[str, bool]]:
    """The map's controls: its stored choices over the defaults."""
    stored = jsonutil.loads(m.controls) if m.controls else {}
    return {where: {**defaults, **(stored.get(where) or {})} for where, defaults in DEFAULT_CONTROLS.items()}


def map_json(m: Map, role: str | None = None) -> dict[str, Any]:
    return {"id": m.public_id, "title": m.title, "description": m.description,
            "visibility": m.visibility, "default_view": jsonutil.loads(m.default_view),
            "basemap": m.basemap, "controls": map_controls(m), "version": m.version,
            "owner": {"id": m.owner_id, "display_name": m.owner.display_name},
            "role": role, "created_at": iso(m.created_at), "updated_at": iso(m.updated_at),
            "deleted_at": iso(m.deleted_at), "url": f"/m/{m.public_id}"}


def member_json(member: Member) -> dict[str, Any]:
    return {"user_id": member.user_id, "email": member.user.email,
            "display_name": member.user.display_name, "role": member.role,
            "created_at": iso(member.created_at)}


def change_json(c: Change, user_names: dict[int, str]) -> dict[str, Any]:
    before, after = jsonutil.loads(c.before), jsonutil.loads(c.after)
    return {"id": c.id, "op": c.op, "layer_version": c.layer_version, "feature_id": c.feature_uuid,
            "user": {"id": c.user_id, "display_name": user_names.get(c.user_id or 0)}
            if c.user_id else None,
            "at": iso(c.created_at), "before": before, "after": after,
            "diff": change_diff(c.op, before, after)}
