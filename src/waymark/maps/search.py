"""Search a map's features by their name and text properties (GET /api/v1/maps/{id}/search).

The database narrows by a LIKE on the stored properties text (case-insensitive, with the
letters that may carry accents as wildcards); Python then checks each candidate's text
values with accents and case folded, so "zurich" finds "Zürich" and "CAFE" finds "café". Importer internals (keys starting with "_", GPX/KML round-trip
fields; the list the popups hide, frontend/popup.js) are not searched.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from waymark import jsonutil
from waymark.db.models import Feature, Layer, Map
from waymark.geocode.model import fold

CANDIDATES = 5000
INTERNAL = frozenset({"coordinateProperties", "gpx_type", "sym", "styleUrl", "styleHash",
                      "styleMapHash", "times", "coordTimes"})


ACCENTABLE = frozenset("aeiouycnsz")  # é, ç, ñ, š, ž …


def _like(folded: str) -> str:
    """A LIKE pattern that also matches accented spellings: each letter that commonly takes
    an accent is a one-character wildcard (Python checks the candidates exactly)."""
    out = []
    for c in folded:
        if c in ACCENTABLE or not c.isascii():
            out.append("_")
        elif c in "\\%_":
            out.append("\\" + c)
        else:
            out.append(c)
    return "%" + "".join(out) + "%"


def _snippet(text: str, at: int, size: int = 80) -> str:
    start = max(0, at - size // 3)
    piece = text[start:start + size].replace("\n", " ")
    return ("…" if start else "") + piece + ("…" if start + size < len(text) else "")


def search_features(session: Session, map_: Map, query: str, limit: int = 20) -> list[dict[str, Any]]:
    needle = fold(query)
    if not needle:
        return []
    rows = session.execute(
        select(Feature.uuid, Feature.properties, Feature.minx, Feature.miny, Feature.maxx,
               Feature.maxy, Layer.public_id, Layer.name)
        .join(Layer, Layer.id == Feature.layer_id)
        .where(Layer.map_id == map_.id, Layer.staging.is_(False),
               Feature.properties.ilike(_like(max(needle.split(), key=len)), escape="\\"))
        .order_by(Layer.position, Feature.id).limit(CANDIDATES))
    found = []
    for uuid, properties, minx, miny, maxx, maxy, layer_id, layer_name in rows:
        props = jsonutil.loads(properties) or {}
        best = None
        for key, value in props.items():
            if not isinstance(value, str) or key.startswith("_") or key in INTERNAL:
                continue
            folded = fold(value)
            at = folded.find(needle)
            if at < 0:
                continue
            rank = (0 if folded == needle else 1 if at == 0 else 2) if key == "name" else 3
            if best is None or rank < best[0]:
                best = (rank, key, _snippet(value, at))
        if best is None:
            continue
        name = props.get("name")
        found.append((best[0], {
            "id": uuid, "layer_id": layer_id, "layer_name": layer_name,
            "name": str(name) if name not in (None, "") else None,
            "match": {"field": best[1], "text": best[2]},
            "bbox": [minx, miny, maxx, maxy] if minx is not None else None}))
    found.sort(key=lambda item: item[0])
    return [item for _, item in found[:limit]]
