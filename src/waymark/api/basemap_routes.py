"""GET /basemaps/{name}.pmtiles: a PMTiles archive kept in Waymark's object storage (the
self-hosted planet path), read piecewise with range requests.

The archive is public map data, uploaded unencrypted (docs/configuration.md, "Basemaps"),
so a range of the stored object is a range of the archive. The built-in archive is a
bundle file instead (web_assets.serve_dist).
"""

from __future__ import annotations

from litestar import Request, Response, get

from waymark.basemaps.ranges import byte_range, partial_response
from waymark.errors import NotFound
from waymark.storage.crypto import raw_store
from waymark.storage.errors import ObjectNotFound
from waymark.web import Services

MEDIA_TYPE = "application/vnd.pmtiles"
CACHE = "public, max-age=3600"


@get("/basemaps/{name:str}", include_in_schema=False)
async def basemap_archive(request: Request, services: Services, name: str) -> Response:
    preset = next((b for b in services.presets.items if f"{b.name}.pmtiles" == name), None)
    if preset is None or preset.object_key is None:
        raise NotFound("no such basemap archive")
    store = raw_store(services.store)
    try:
        info = await store.head(preset.object_key)
    except ObjectNotFound:
        raise NotFound(f"basemap {preset.name!r}: object {preset.object_key!r} is missing") from None
    headers = {"Cache-Control": CACHE, "Accept-Ranges": "bytes"}
    if info.etag:
        headers["ETag"] = info.etag
    span = byte_range(request.headers.get("range"), info.size)
    if span is None:
        data = await store.get_range(preset.object_key, 0, info.size)
        return Response(data, media_type=MEDIA_TYPE, headers=headers)
    data = await store.get_range(preset.object_key, span[0], span[1] + 1)
    return partial_response(data, span[0], info.size, MEDIA_TYPE, headers)


ROUTES = [basemap_archive]
