"""What a history entry changed, old → new, computed from its recorded before/after: each
property of a feature edit, the shape as one entry, and for a layer change each setting
and each key of its style. Clients show this list instead of diffing before/after."""

from __future__ import annotations

from typing import Any

LAYER_FIELDS = ("name", "visible", "position")


def _keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Keys of either side in first-seen order (before's, then after's new ones)."""
    return list(dict.fromkeys([*before, *after]))


def _entries(what: str, before: Any, after: Any) -> list[dict[str, Any]]:
    old = before if isinstance(before, dict) else {}
    new = after if isinstance(after, dict) else {}
    return [{"what": what, "key": k, "old": old.get(k), "new": new.get(k)}
            for k in _keys(old, new) if old.get(k) != new.get(k)]


def change_diff(op: str, before: Any, after: Any) -> list[dict[str, Any]]:
    """[{"what": "geometry"|"property"|"layer"|"style", "key", "old", "new"}] for an update
    (`feature.update`, `layer.update`); [] for any other op. The shape is one entry without
    old/new (a geometry can be megabytes); a missing value is null."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    if op == "feature.update":
        out = [{"what": "geometry", "key": None}] if before.get("geometry") != after.get("geometry") else []
        return out + _entries("property", before.get("properties"), after.get("properties"))
    if op == "layer.update":
        fields = [{"what": "layer", "key": k, "old": before.get(k), "new": after.get(k)}
                  for k in LAYER_FIELDS if before.get(k) != after.get(k)]
        return fields + _entries("style", before.get("style"), after.get("style"))
    return []
