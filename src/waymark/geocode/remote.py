"""Nominatim- and Photon-compatible geocoding services by URL (configured by the operator:
WAYMARK_GEOCODER, WAYMARK_GEOCODER_URL). Their answers are turned into Places here; the
service (service.py) adds the rate limit and the cache."""

from __future__ import annotations

from typing import Any

import httpx

from waymark import __version__
from waymark.errors import ApiError
from waymark.geocode.model import Place

TIMEOUT = 10.0
USER_AGENT = f"Waymark/{__version__} (self-hosted map server)"


class GeocoderUnavailable(ApiError):
    status_code = 502
    code = "geocoder_unavailable"


def _float(value: Any) -> float:
    return float(value)


class _Remote:
    name = "remote"
    path = ""

    def __init__(self, base_url: str, client: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.AsyncClient(timeout=TIMEOUT, headers={"User-Agent": USER_AGENT})

    def params(self, query: str, limit: int) -> dict[str, Any]:
        raise NotImplementedError

    def places(self, body: Any) -> list[Place]:
        raise NotImplementedError

    async def search(self, query: str, limit: int) -> list[Place]:
        try:
            response = await self.client.get(self.base_url + self.path, params=self.params(query, limit))
        except httpx.HTTPError as exc:
            raise GeocoderUnavailable(f"the {self.name} service did not answer: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise GeocoderUnavailable(f"the {self.name} service answered HTTP {response.status_code}",
                                      details={"status": response.status_code})
        try:
            return self.places(response.json())[:limit]
        except (ValueError, KeyError, TypeError, IndexError):
            raise GeocoderUnavailable(f"the {self.name} service sent an answer that is not "
                                      f"{self.name} JSON") from None

    async def aclose(self) -> None:
        await self.client.aclose()


class Nominatim(_Remote):
    """GET {url}/search?q=&format=jsonv2&limit= -> [{lat, lon, display_name, boundingbox:
    [south, north, west, east], category/class, type}]"""

    name = "nominatim"
    path = "/search"

    def params(self, query: str, limit: int) -> dict[str, Any]:
        return {"q": query, "format": "jsonv2", "limit": limit}

    def places(self, body: Any) -> list[Place]:
        out = []
        for item in body:
            box = item.get("boundingbox")
            bbox = (_float(box[2]), _float(box[0]), _float(box[3]), _float(box[1])) if box else None
            label = str(item.get("display_name", ""))
            out.append(Place(label.split(",")[0], label, _float(item["lat"]), _float(item["lon"]),
                             str(item.get("type") or item.get("category") or item.get("class") or "place"),
                             bbox, self.name))
        return out


class Photon(_Remote):
    """GET {url}/api?q=&limit= -> GeoJSON; properties name, city, state, country, extent:
    [west, north, east, south], osm_value."""

    name = "photon"
    path = "/api"

    def params(self, query: str, limit: int) -> dict[str, Any]:
        return {"q": query, "limit": limit}

    def places(self, body: Any) -> list[Place]:
        out = []
        for feature in body["features"]:
            props = feature.get("properties") or {}
            lon, lat = feature["geometry"]["coordinates"][:2]
            ext = props.get("extent")
            bbox = (_float(ext[0]), _float(ext[3]), _float(ext[2]), _float(ext[1])) if ext else None
            name = str(props.get("name") or props.get("street") or "")
            context = [str(props[k]) for k in ("city", "state", "country") if props.get(k) and props[k] != name]
            out.append(Place(name, ", ".join([name, *context]), _float(lat), _float(lon),
                             str(props.get("osm_value") or props.get("type") or "place"), bbox, self.name))
        return out
