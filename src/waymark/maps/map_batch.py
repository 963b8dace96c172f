"""One atomic edit of features in several layers of a map (a multi-select across layers):
each layer's operations as in its own batch (`feature_write.apply_batch`), all in the
caller's one write transaction, so either every layer changes — one new version each — or
none does. Layers are locked in a fixed order (their ids) so two such edits cannot
deadlock."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from waymark.accounts.actor import Actor
from waymark.errors import ApiError, Invalid
from waymark.maps.editing import MAX_BATCH
from waymark.maps.feature_write import apply_batch


def _groups(layers: Any) -> list[tuple[int, str, Any]]:
    """(index, layer id, operations) of each entry, checked for shape before anything runs."""
    if not isinstance(layers, list) or not layers:
        raise Invalid("layers must be a non-empty list", details={"field": "layers"})
    out, seen, total = [], set(), 0
    for i, group in enumerate(layers):
        layer_id = group.get("layer") if isinstance(group, dict) else None
        if not isinstance(layer_id, str) or not layer_id:
            raise Invalid(f"layers[{i}]: layer (a layer id) is required",
                          details={"field": "layer", "layer_index": i})
        if layer_id in seen:
            raise Invalid(f"layers[{i}]: layer {layer_id} is listed twice",
                          details={"field": "layer", "layer_index": i})
        seen.add(layer_id)
        operations = group.get("operations")
        total += len(operations) if isinstance(operations, list) else 0
        out.append((i, layer_id, operations))
    if total > MAX_BATCH:
        raise Invalid(f"at most {MAX_BATCH} operations per batch", details={"field": "layers"})
    return out


def apply_map_batch(conn: Connection, actor: Actor, map_id: str,
                    layers: Any) -> list[tuple[str, int, int, list[dict[str, Any]]]]:
    """[(layer id, layer pk, new layer version, results)] in the order asked. A failure names
    the layer (`details.layer`, `details.layer_index`, and the operation's `index`) and the
    caller's transaction rolls everything back."""
    done: dict[int, tuple[str, int, int, list[dict[str, Any]]]] = {}
    for i, layer_id, operations in sorted(_groups(layers), key=lambda g: g[1]):
        try:
            layer_pk, version, results = apply_batch(conn, actor, map_id, layer_id, operations)
        except ApiError as exc:
            exc.message = f"layer {layer_id}: {exc.message}"
            exc.details = {**exc.details, "layer": layer_id, "layer_index": i}
            raise
        done[i] = (layer_id, layer_pk, version, results)
    return [done[i] for i in sorted(done)]
