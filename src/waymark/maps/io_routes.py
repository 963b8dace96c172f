"""Import, export, bundles, published snapshots and job status."""

from __future__ import annotations

import logging
from typing import Any

from anyio import to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile

from waymark import jsonutil
from waymark.accounts.actor import Actor
from waymark.db.models import Job, Layer, Map, Upload
from waymark.errors import Invalid, NotFound
from waymark.formats import FormatError, ParsedFeature, detect_format, read
from waymark.formats.geometry import validate_geometry
from waymark.ids import new_uuid
from waymark.jobs.queue import enqueue_import
from waymark.maps import exports
from waymark.maps import layers as layer_ops
from waymark.maps.access import load_map
from waymark.maps.events import layer_event, map_event
from waymark.maps.import_jobs import create_import_job, job_json
from waymark.maps.imports import import_groups, import_result
from waymark.maps.published_reads import (
    ANON_DATA_SQL,
    ANON_SNAPSHOT_SQL,
    ANON_VIEWABLE,
    PRIVATE_IMMUTABLE,
    public_cache_control,
    snapshot_reply,
)
from waymark.maps.routes import LAYER, MAP, _publish, _svc
from waymark.maps.snapshots import publish, snapshot_for
from waymark.storage.keys import snapshot_key, upload_key
from waymark.web import Services, threaded

log = logging.getLogger("waymark.imports")


def format_error(exc: FormatError) -> Invalid:
    return Invalid(f"cannot import this file: {exc}", code="invalid_file", details=exc.to_details())


async def _read_upload(request: Request) -> tuple[bytes, str]:
    """The uploaded bytes and file name: multipart field "file", or the raw body."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid('multipart upload needs a file field named "file"', details={"field": "file"})
        data = await upload.read()
        return data, upload.filename or "upload"
    data = await request.body()
    return data, request.query_params.get("filename") or "upload"


def _detect(request: Request, filename: str, data: bytes) -> str:
    if not data:
        raise Invalid("the file is empty", code="invalid_file")
    fmt = request.query_params.get("format")
    try:
        return fmt if fmt else detect_format(filename, data)
    except FormatError as exc:
        raise format_error(exc) from None


async def _import(request: Request, actor: Actor, map_id: str, layer_id: str | None) -> Response:
    svc: Services = _svc(request)
    data, filename = await _read_upload(request)
    fmt = _detect(request, filename, data)
    skip_invalid = request.query_params.get("skip_invalid", "").lower() in ("1", "true", "yes")
    layer_name = request.query_params.get("layer_name")

    def check_access() -> tuple[int, int | None, str, int]:
        with svc.db.read() as s:
            map_, _ = load_map(s, map_id, actor, "edit")
            layer = layer_ops.get_layer(s, map_, layer_id) if layer_id else None
            return map_.id, layer.id if layer else None, map_.public_id, actor.require_write()

    map_pk, layer_pk, map_public, uid = await to_thread.run_sync(check_access)
    upload_id = new_uuid()
    key = upload_key(map_public, upload_id, filename)
    as_job = len(data) > svc.settings.import_job_bytes

    if not as_job:  # parse before anything is written: bad input changes nothing
        try:
            result = await to_thread.run_sync(lambda: read(data, fmt, skip_invalid=skip_invalid))
        except FormatError as exc:
            raise format_error(exc) from None
    await svc.store.put(key, data)

    def record() -> tuple[int, str | None]:
        with svc.db.write() as s:
            upload = Upload(public_id=upload_id, map_id=map_pk, user_id=uid, filename=filename[:255],
                            format=fmt, size=len(data), object_key=key)
            s.add(upload)
            s.flush()
            job = None
            if as_job:
                job = create_import_job(s, map_pk, uid, {
                    "upload_id": upload.id, "upload_public_id": upload_id, "layer_id": layer_pk,
                    "skip_invalid": skip_invalid, "layer_name": layer_name})
            return upload.id, job.public_id if job else None

    upload_pk, job_id = await to_thread.run_sync(record)
    if job_id:
        try:
            await to_thread.run_sync(enqueue_import, svc.huey, job_id)
        except Exception as exc:  # noqa: BLE001 - the job is recorded: a worker finds it
            log.warning("import job %s not queued (%s): a worker picks it up once it is "
                        "WAYMARK_JOB_STALE_SECONDS old", job_id, str(exc)[:200])
        return Response({"job": {"id": job_id, "url": f"/api/v1/jobs/{job_id}"}}, status_code=202,
                        headers={"Location": f"/api/v1/jobs/{job_id}"})

    def work() -> dict[str, Any]:
        with svc.db.read() as s:
            layer = s.get(Layer, layer_pk) if layer_pk else None
        summary = import_result(svc.db, map_pk, result, uid, layer=layer,
                                default_name=layer_name or filename,
                                info={"upload": upload_id, "filename": filename})
        return summary.as_dict()

    try:
        out = await to_thread.run_sync(work)
    except BaseException:  # e.g. an invalid layer name, the layer deleted meanwhile
        await to_thread.run_sync(lambda: _forget_upload(svc, upload_pk))
        await svc.store.delete(key)
        raise
    out["upload"] = upload_id
    out["format"] = fmt
    _publish(request, map_id, layer_event("layer.reload", layer_id, actor) if layer_id
             else map_event("map.reload", actor))
    return Response(out, status_code=201)


def _forget_upload(svc: Services, upload_pk: int) -> None:
    """A failed inline import leaves nothing behind: not even the record of its upload."""
    with svc.db.write() as s:
        upload = s.get(Upload, upload_pk)
        if upload is not None:
            s.delete(upload)


@post(LAYER + "/import", tags=["import"])
async def import_into_layer(request: Request, actor: Actor, map_id: str, layer_id: str) -> Response:
    """Add the features of an uploaded file (GeoJSON, CSV, GPX, KML/KMZ) to this layer.

    Multipart field "file" or the raw body (?filename= or ?format=). Small files are imported
    at once (201 with a summary); large ones become a job (202, poll /api/v1/jobs/{id}).
    """
    return await _import(request, actor, map_id, layer_id)


@post(MAP + "/import", tags=["import"])
async def import_into_map(request: Request, actor: Actor, map_id: str) -> Response:
    """Import a file as new layer(s) of the map (one per source layer)."""
    return await _import(request, actor, map_id, None)


@get("/api/v1/jobs/{job_id:str}", tags=["import"])
@threaded
def get_job(request: Request, actor: Actor, job_id: str) -> dict[str, Any]:
    """Status of an import job: queued, running (progress/total), done (result) or failed (error)."""
    uid = actor.require_user()
    with _svc(request).db.read() as s:
        job = s.query(Job).filter_by(public_id=job_id).one_or_none()
        if job is None or job.user_id != uid:
            raise NotFound("job not found")
        return job_json(job)


# ---- export ----------------------------------------------------------------------------
def _download(data: bytes, content_type: str, filename: str) -> Response:
    return Response(data, media_type=content_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "private, no-store"})


@get(LAYER + "/export", tags=["export"])
@threaded
def export_layer(request: Request, actor: Actor, map_id: str, layer_id: str) -> Response:
    """Download the layer as ?format=geojson (default), csv, gpx or kml."""
    fmt = exports.check_format(request.query_params.get("format", "geojson"))
    with _svc(request).db.read() as s:
        map_, _ = load_map(s, map_id, actor)
        layer = layer_ops.get_layer(s, map_, layer_id)
        return _download(*exports.export_layers(s, [layer], fmt, f"{map_.title}-{layer.name}"))


@get(MAP + "/export", tags=["export"])
@threaded
def export_map(request: Request, actor: Actor, map_id: str) -> Response:
    """Download all layers as ?format=geojson|csv|gpx|kml, or the whole map as format=bundle."""
    fmt = request.query_params.get("format", "bundle")
    with _svc(request).db.read() as s:
        map_, _ = load_map(s, map_id, actor)
        if fmt == "bundle":
            return _download(jsonutil.dumpb(exports.make_bundle(s, map_)), "application/json",
                             f"{exports._slug(map_.title)}.waymark.json")
        fmt = exports.check_format(fmt)
        return _download(*exports.export_layers(s, layer_ops.list_layers(s, map_), fmt, map_.title))


@post("/api/v1/maps/import-bundle", tags=["import"])
async def import_bundle(request: Request, actor: Actor) -> Response:
    """Create a new map from a bundle made by the map export (format=bundle)."""
    uid = actor.require_write()
    svc = _svc(request)
    data, _ = await _read_upload(request)
    bundle = exports.parse_bundle(data)
    groups = []
    for li, layer in enumerate(bundle["layers"]):
        features = []
        for fi, f in enumerate(layer.get("features", [])):
            try:
                if not isinstance(f, dict):
                    raise ValueError("a feature must be a JSON object")
                geometry = f.get("geometry")
                if geometry is not None:
                    validate_geometry(geometry)
                properties = f.get("properties") or {}
                if not isinstance(properties, dict):
                    raise ValueError("properties must be a JSON object")
            except ValueError as exc:
                raise Invalid(f"layer {li}, feature {fi}: {exc}", code="invalid_bundle",
                              details={"layer_index": li, "index": fi}) from None
            features.append(ParsedFeature(geometry, dict(properties)))
        groups.append(({k: layer.get(k) for k in ("name", "style", "visible", "position")
                        if layer.get(k) is not None}, features))

    def work() -> dict[str, Any]:
        with svc.db.write() as s:
            map_ = exports.create_map_from_bundle(s, uid, bundle)
            map_pk, public = map_.id, map_.public_id
        try:
            summary = import_groups(svc.db, map_pk, groups, uid, info={"source": "bundle"})
        except BaseException:
            with svc.db.write() as s:
                s.delete(s.get(Map, map_pk))
            raise
        return {"id": public, "url": f"/m/{public}", "imported": summary.imported,
                "layers": summary.layers}

    return Response(await to_thread.run_sync(work), status_code=201)


# ---- published snapshots ---------------------------------------------------------------
# Anonymous reads of maps anyone may see are the hot path (embeds, shared links): they skip
# the ORM and the worker threads with one indexed lookup on the event loop (Database.peek,
# SQLite only), then take the bytes from the cache; when the bytes are in this process's
# cache, maps/published_reads.py answers before the framework. Access is still decided by
# the database on every request, so a map made private stops being served at once.


def _serve_snapshot(request: Request, svc: Services, gz: bytes, sha: str,
                    cache_control: str) -> Response:
    status, headers, body = snapshot_reply(
        gz, sha, cache_control, if_none_match=request.headers.get("if-none-match", ""),
        accept_encoding=request.headers.get("accept-encoding", ""), lru=svc.snapshot_cache)
    media_type = headers.pop("Content-Type", None)
    return Response(body if status == 200 else None, status_code=status, headers=headers,
                    media_type=media_type)


async def _snapshot_bytes(svc: Services, sha: str, object_key: str, public: bool) -> bytes:
    gz = await svc.cache.get(sha)
    if gz is None:
        gz = await to_thread.run_sync(svc.store.get_sync, object_key)
        await _cache_put(svc, sha, gz, public)
    return gz


@get(LAYER + "/data", tags=["layers"])
async def layer_data(request: Request, actor: Actor, map_id: str, layer_id: str) -> Response:
    """The current layer as GeoJSON; revalidate with the ETag. Publishes if out of date.

    Access and the current version come from the database on every request; the bytes of
    that version come from the cache (keyed by their SHA-256) when present.
    """
    svc = _svc(request)
    if not actor.is_authenticated:
        row = svc.db.peek(ANON_DATA_SQL, (layer_id, map_id))
        if row is not NotImplemented and row is not None and row[0] in ANON_VIEWABLE and row[1]:
            sha = row[1]
            gz = await _snapshot_bytes(svc, sha, snapshot_key(sha), row[0] == "public")
            return _serve_snapshot(request, svc, gz, sha, "private, no-cache")

    def lookup() -> tuple[int, bool, str | None]:
        with svc.db.read() as s:
            map_, _ = load_map(s, map_id, actor)
            layer = layer_ops.get_layer(s, map_, layer_id)
            current = layer.snapshot_sha if layer.snapshot_version == layer.version else None
            return layer.id, map_.visibility == "public", current

    layer_pk, public, sha = await to_thread.run_sync(lookup)
    gz = await svc.cache.get(sha) if sha else None
    if gz is None or sha is None:
        def load() -> tuple[str, bytes]:
            published = publish(svc.db, svc.store, layer_pk)
            if published is None:
                raise NotFound("layer not found")
            return published[0], svc.store.get_sync(snapshot_key(published[0]))

        sha, gz = await to_thread.run_sync(load)
        await _cache_put(svc, sha, gz, public)
    return _serve_snapshot(request, svc, gz, sha, "private, no-cache")


async def _cache_put(svc: Services, sha: str, gz: bytes, public: bool) -> None:
    """Shared (Redis) entries only for public maps; others stay in this process's LRU."""
    if public:
        await svc.cache.put(sha, gz)
    else:
        svc.cache.put_local(sha, gz)


@get(LAYER + "/snapshots/{sha:str}", tags=["layers"])
async def layer_snapshot(request: Request, actor: Actor, map_id: str, layer_id: str,
                         sha: str) -> Response:
    """An immutable published version (`snapshot_url` of a layer): its bytes never change;
    shared caches revalidate it after WAYMARK_SHARED_CACHE_SECONDS (access may change)."""
    sha = sha.removesuffix(".geojson")
    svc = _svc(request)
    row = svc.db.peek(ANON_SNAPSHOT_SQL, (layer_id, sha, map_id)) \
        if not actor.is_authenticated else NotImplemented
    if row is not NotImplemented and row is not None and row[0] in ANON_VIEWABLE:
        object_key, public = row[1], row[0] == "public"
    else:
        def lookup() -> tuple[str, bool]:
            with svc.db.read() as s:
                map_, _ = load_map(s, map_id, actor)
                layer = layer_ops.get_layer(s, map_, layer_id)
                snap = snapshot_for(s, layer, sha)
                if snap is None:
                    raise NotFound("no such snapshot of this layer")
                return snap.object_key, map_.visibility == "public"

        object_key, public = await to_thread.run_sync(lookup)
    gz = await _snapshot_bytes(svc, sha, object_key, public)
    return _serve_snapshot(request, svc, gz, sha,
                           public_cache_control(svc.settings.shared_cache_seconds) if public
                           else PRIVATE_IMMUTABLE)


ROUTES = [import_into_layer, import_into_map, get_job, export_layer, export_map, import_bundle,
          layer_data, layer_snapshot]
