"""Importing files: the upload, what the person said about it (query parameters), the
importer's preview, parsing before anything is written, and import jobs."""

from __future__ import annotations

import logging
from typing import Any

from anyio import to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile

from waymark.accounts.actor import Actor
from waymark.api.routes import LAYER, MAP, _publish
from waymark.db.models import Job, Layer, Upload
from waymark.errors import Invalid, NotFound
from waymark.formats import FormatError, ReadOptions, check_head, detect_format, read
from waymark.formats.csv_reader import csv_preview
from waymark.formats.geopackage import gpkg_tables
from waymark.ids import new_uuid
from waymark.jobs.queue import enqueue_import
from waymark.maps import layers as layer_ops
from waymark.maps.access import load_map
from waymark.maps.events import layer_event, map_event
from waymark.maps.import_jobs import create_import_job, job_json
from waymark.maps.imports import import_result
from waymark.storage.keys import upload_key
from waymark.web import Services, threaded

log = logging.getLogger("waymark.imports")


def format_error(exc: FormatError) -> Invalid:
    return Invalid(f"cannot import this file: {exc}", code="invalid_file", details=exc.to_details())


async def read_upload(request: Request) -> tuple[bytes, str]:
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


_CHOICES = {"missing": ("skip", "keep"), "route_points": ("properties", "points"),
            "decimal": (".", ",", "comma", "point")}


def read_options(request: Request) -> ReadOptions:
    """What the query string says about the file (see ReadOptions and docs/api.md)."""
    q = request.query_params
    for name, allowed in _CHOICES.items():
        if q.get(name) is not None and q.get(name) not in allowed:
            raise Invalid(f"{name} must be one of {', '.join(allowed)}", details={"field": name})
    header = (q.get("header") or "true").lower()
    if header not in ("true", "false", "1", "0", "yes", "no"):
        raise Invalid("header must be true or false", details={"field": "header"})
    layers = tuple(t for t in (q.get("layers") or "").split(",") if t) or None
    return ReadOptions(crs=q.get("crs") or None, layers=layers, lat=q.get("lat") or None,
                       lon=q.get("lon") or None, wkt=q.get("wkt") or None,
                       header=header in ("true", "1", "yes"), delimiter=q.get("delimiter") or None,
                       decimal="," if q.get("decimal") in (",", "comma") else ".",
                       missing=q.get("missing") or "skip",
                       route_points=q.get("route_points") or "properties")


def _detect(request: Request, filename: str, data: bytes) -> str:
    if not data:
        raise Invalid("the file is empty", code="invalid_file")
    fmt = request.query_params.get("format")
    try:
        return fmt if fmt else detect_format(filename, data)
    except FormatError as exc:
        raise format_error(exc) from None


async def _import(request: Request, services: Services, actor: Actor, map_id: str,
                  layer_id: str | None) -> Response:
    data, filename = await read_upload(request)
    fmt = _detect(request, filename, data)
    skip_invalid = request.query_params.get("skip_invalid", "").lower() in ("1", "true", "yes")
    layer_name = request.query_params.get("layer_name")
    options = read_options(request)

    def check_access() -> tuple[int, int | None, str, int]:
        with services.db.read() as s:
            map_, _ = load_map(s, map_id, actor, "edit")
            layer = layer_ops.get_layer(s, map_, layer_id) if layer_id else None
            return map_.id, layer.id if layer else None, map_.public_id, actor.require_write()

    map_pk, layer_pk, map_public, uid = await to_thread.run_sync(check_access)
    upload_id = new_uuid()
    key = upload_key(map_public, upload_id, filename)
    as_job = len(data) > services.settings.import_job_bytes

    try:  # parse before anything is written: bad input changes nothing
        if as_job:  # a big file: its head at least, so header problems never wait in the queue
            await to_thread.run_sync(lambda: check_head(data, fmt, options))
        else:
            result = await to_thread.run_sync(
                lambda: read(data, fmt, skip_invalid=skip_invalid, options=options))
    except FormatError as exc:
        raise format_error(exc) from None
    await services.store.put(key, data)

    def record() -> tuple[int, str | None]:
        with services.db.write() as s:
            upload = Upload(public_id=upload_id, map_id=map_pk, user_id=uid, filename=filename[:255],
                            format=fmt, size=len(data), object_key=key)
            s.add(upload)
            s.flush()
            job = None
            if as_job:
                job = create_import_job(s, map_pk, uid, {
                    "upload_id": upload.id, "upload_public_id": upload_id, "layer_id": layer_pk,
                    "skip_invalid": skip_invalid, "layer_name": layer_name,
                    "options": options.as_dict()})
            return upload.id, job.public_id if job else None

    upload_pk, job_id = await to_thread.run_sync(record)
    if job_id:
        try:
            await to_thread.run_sync(enqueue_import, services.huey, job_id)
        except Exception as exc:  # noqa: BLE001 - the job is recorded: a worker finds it
            log.warning("import job %s not queued (%s): a worker picks it up once it is "
                        "WAYMARK_JOB_STALE_SECONDS old", job_id, str(exc)[:200])
        return Response({"job": {"id": job_id, "url": f"/api/v1/jobs/{job_id}"}}, status_code=202,
                        headers={"Location": f"/api/v1/jobs/{job_id}"})

    def work() -> dict[str, Any]:
        with services.db.read() as s:
            layer = s.get(Layer, layer_pk) if layer_pk else None
        summary = import_result(services.db, map_pk, result, uid, layer=layer,
                                default_name=layer_name or filename,
                                info={"upload": upload_id, "filename": filename})
        return summary.as_dict()

    try:
        out = await to_thread.run_sync(work)
    except BaseException:  # e.g. an invalid layer name, the layer deleted meanwhile
        await to_thread.run_sync(lambda: _forget_upload(services, upload_pk))
        await services.store.delete(key)
        raise
    out["upload"] = upload_id
    out["format"] = fmt
    _publish(services, map_id, layer_event("layer.reload", layer_id, actor) if layer_id
             else map_event("map.reload", actor))
    return Response(out, status_code=201)


def _forget_upload(svc: Services, upload_pk: int) -> None:
    """A failed inline import leaves nothing behind: not even the record of its upload."""
    with svc.db.write() as s:
        upload = s.get(Upload, upload_pk)
        if upload is not None:
            s.delete(upload)


@post(LAYER + "/import", tags=["import"])
async def import_into_layer(request: Request, services: Services, actor: Actor, map_id: str,
                            layer_id: str) -> Response:
    """Add the features of an uploaded file (GeoJSON, CSV, GPX, KML/KMZ) to this layer.

    Multipart field "file" or the raw body (?filename= or ?format=). Small files are imported
    at once (201 with a summary); large ones become a job (202, poll /api/v1/jobs/{id}).
    """
    return await _import(request, services, actor, map_id, layer_id)


@post(MAP + "/import", tags=["import"])
async def import_into_map(request: Request, services: Services, actor: Actor,
                          map_id: str) -> Response:
    """Import a file as new layer(s) of the map (one per source layer)."""
    return await _import(request, services, actor, map_id, None)


@post(MAP + "/import/preview", status_code=200, tags=["import"])
async def import_preview(request: Request, services: Services, actor: Actor,
                         map_id: str) -> dict[str, Any]:
    """What the importer needs to ask before importing: a CSV's first rows and the columns
    detection found (or why it found none), a GeoPackage's tables. Nothing is stored."""
    data, filename = await read_upload(request)
    fmt = _detect(request, filename, data)
    options = read_options(request)

    def check() -> None:
        with services.db.read() as s:
            load_map(s, map_id, actor, "edit")
        actor.require_write()

    await to_thread.run_sync(check)

    def look() -> dict[str, Any]:
        if fmt == "csv":
            return {"format": fmt, "csv": csv_preview(data, options)}
        if fmt == "gpkg":
            return {"format": fmt, "tables": gpkg_tables(data)}
        check_head(data, fmt, options)
        return {"format": fmt}

    try:
        return await to_thread.run_sync(look)
    except FormatError as exc:
        raise format_error(exc) from None


@get("/api/v1/jobs/{job_id:str}", tags=["import"])
@threaded
def get_job(services: Services, actor: Actor, job_id: str) -> dict[str, Any]:
    """Status of an import job: queued, running (progress/total), done (result) or failed (error)."""
    uid = actor.require_user()
    with services.db.read() as s:
        job = s.query(Job).filter_by(public_id=job_id).one_or_none()
        if job is None or job.user_id != uid:
            raise NotFound("job not found")
        return job_json(job)


ROUTES = [import_into_layer, import_into_map, import_preview, get_job]
