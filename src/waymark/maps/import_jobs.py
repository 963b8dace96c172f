"""Import jobs: the record of a queued import and the work it does, with progress.

The web request stores the upload and a Job row; a queue worker runs `run_import_job`.
Progress and the outcome are written to the Job row so any app server can report them.

Several workers, any of which may die mid-job: a worker first *claims* the job (queued, or
running but silent for `stale` seconds) by giving it a new attempt number, then keeps it
alive with a heartbeat. Every later write is fenced by that attempt number, and the final
merge marks the job done in the same transaction (maps/imports.py), so a job is applied
exactly once: a dead worker's attempt is either fully merged and done, or nothing, and a
stale attempt that wakes up cannot finish a job another worker took over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Self, cast

from sqlalchemy import CursorResult, Update, or_, select, update
from sqlalchemy.orm import Session

from waymark import jsonutil
from waymark.db.engine import Database
from waymark.db.errors import database_unavailable
from waymark.db.models import Job, Layer, Upload, utcnow
from waymark.errors import ApiError
from waymark.formats import FormatError, ReadOptions, read
from waymark.ids import new_uuid, process_name
from waymark.maps.imports import ImportSummary, drop_staging_named, import_result
from waymark.maps.state import iso
from waymark.storage import ObjectStore

log = logging.getLogger("waymark.jobs")
PROGRESS_INTERVAL_S = 0.25
MAX_ATTEMPTS = 5  # a job whose worker died this many times is marked failed
# Told how each run ended: (file format, status, seconds); the job worker passes the metrics
# recorder (observability.metrics.import_finished), so the domain imports no metrics.
ImportRecorder = Callable[[str, str, float], None]


class Superseded(Exception):
    """Another worker took this job over: this attempt must not write anything more."""


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


def _updated(session: Session, statement: Update) -> int:
    """Rows an UPDATE matched (Session.execute is typed as returning a plain Result)."""
    return cast("CursorResult[Any]", session.execute(statement)).rowcount


def _set(db: Database, job_id: int, attempt: int, **values: Any) -> None:
    """Update the running job, only while ``attempt`` is still its attempt."""
    with db.write() as session:
        done = _updated(session, update(Job).where(Job.id == job_id, Job.attempt == attempt,
                                                   Job.status == "running")
                        .values(updated_at=utcnow(), **values))
    if not done:
        raise Superseded(f"job {job_id} attempt {attempt}")


def claim(db: Database, job_public_id: str, stale_seconds: float) -> tuple[int, int] | None:
    """(job id, attempt) if this worker may run the job now, else None (done, failed, or
    running in a live worker)."""
    stale_before = utcnow() - timedelta(seconds=stale_seconds)
    with db.write() as session:
        job = session.scalar(select(Job).where(Job.public_id == job_public_id))
        if job is None:
            return None
        attempt = (job.attempt or 0) + 1
        same_attempt = Job.attempt.is_(None) if job.attempt is None else \
            Job.attempt == job.attempt
        claimable = (Job.id == job.id, same_attempt, or_(
            Job.status == "queued", (Job.status == "running") & (Job.updated_at < stale_before)))
        if attempt > MAX_ATTEMPTS:  # it keeps dying: stop, say so
            session.execute(update(Job).where(*claimable).values(
                status="failed", updated_at=utcnow(), error=jsonutil.dumps({
                    "code": "internal_error", "message": f"gave up after {MAX_ATTEMPTS} attempts",
                    "details": {}})))
            return None
        claimed = _updated(session, update(Job).where(*claimable).values(
            status="running", attempt=attempt, worker=process_name(), updated_at=utcnow()))
        return (job.id, attempt) if claimed else None


def stale_jobs(db: Database, stale_seconds: float) -> list[str]:
    """Jobs to enqueue again: running with no heartbeat for ``stale_seconds`` (the worker
    died), or queued that long (the queue lost the message, e.g. in a Redis fail-over)."""
    stale_before = utcnow() - timedelta(seconds=stale_seconds)
    with db.read() as session:
        return list(session.scalars(select(Job.public_id).where(
            Job.status.in_(("queued", "running")), Job.updated_at < stale_before)))


class Heartbeat:
    """Touches the job every ``interval`` seconds while the work runs (parsing, merging:
    phases without progress), so other workers see this attempt is alive."""

    def __init__(self, db: Database, job_id: int, attempt: int, interval: float) -> None:
        self._args = (db, job_id, attempt)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"job-{job_id}")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                _set(*self._args)
            except Superseded:
                return
            except Exception as exc:  # noqa: BLE001 - the database is away: beat again later
                log.debug("job heartbeat failed: %s", exc)


def run_import_job(db: Database, store: ObjectStore, job_public_id: str,
                   stale_seconds: float = 30, *, record: ImportRecorder) -> None:
    claimed = claim(db, job_public_id, stale_seconds)
    if claimed is None:
        return
    job_id, attempt = claimed
    with db.read() as session:
        job = session.get_one(Job, job_id)
        map_id, user_id = job.map_id, job.user_id
        if map_id is None:  # only map-less jobs (maintenance) have none
            raise ValueError(f"import job {job_public_id} names no map")
        params = jsonutil.loads(job.params)
        upload = session.get_one(Upload, params["upload_id"])
        layer = session.get(Layer, params["layer_id"]) if params.get("layer_id") else None
        object_key, fmt, filename = upload.object_key, upload.format, upload.filename
    started, status = time.monotonic(), "failed"
    try:
        with Heartbeat(db, job_id, attempt, max(0.2, stale_seconds / 5)):
            status = _run(db, store, (job_id, attempt), job_public_id, params, map_id, user_id,
                          layer, object_key, fmt, filename)
    except Superseded:
        status = "superseded"
    finally:  # metrics: failures (expected or not) and durations, by format
        record(fmt or "unknown", status, time.monotonic() - started)


def _run(db: Database, store: ObjectStore, job: tuple[int, int], job_public_id: str,  # type: ignore[no-untyped-def]
         params: dict[str, Any], map_id: int, user_id: int | None, layer, object_key: str,
         fmt: str, filename: str) -> str:
    """Do the import and record its outcome on the job; return "done" or "failed"."""
    job_id, attempt = job
    last = [0.0]
    staging_name = f"(import job {job_public_id})"

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL_S or done == total:
            last[0] = now
            _set(db, job_id, attempt, progress=done, total=total)

    def finish(session, summary: ImportSummary) -> None:  # type: ignore[no-untyped-def]
        """In the merge transaction: done, with its result, or nothing at all."""
        count = session.execute(update(Job).where(Job.id == job_id, Job.attempt == attempt,
                                                  Job.status == "running")
                                .values(status="done", progress=summary.imported,
                                        total=summary.imported, updated_at=utcnow(),
                                        result=jsonutil.dumps(summary.as_dict()))).rowcount
        if not count:
            raise Superseded(f"job {job_id} attempt {attempt}")

    try:
        drop_staging_named(db, map_id, staging_name)  # what a dead attempt left behind
        data = store.get_sync(object_key)
        result = read(data, fmt, skip_invalid=bool(params.get("skip_invalid")),
                      options=ReadOptions.from_dict(params.get("options")))
        import_result(db, map_id, result, user_id, layer=layer,
                      default_name=params.get("layer_name") or filename,
                      info={"upload": params["upload_public_id"], "filename": filename},
                      progress=progress, staging_name=staging_name, on_merged=finish)
    except FormatError as exc:
        _set(db, job_id, attempt, status="failed",
             error=jsonutil.dumps({"code": "invalid_file", "message": str(exc),
                                   "details": exc.to_details()}))
        return "failed"
    except ApiError as exc:
        _set(db, job_id, attempt, status="failed", error=jsonutil.dumps(exc.body()["error"]))
        return "failed"
    except Superseded:
        raise
    except Exception as exc:
        if database_unavailable(exc):  # a fail-over: the job goes stale and runs again
            raise
        # anything else is recorded on the job, then re-raised for the worker log
        _set(db, job_id, attempt, status="failed",
             error=jsonutil.dumps({"code": "internal_error", "message": type(exc).__name__}))
        raise
    return "done"
