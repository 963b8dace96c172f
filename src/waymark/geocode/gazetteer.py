"""The built-in, offline geocoder: Natural Earth countries, populated places, and
first-level admin areas (found by the places they contain), from the gazetteer that
`npm run build` writes next to the basemap (frontend/basemap/build.mjs).

Matching is on the folded name: exact before prefix before word prefix, then countries
before capitals before other places before areas, then by population. "Paris, France"
narrows by the context.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from waymark import jsonutil
from waymark.geocode.model import Place, fold
from waymark.web_assets import BUILD_HINT, AssetsMissing

KIND_ORDER = {"country": 0, "capital": 1, "city": 2, "region": 3}


@dataclass(frozen=True)
class _Entry:
    key: str  # folded name
    context: str  # folded label (for "name, context" queries)
    population: int
    place: Place


def _entries(data: dict) -> list[_Entry]:
    out: list[_Entry] = []
    for name, lon, lat, bbox in data["countries"]:
        place = Place(name, name, lat, lon, "country", tuple(bbox), "builtin")
        out.append(_Entry(fold(name), fold(name), 10**10, place))
    regions: dict[tuple[str, str], list] = {}
    for name, lon, lat, pop, capital, adm1, adm0, _iso in data["places"]:
        context = ", ".join(p for p in (adm1, adm0) if p and p != name)
        label = f"{name}, {context}" if context else name
        kind = "capital" if capital == 2 else "city"
        out.append(_Entry(fold(name), fold(label), pop, Place(name, label, lat, lon, kind, None, "builtin")))
        if adm1 and adm0:
            regions.setdefault((adm1, adm0), []).append((lon, lat, pop))
    for (adm1, adm0), points in regions.items():
        lons = [p[0] for p in points]
        lats = [p[1] for p in points]
        pop = sum(p[2] for p in points)
        box = (min(lons), min(lats), max(lons), max(lats))
        if len(points) > 1 and box[2] - box[0] < 60:
            pad = 0.2
            bbox = (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)
            center = ((box[1] + box[3]) / 2, (box[0] + box[2]) / 2)
            label = f"{adm1}, {adm0}"
            out.append(_Entry(fold(adm1), fold(label), pop,
                              Place(adm1, label, center[0], center[1], "region", bbox, "builtin")))
    return out


class Gazetteer:
    name = "builtin"

    def __init__(self, path: Path | Callable[[], Path]) -> None:
        self.path = path
        self._entries: list[_Entry] | None = None
        self._lock = threading.Lock()

    def entries(self) -> list[_Entry]:
        with self._lock:
            if self._entries is None:
                path = self.path() if callable(self.path) else self.path
                try:
                    data = path.read_bytes()
                except FileNotFoundError:
                    raise AssetsMissing(f"the offline gazetteer is not built ({path} is missing): "
                                        f"{BUILD_HINT}") from None
                self._entries = _entries(jsonutil.loads(data))
            return self._entries

    def lookup(self, query: str, limit: int) -> list[Place]:
        name, _, context = (part.strip() for part in fold(query).partition(","))
        if not name:
            return []
        ranked = []
        for entry in self.entries():
            if entry.key == name:
                score = 0
            elif entry.key.startswith(name):
                score = 1
            elif f" {name}" in f" {entry.key}" or f"-{name}" in entry.key:
                score = 2
            else:
                continue
            if context and context not in entry.context:
                continue
            ranked.append((score, KIND_ORDER.get(entry.place.kind, 9), -entry.population, entry.place))
        ranked.sort(key=lambda r: r[:3])
        return [r[3] for r in ranked[:limit]]

    async def search(self, query: str, limit: int) -> list[Place]:
        from anyio import to_thread

        return await to_thread.run_sync(self.lookup, query, limit)
