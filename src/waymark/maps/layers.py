"""Layers: create, change, delete; batch edits; history and revert."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from waymark import jsonutil
from waymark.db.models import Change, Feature, Layer, Map, User, utcnow
from waymark.errors import Invalid, NotFound, PreconditionFailed
from waymark.ids import clamp_to_row_range, new_uuid
from waymark.maps.editing import LayerEditor
from waymark.maps.service import record_map_op
from waymark.maps.state import change_json, layer_state
from waymark.maps.styles import check_style


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise Invalid("name is required (at most 200 characters)", details={"field": "name"})
    return name.strip()


def get_layer(session: Session, map_: Map, layer_id: str) -> Layer:
    layer = session.scalar(select(Layer).where(Layer.public_id == layer_id, Layer.map_id == map_.id,
                                       Layer.staging.is_(False)))
    if layer is None:
        raise NotFound("layer not found")
    return layer


def list_layers(session: Session, map_: Map) -> list[Layer]:
    return list(session.scalars(select(Layer).where(Layer.map_id == map_.id, Layer.staging.is_(False))
                                .order_by(Layer.position, Layer.id)))


def _check_visible(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("visible must be true or false", details={"field": "visible"})
    return value


def _check_position(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid("position must be an integer", details={"field": "position"})
    return value


def create_layer(session: Session, map_: Map, user_id: int | None, data: dict[str, Any]) -> Layer:
    position = data.get("position")
    if position is None:
        position = (session.scalar(select(func.max(Layer.position)).where(Layer.map_id == map_.id))
                    or 0) + 1
    layer = Layer(public_id=new_uuid(), map_id=map_.id, name=_check_name(data.get("name")),
                  style=jsonutil.dumps(check_style(data.get("style"))),
                  visible=_check_visible(data.get("visible", True)),
                  position=_check_position(position))
    session.add(layer)
    session.flush()
    session.add(Change(map_id=map_.id, layer_id=layer.id, layer_version=1, user_id=user_id,
                       op="layer.create", after=jsonutil.dumps(layer_state(layer))))
    map_.version += 1
    map_.updated_at = utcnow()
    return layer


def update_layer(session: Session, map_: Map, layer: Layer, user_id: int | None,
                 data: dict[str, Any], expected_version: int | None = None) -> Layer:
    if expected_version is not None and expected_version != layer.version:
        raise PreconditionFailed(f"layer is at version {layer.version}, not {expected_version}",
                                 details={"current_version": layer.version})
    editor = LayerEditor(session, map_, layer, user_id)
    layer = editor.layer
    before = layer_state(layer)
    if "name" in data:
        layer.name = _check_name(data["name"])
    if "style" in data:
        layer.style = jsonutil.dumps(check_style(data["style"]))
    if "visible" in data:
        layer.visible = _check_visible(data["visible"])
    if "position" in data:
        layer.position = _check_position(data["position"])
    editor.record_layer_op("layer.update", before, layer_state(layer))
    return editor.finish()


def delete_layer(session: Session, map_: Map, layer: Layer, user_id: int | None) -> None:
    record_map_op(session, map_, user_id, "layer.delete", {**layer_state(layer),
                  "id": layer.public_id, "feature_count": layer.feature_count})
    session.delete(layer)
    map_.version += 1
    map_.updated_at = utcnow()


# ---- history ---------------------------------------------------------------------------
def _user_names(session: Session, changes: list[Change]) -> dict[int, str]:
    ids = {c.user_id for c in changes if c.user_id}
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
    return {pk: name for pk, name in rows}


def history(session: Session, map_: Map, layer: Layer | None, *, limit: int = 50,
            before_id: int | None = None) -> list[dict[str, Any]]:
    query = select(Change).where(Change.map_id == map_.id)
    if layer is not None:
        query = query.where(Change.layer_id == layer.id)
    if before_id:
        query = query.where(Change.id < clamp_to_row_range(before_id))
    changes = list(session.scalars(query.order_by(Change.id.desc()).limit(min(max(limit, 1), 500))))
    names = _user_names(session, changes)
    return [change_json(c, names) for c in changes]


def revert_layer(session: Session, map_: Map, layer: Layer, user_id: int | None,
                 to_version: Any) -> Layer:
    """Bring the layer back to how it was at `to_version`, as one new version (history stays)."""
    if not isinstance(to_version, int) or isinstance(to_version, bool) or not \
            1 <= to_version <= layer.version:
        raise Invalid(f"version must be an integer between 1 and {layer.version}",
                      details={"field": "version"})
    if to_version < layer.revertible_from:
        raise Invalid(f"the history of this layer before version {layer.revertible_from} was "
                      f"compacted: revert to version {layer.revertible_from} or later",
                      code="history_compacted",
                      details={"field": "version", "revertible_from": layer.revertible_from})
    editor = LayerEditor(session, map_, layer, user_id)
    later = list(session.scalars(select(Change).where(Change.layer_id == layer.id,
                                                      Change.layer_version > to_version)
                                 .order_by(Change.id)))
    target: dict[str, dict[str, Any] | None] = {}
    layer_before = None
    for change in later:
        if change.feature_uuid and change.feature_uuid not in target:
            before = jsonutil.loads(change.before)
            if before is not None and before.get("created_version", 0) > to_version:
                before = None
            target[change.feature_uuid] = before
        elif change.op == "layer.update" and layer_before is None:
            layer_before = jsonutil.loads(change.before)
    # Features added in bulk (imports) after the target version have no per-feature change.
    for (fid,) in session.execute(select(Feature.uuid).where(Feature.layer_id == layer.id,
                                                             Feature.created_version > to_version)):
        target.setdefault(fid, None)
    current = set(session.scalars(select(Feature.uuid).where(Feature.layer_id == layer.id)))
    for fid, state in target.items():
        if state is None:
            if fid in current:
                editor.delete(fid)
        else:
            editor.restore(fid, state)
    if layer_before is not None:
        before = layer_state(editor.layer)
        editor.layer.name = layer_before["name"]
        editor.layer.style = jsonutil.dumps(layer_before["style"])
        editor.layer.visible = layer_before["visible"]
        editor.layer.position = layer_before["position"]
        editor.record_layer_op("layer.update", before, layer_state(editor.layer))
    editor.record_layer_op("layer.revert", None, {"to_version": to_version})
    return editor.finish()
