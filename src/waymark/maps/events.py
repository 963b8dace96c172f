"""What changed, as the small JSON events the edit bus broadcasts after a commit.

Pure functions (no Redis, no web): routes build an event and hand it to
``Services.edits.publish(map_public_id, event)``; the realtime package numbers and delivers it.
"""

from __future__ import annotations

from typing import Any

from waymark.accounts.actor import Actor


def _by(actor: Actor) -> dict[str, Any] | None:
    return {"id": actor.user_id, "name": actor.display_name} if actor.user_id else None


def feature_event(op: str, layer_id: str, layer_version: int, actor: Actor, *,
                  feature: dict[str, Any] | None = None, feature_id: str | None = None,
                  client: str | None = None) -> dict[str, Any]:
    """op: feature.create | feature.update (with the feature) | feature.delete (with its id)."""
    event: dict[str, Any] = {"op": op, "layer": layer_id, "layer_version": layer_version,
                             "by": _by(actor)}
    if feature is not None:
        event["feature"] = feature
    if feature_id is not None:
        event["id"] = feature_id
    if client:
        event["client"] = client
    return event


def layer_event(op: str, layer_id: str, actor: Actor, *, layer: dict[str, Any] | None = None,
                layer_version: int | None = None) -> dict[str, Any]:
    """op: layer.create | layer.update (with the layer) | layer.delete | layer.reload (many
    features changed at once: batch, revert, import; clients refetch the layer)."""
    event: dict[str, Any] = {"op": op, "layer": layer_id, "by": _by(actor)}
    if layer is not None:
        event["data"] = layer
    if layer_version is not None:
        event["layer_version"] = layer_version
    return event


def map_event(op: str, actor: Actor, *, data: dict[str, Any] | None = None,
              user_id: int | None = None) -> dict[str, Any]:
    """op: map.update (with the map, role removed) | map.delete | map.reload (layers were
    added by an import: clients refetch the map) | access.changed (a member was added,
    changed or removed: connections re-check their access)."""
    event: dict[str, Any] = {"op": op, "by": _by(actor)}
    if data is not None:
        event["data"] = {k: v for k, v in data.items() if k != "role"}
    if user_id is not None:
        event["user_id"] = user_id
    return event
