"""GET /api/v1/geocode?q=: places by name (the configured geocoder), and
GET /api/v1/maps/{id}/search?q=: the map's own features (same access rules as its layers)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from waymark.accounts.actor import Actor
from waymark.errors import Invalid
from waymark.geocode.model import MAX_QUERY, MAX_RESULTS
from waymark.maps.access import load_map
from waymark.maps.search import search_features
from waymark.web import Services, int_query, threaded


def _query(request: Request) -> str:
    q = request.query_params.get("q", "")
    if not q.strip():
        raise Invalid("q is required: the text to search for", details={"field": "q"})
    if len(q) > MAX_QUERY:
        raise Invalid(f"q must be at most {MAX_QUERY} characters", details={"field": "q"})
    return q.strip()


@get("/api/v1/geocode", tags=["search"])
async def geocode(request: Request, services: Services) -> dict[str, Any]:
    """Places matching `q` ({"results": [{name, label, lat, lon, kind, bbox, source}]}),
    best first; `limit` up to 10. The offline gazetteer by default (WAYMARK_GEOCODER)."""
    q = _query(request)
    limit = min(max(int_query(request, "limit", 5), 1), MAX_RESULTS)
    places = await services.geocoder.search(q, limit)
    return {"query": q, "provider": services.geocoder.provider.name,
            "results": [p.json() for p in places]}


@get("/api/v1/maps/{map_id:str}/search", tags=["search"])
@threaded
def search_map(request: Request, services: Services, actor: Actor, map_id: str) -> dict[str, Any]:
    """The map's features whose name or text properties contain `q` (all layers the caller
    may see): {"results": [{id, layer_id, layer_name, name, match: {field, text}, bbox}]}."""
    q = _query(request)
    limit = min(max(int_query(request, "limit", 20), 1), 100)
    with services.db.read() as s:
        map_, _ = load_map(s, map_id, actor)
        return {"query": q, "results": search_features(s, map_, q, limit)}


ROUTES = [geocode, search_map]
