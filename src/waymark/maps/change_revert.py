"""Revert one change: a new edit that inverts exactly that change and nothing else.

Unlike "revert the layer to version N" (layers.revert_layer), later changes survive. When a
later change touched the same thing (the same feature, the same layer setting, a feature of
the same import), inverting this one would overwrite it: refused with 409 `later_changes`,
naming them. The inverse goes through LayerEditor like any edit (version checks, history,
one new layer version), so it can itself be reverted or undone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from waymark import jsonutil
from waymark.db.models import Change, Feature, Layer, Map, User
from waymark.errors import Conflict, Invalid, NotFound
from waymark.maps.editing import LayerEditor
from waymark.maps.state import iso, layer_state

LAYER_FIELDS = ("name", "style", "visible", "position")
VERBS = {"feature.create": "added", "feature.update": "edited", "feature.delete": "deleted",
         "layer.update": "changed the layer", "layer.revert": "reverted the layer",
         "change.revert": "reverted a change"}
MAX_IMPORT_REVERT = 10_000


def revert_change(session: Session, map_: Map, layer: Layer, user_id: int | None,
                  change_id: int) -> Layer:
    change = session.scalar(select(Change).where(Change.id == change_id,
                                                 Change.layer_id == layer.id))
    if change is None:
        raise NotFound(f"change {change_id} not found in this layer", details={"change": change_id})
    before, after = jsonutil.loads(change.before), jsonutil.loads(change.after)
    editor = LayerEditor(session, map_, layer, user_id)
    if change.feature_uuid:
        _revert_feature(session, editor, change, before, after)
    elif change.op == "layer.update":
        _revert_layer_settings(session, editor, change, before, after)
    elif change.op == "layer.import":
        _revert_import(session, editor, change)
    else:
        raise Invalid(f"a {change.op!r} change cannot be reverted on its own; revert the layer "
                      "to a version instead", code="not_revertible",
                      details={"change": change.id, "op": change.op})
    editor.record_layer_op("change.revert", None, {"change": change.id, "op": change.op,
                                                   "layer_version": change.layer_version})
    return editor.finish()


def _later(session: Session, change: Change, *conditions: Any) -> list[Change]:
    return list(session.scalars(select(Change).where(Change.layer_id == change.layer_id,
                                                     Change.id > change.id, *conditions)
                                .order_by(Change.id)))


def _refuse(session: Session, change: Change, later: list[Change], what: str) -> None:
    names: dict[int, str] = {row.id: row.display_name for row in session.execute(
        select(User.id, User.display_name).where(
            User.id.in_({c.user_id for c in later if c.user_id})))}
    listed = [f"{names.get(c.user_id or 0) or 'someone'} {VERBS.get(c.op, c.op)} "
              f"(version {c.layer_version})" for c in later[:5]]
    more = f" and {len(later) - 5} more" if len(later) > 5 else ""
    raise Conflict(f"reverting this change would overwrite {len(later)} later change"
                   f"{'s' if len(later) != 1 else ''} to {what}: {'; '.join(listed)}{more}. "
                   "Revert those first, or revert the layer to a version",
                   code="later_changes",
                   details={"change": change.id,
                            "later": [{"id": c.id, "op": c.op, "layer_version": c.layer_version,
                                       "user": names.get(c.user_id or 0), "at": iso(c.created_at)}
                                      for c in later]})


def _revert_feature(session: Session, editor: LayerEditor, change: Change,
                    before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
    fid = change.feature_uuid
    if fid is None:
        raise Invalid("this change names no feature", code="not_revertible")
    later = _later(session, change, Change.feature_uuid == fid)
    if later:
        _refuse(session, change, later, "the same feature")
    version = after["version"] if after else None
    if before is None:  # it was added: delete it (at the version it was added with)
        editor.delete(fid, expected_version=version)
    elif after is None:  # it was deleted: bring it back with its id
        feature = editor.add(before["geometry"], before["properties"], fid)
        feature.created_version = before.get("created_version", editor.new_version)
    else:
        editor.update(fid, geometry=before["geometry"], properties=before["properties"],
                      expected_version=version)


def _changed_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> set[str]:
    before, after = before or {}, after or {}
    return {k for k in LAYER_FIELDS if before.get(k) != after.get(k)}


def _revert_layer_settings(session: Session, editor: LayerEditor, change: Change,
                           before: dict[str, Any], after: dict[str, Any]) -> None:
    fields = _changed_fields(before, after)
    later = [c for c in _later(session, change, Change.op.in_(("layer.update", "layer.revert")))
             if c.op == "layer.revert"
             or fields & _changed_fields(jsonutil.loads(c.before), jsonutil.loads(c.after))]
    if later:
        _refuse(session, change, later, "the same layer settings")
    layer = editor.layer
    old = layer_state(layer)
    for field in fields:
        setattr(layer, field, jsonutil.dumps(before[field]) if field == "style" else before[field])
    editor.record_layer_op("layer.update", old, layer_state(layer))


def _revert_import(session: Session, editor: LayerEditor, change: Change) -> None:
    imported = select(Feature.uuid).where(Feature.layer_id == change.layer_id,
                                          Feature.created_version == change.layer_version)
    later = _later(session, change, Change.feature_uuid.in_(imported))
    if later:
        _refuse(session, change, later, "imported features")
    fids = list(session.scalars(imported.limit(MAX_IMPORT_REVERT + 1)))
    if len(fids) > MAX_IMPORT_REVERT:
        raise Invalid(f"an import of more than {MAX_IMPORT_REVERT} features is reverted by "
                      "reverting the layer to the version before it", code="not_revertible",
                      details={"change": change.id})
    for fid in fids:
        editor.delete(fid)
