"""Export, bundles and published snapshots (imports: import_routes.py)."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from litestar import Request, Response, get, post

from waymark import jsonutil
from waymark.accounts.actor import Actor
from waymark.api.import_routes import ROUTES as IMPORT_ROUTES
from waymark.api.import_routes import read_upload
from waymark.api.published_reads import (
    PRIVATE_IMMUTABLE,
    public_cache_control,
    resolve_data,
    resolve_snapshot,
    snapshot_reply,
)
from waymark.api.routes import LAYER, MAP
from waymark.db.models import Map
from waymark.errors import Invalid, NotFound
from waymark.formats import ParsedFeature
from waymark.formats.geometry import validate_geometry
from waymark.maps import exports
from waymark.maps import layers as layer_ops
from waymark.maps.access import cors_headers, is_public, load_map
from waymark.maps.imports import import_groups
from waymark.maps.snapshots import publish, snapshot_for
from waymark.storage.keys import snapshot_key
from waymark.web import Services, threaded


# ---- export ----------------------------------------------------------------------------
def _download(actor: Actor, data: bytes, content_type: str, filename: str) -> Response:
    return Response(data, media_type=content_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "private, no-store", **cors_headers(actor)})


@get(LAYER + "/export", tags=["export"])
@threaded
def export_layer(request: Request, services: Services, actor: Actor, map_id: str,
                 layer_id: str) -> Response:
    """Download the layer as ?format=geojson (default), csv, gpx, kml, kmz, shapefile (zip),
    gpkg or fgb; ?crs=EPSG:<code> reprojects Shapefile, GeoPackage, FlatGeobuf and CSV."""
    fmt = exports.check_format(request.query_params.get("format", "geojson"))
    crs = request.query_params.get("crs") or None
    with services.db.read() as s:
        map_, _ = load_map(s, map_id, actor)
        layer = layer_ops.get_layer(s, map_, layer_id)
        return _download(actor, *exports.export_layers(s, [layer], fmt,
                                                       f"{map_.title}-{layer.name}", crs))


@get(MAP + "/export", tags=["export"])
@threaded
def export_map(request: Request, services: Services, actor: Actor, map_id: str) -> Response:
    """Download all layers as ?format=geojson|csv|gpx|kml|kmz|shapefile|gpkg|fgb (?crs= as
    for a layer), or the whole map as format=bundle."""
    fmt = request.query_params.get("format", "bundle")
    crs = request.query_params.get("crs") or None
    with services.db.read() as s:
        map_, _ = load_map(s, map_id, actor)
        if fmt == "bundle":
            return _download(actor, jsonutil.dumpb(exports.make_bundle(s, map_)),
                             "application/json", f"{exports._slug(map_.title)}.waymark.json")
        fmt = exports.check_format(fmt)
        return _download(actor, *exports.export_layers(s, layer_ops.list_layers(s, map_), fmt,
                                                       map_.title, crs))


@post("/api/v1/maps/import-bundle", tags=["import"])
async def import_bundle(request: Request, services: Services, actor: Actor) -> Response:
    """Create a new map from a bundle made by the map export (format=bundle)."""
    uid = actor.require_write()
    data, _ = await read_upload(request)
    bundle = exports.parse_bundle(data)
    groups = []
    for li, layer in enumerate(bundle["layers"]):
        features = []
        for fi, f in enumerate(layer.get("features", [])):
            try:
                if not isinstance(f, dict):
                    raise ValueError("a feature must be a JSON object")  # noqa: TRY004 - an API error (422 invalid_bundle), raised to the handler below
                geometry = f.get("geometry")
                if geometry is not None:
                    validate_geometry(geometry)
                properties = f.get("properties") or {}
                if not isinstance(properties, dict):
                    raise ValueError("properties must be a JSON object")  # noqa: TRY004 - as above
            except ValueError as exc:
                raise Invalid(f"layer {li}, feature {fi}: {exc}", code="invalid_bundle",
                              details={"layer_index": li, "index": fi}) from None
            features.append(ParsedFeature(geometry, dict(properties)))
        groups.append(({k: layer.get(k) for k in ("name", "style", "visible", "position")
                        if layer.get(k) is not None}, features))

    def work() -> dict[str, Any]:
        with services.db.write() as s:
            map_ = exports.create_map_from_bundle(s, uid, bundle)
            map_pk, public = map_.id, map_.public_id
        try:
            summary = import_groups(services.db, map_pk, groups, uid, info={"source": "bundle"})
        except BaseException:
            with services.db.write() as s:
                s.delete(s.get(Map, map_pk))
            raise
        return {"id": public, "url": f"/m/{public}", "imported": summary.imported,
                "layers": summary.layers}

    return Response(await to_thread.run_sync(work), status_code=201)


# ---- published snapshots ---------------------------------------------------------------
# Anonymous reads of maps anyone may see are the hot path (embeds, shared links): they skip
# the ORM and the worker threads with one indexed lookup on the event loop (Database.peek,
# SQLite only), then take the bytes from the cache; when the bytes are in this process's
# cache, api/published_reads.py answers before the framework. Access is still decided by
# the database on every request, so a map made private stops being served at once.


def _serve_snapshot(request: Request, svc: Services, gz: bytes, sha: str,
                    cache_control: str, actor: Actor) -> Response:
    status, headers, body = snapshot_reply(
        gz, sha, cache_control, if_none_match=request.headers.get("if-none-match", ""),
        accept_encoding=request.headers.get("accept-encoding", ""), lru=svc.snapshot_cache)
    headers.update(cors_headers(actor))
    media_type = headers.pop("Content-Type", None)
    return Response(body if status == 200 else None, status_code=status, headers=headers,
                    media_type=media_type)


async def _snapshot_bytes(svc: Services, sha: str, object_key: str, public: bool) -> bytes:
    gz: bytes | None = await svc.cache.get(sha)
    if gz is None:
        gz = await to_thread.run_sync(svc.store.get_sync, object_key)
        await _cache_put(svc, sha, gz, public)
    return gz


@get(LAYER + "/data", tags=["layers"])
async def layer_data(request: Request, services: Services, actor: Actor, map_id: str,
                     layer_id: str) -> Response:
    """The current layer as GeoJSON; revalidate with the ETag. Publishes if out of date.

    Access and the current version come from the database on every request; the bytes of
    that version come from the cache (keyed by their SHA-256) when present.
    """
    found = None if actor.is_authenticated else resolve_data(services.db, map_id, layer_id)
    if found is not None:
        published_gz = await _snapshot_bytes(services, found.sha, found.object_key, found.public)
        return _serve_snapshot(request, services, published_gz, found.sha, "private, no-cache",
                               actor)

    def lookup() -> tuple[int, bool, str | None]:
        with services.db.read() as s:
            map_, _ = load_map(s, map_id, actor)
            layer = layer_ops.get_layer(s, map_, layer_id)
            current = layer.snapshot_sha if layer.snapshot_version == layer.version else None
            return layer.id, is_public(map_.visibility), current

    layer_pk, public, sha = await to_thread.run_sync(lookup)
    gz: bytes | None = await services.cache.get(sha) if sha else None
    if gz is None or sha is None:
        def load() -> tuple[str, bytes]:
            published = publish(services.db, services.store, layer_pk)
            if published is None:
                raise NotFound("layer not found")
            return published[0], services.store.get_sync(snapshot_key(published[0]))

        new_sha, new_gz = await to_thread.run_sync(load)
        await _cache_put(services, new_sha, new_gz, public)
        return _serve_snapshot(request, services, new_gz, new_sha, "private, no-cache", actor)
    return _serve_snapshot(request, services, gz, sha, "private, no-cache", actor)


async def _cache_put(svc: Services, sha: str, gz: bytes, public: bool) -> None:
    """Shared (Redis) entries only for public maps; others stay in this process's LRU."""
    if public:
        await svc.cache.put(sha, gz)
    else:
        svc.cache.put_local(sha, gz)


@get(LAYER + "/snapshots/{sha:str}", tags=["layers"])
async def layer_snapshot(request: Request, services: Services, actor: Actor, map_id: str,
                         layer_id: str, sha: str) -> Response:
    """An immutable published version (`snapshot_url` of a layer): its bytes never change;
    shared caches revalidate it after WAYMARK_SHARED_CACHE_SECONDS (access may change)."""
    sha = sha.removesuffix(".geojson")
    found = None if actor.is_authenticated else resolve_snapshot(services.db, map_id, layer_id, sha)
    if found is not None:
        object_key, public = found.object_key, found.public
    else:
        def lookup() -> tuple[str, bool]:
            with services.db.read() as s:
                map_, _ = load_map(s, map_id, actor)
                layer = layer_ops.get_layer(s, map_, layer_id)
                snap = snapshot_for(s, layer, sha)
                if snap is None:
                    raise NotFound("no such snapshot of this layer")
                return snap.object_key, is_public(map_.visibility)

        object_key, public = await to_thread.run_sync(lookup)
    gz = await _snapshot_bytes(services, sha, object_key, public)
    return _serve_snapshot(request, services, gz, sha,
                           public_cache_control(services.settings.shared_cache_seconds) if public
                           else PRIVATE_IMMUTABLE, actor)


ROUTES = [*IMPORT_ROUTES, export_layer, export_map, import_bundle,
          layer_data, layer_snapshot]
