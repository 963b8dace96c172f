"""Import jobs: the record of a queued import and the work it does, with progress.

The web request stores the upload and a Job row; a queue worker runs `run_import_job`.
Progress and the outcome are written to the Job row so any app server can report them.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import update

from waymark import jsonutil
from waymark.db.engine import Database
from waymark.db.models import Job, Layer, Upload, utcnow
from waymark.errors import ApiError
from waymark.formats import FormatError, ReadOptions, read
from waymark.ids import new_uuid
from waymark.maps.imports import import_result
from waymark.maps.state import iso
from waymark.ops.metrics import IMPORT_DURATION, JOBS_FINISHED
from waymark.storage import ObjectStore

PROGRESS_INTERVAL_S = 0.25


def job_json(job: Job) -> dict[str, Any]:
    return {"id": job.public_id, "kind": job.kind, "status": job.status,
            "progress": job.progress, "total": job.total,
            "result": jsonutil.loads(job.result), "error": jsonutil.loads(job.error),
            "created_at": iso(job.created_at), "updated_at": iso(job.updated_at)}


def create_import_job(session, map_id: int, user_id: int | None, params: dict[str, Any]) -> Job:  # type: ignore[no-untyped-def]
    job = Job(public_id=new_uuid(), kind="import", status="queued", map_id=map_id,
              user_id=user_id, params=jsonutil.dumps(params))
    session.add(job)
    session.flush()
    return job


def _set(db: Database, job_id: int, **values: Any) -> None:
    with db.write() as session:
        session.execute(update(Job).where(Job.id == job_id).values(updated_at=utcnow(), **values))


def run_import_job(db: Database, store: ObjectStore, job_public_id: str) -> None:
    with db.read() as session:
        job = session.query(Job).filter_by(public_id=job_public_id).one_or_none()
        if job is None or job.status not in ("queued", "running"):
            return
        job_id, map_id, user_id = job.id, job.map_id, job.user_id
        params = jsonutil.loads(job.params)
        upload = session.get(Upload, params["upload_id"])
        layer = session.get(Layer, params["layer_id"]) if params.get("layer_id") else None
        object_key, fmt, filename = upload.object_key, upload.format, upload.filename
    _set(db, job_id, status="running")
    started, status = time.monotonic(), "failed"
    try:
        status = _run(db, store, job_id, params, map_id, user_id, layer, object_key, fmt, filename)
    finally:  # metrics: failures (expected or not) and durations, by format
        JOBS_FINISHED.labels(kind="import", status=status).inc()
        IMPORT_DURATION.labels(format=fmt or "unknown", status=status).observe(
            time.monotonic() - started)


def _run(db: Database, store: ObjectStore, job_id: int, params: dict[str, Any],  # type: ignore[no-untyped-def]
         map_id: int, user_id: int | None, layer, object_key: str, fmt: str, filename: str) -> str:
    """Do the import and record its outcome on the job; return "done" or "failed"."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL_S or done == total:
            last[0] = now
            _set(db, job_id, progress=done, total=total)

    try:
        data = store.get_sync(object_key)
        result = read(data, fmt, skip_invalid=bool(params.get("skip_invalid")),
                      options=ReadOptions.from_dict(params.get("options")))
        summary = import_result(db, map_id, result, user_id, layer=layer,
                                default_name=params.get("layer_name") or filename,
                                info={"upload": params["upload_public_id"], "filename": filename},
                                progress=progress)
    except FormatError as exc:
        _set(db, job_id, status="failed",
             error=jsonutil.dumps({"code": "invalid_file", "message": str(exc),
                                   "details": exc.to_details()}))
        return "failed"
    except ApiError as exc:
        _set(db, job_id, status="failed", error=jsonutil.dumps(exc.body()["error"]))
        return "failed"
    except Exception as exc:  # noqa: BLE001 - recorded on the job, then re-raised for the worker log
        _set(db, job_id, status="failed",
             error=jsonutil.dumps({"code": "internal_error", "message": type(exc).__name__}))
        raise
    _set(db, job_id, status="done", progress=summary.imported, total=summary.imported,
         result=jsonutil.dumps(summary.as_dict()))
    return "done"
