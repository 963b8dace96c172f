"""What every geocoder answers: places with a position and, when known, an extent."""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, Protocol

MAX_QUERY = 200
MAX_RESULTS = 10


@dataclass(frozen=True)
class Place:
    name: str
    label: str  # the name with its context, e.g. "Lyon, Auvergne-Rhône-Alpes, France"
    lat: float
    lon: float
    kind: str  # country, region, city, capital, … (provider's words)
    bbox: tuple[float, float, float, float] | None = None  # west, south, east, north
    source: str = ""

    def json(self) -> dict[str, Any]:
        out = asdict(self)
        out["bbox"] = list(self.bbox) if self.bbox else None
        return out


class Geocoder(Protocol):
    name: str

    async def search(self, query: str, limit: int) -> list[Place]:
        """Places matching `query`, best first (at most `limit`)."""


def fold(text: str) -> str:
    """Lower case without accents: "Zürich" and "zurich" match."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip()
