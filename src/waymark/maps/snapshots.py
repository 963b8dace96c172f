"""Published layer snapshots: immutable, content-addressed, gzip-compressed GeoJSON.

A snapshot is the whole layer at one version. It is built by concatenating the stored
GeoJSON text of each feature (no parse, no re-encode), compressed once, named by the SHA-256
of its bytes and written to object storage only if absent. Its URL contains that hash, so it
can be cached forever; a new layer version gets a new URL.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from waymark.db.engine import Database
from waymark.db.models import Layer, Map, Snapshot, as_utc, utcnow
from waymark.maps.access import is_public
from waymark.storage import ObjectStore
from waymark.storage.crypto import plaintext_writes
from waymark.storage.keys import snapshot_key

GZIP_LEVEL = 6
_ID_CHUNK = 20_000
# A layer is rebuilt at most once per this many times its last build: building then takes at
# most ~1/BUILD_SPACING of a core, however many processes serve edits to it.
BUILD_SPACING = 10


@dataclass(frozen=True)
class Built:
    layer_id: int
    version: int
    sha256: str
    gzipped: bytes
    raw_size: int


# Each feature's GeoJSON text is assembled and joined by the database itself: the driver
# releases the GIL while SQLite or PostgreSQL works, so building a 100,000-feature snapshot
# no longer stalls the requests served by the same process (it was 2-3 s of GIL-bound Python).
_FEATURE_TEXT = ("""'{"type":"Feature","id":"' || uuid || '","version":' || CAST(version AS TEXT)"""
                 """ || ',"geometry":' || coalesce(nullif(geometry, ''), 'null')"""
                 """ || ',"properties":' || properties || '}'""")
_CHUNK_SQL = {
    # nosec B608 below: the SQL is built from module constants only; values are bound
    "sqlite": text(f"SELECT group_concat(j, ','), max(id) FROM (SELECT id, {_FEATURE_TEXT} AS j "  # noqa: S608  # nosec B608
                   "FROM features WHERE layer_id = :layer AND id > :after ORDER BY id LIMIT :n)"),
    "postgresql": text(f"SELECT string_agg(j, ',' ORDER BY id), max(id) FROM (SELECT id, "  # noqa: S608  # nosec B608
                       f"{_FEATURE_TEXT} AS j FROM features WHERE layer_id = :layer "
                       "AND id > :after ORDER BY id LIMIT :n) AS chunk"),
}


def layer_geojson(session: Session, layer: Layer) -> bytes:
    """The layer as a FeatureCollection, from stored JSON text, in feature id order."""
    sql = _CHUNK_SQL[session.get_bind().dialect.name]
    parts = [b'{"type":"FeatureCollection","features":[']
    last_id = 0
    while True:
        joined, last = session.execute(sql, {"layer": layer.id, "after": last_id,
                                             "n": _ID_CHUNK}).one()
        if last is None:
            break
        if last_id:
            parts.append(b",")
        parts.append(joined.encode())
        last_id = last
    parts.append(b"]}")
    return b"".join(parts)


def build(db: Database, layer_id: int) -> Built | None:
    """Read one consistent version of the layer and compress it."""
    with db.read() as session:
        if not db.is_sqlite:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        layer = session.get(Layer, layer_id)
        if layer is None:
            return None
        raw = layer_geojson(session, layer)
        version = layer.version
    gz = gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
    return Built(layer_id, version, hashlib.sha256(raw).hexdigest(), gz, len(raw))


def publish(db: Database, store: ObjectStore, layer_id: int) -> tuple[str, int] | None:
    """Make sure the layer's current version is published; return (sha256, version)."""
    with db.read() as session:
        layer = session.get(Layer, layer_id)
        if layer is None:
            return None
        if layer.snapshot_sha and layer.snapshot_version == layer.version:
            return layer.snapshot_sha, layer.version
        public = is_public(session.scalar(select(Map.visibility).where(Map.id == layer.map_id)))
    started = time.monotonic()
    built = build(db, layer_id)
    if built is None:
        return None
    key = snapshot_key(built.sha256)
    # Public-map snapshots are stored in plaintext (servable as-is); others are encrypted.
    with plaintext_writes() if public else nullcontext():
        store.put_if_absent_sync(key, built.gzipped, content_type="application/geo+json")
    with db.write() as session:
        layer = session.get(Layer, layer_id)
        if layer is None:
            return None
        exists = session.scalar(select(Snapshot.id).where(Snapshot.layer_id == layer_id,
                                                          Snapshot.version == built.version))
        if exists is None:
            session.add(Snapshot(layer_id=layer_id, version=built.version, sha256=built.sha256,
                                 size=len(built.gzipped), raw_size=built.raw_size, object_key=key,
                                 build_ms=round((time.monotonic() - started) * 1000)))
        if layer.version == built.version:
            layer.snapshot_sha = built.sha256
            layer.snapshot_version = built.version
    return built.sha256, built.version


def next_build_in(db: Database, layer_id: int) -> float:
    """Seconds until the layer may be built again: BUILD_SPACING times its newest snapshot's
    build after that snapshot was made, by whichever process made it."""
    with db.read() as session:
        row = session.execute(select(Snapshot.created_at, Snapshot.build_ms)
                              .where(Snapshot.layer_id == layer_id)
                              .order_by(Snapshot.version.desc()).limit(1)).first()
    if row is None or not row.build_ms:
        return 0.0
    ready = as_utc(row.created_at) + timedelta(milliseconds=BUILD_SPACING * row.build_ms)
    return max(0.0, (ready - utcnow()).total_seconds())


def snapshot_for(session: Session, layer: Layer, sha256: str) -> Snapshot | None:
    return session.scalar(select(Snapshot).where(Snapshot.layer_id == layer.id,
                                                 Snapshot.sha256 == sha256).limit(1))


class Publisher:
    """Publishes snapshots in the background after writes, coalescing bursts per layer.

    While a layer is being built, further requests for it only mark it dirty; one more
    build runs when the current one ends. So a stream of edits on a large layer costs at
    most one build at a time, never one per edit.
    """

    def __init__(self, db: Database, store: ObjectStore, on_error=None,  # type: ignore[no-untyped-def]
                 delay: float = 1.0) -> None:
        self.db = db
        self.store = store
        self.on_error = on_error
        self.delay = delay  # coalescing window after the first edit of a burst
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._dirty: set[int] = set()
        self._stopped = threading.Event()
        self._threads: set[threading.Thread] = set()

    def schedule(self, layer_id: int) -> None:
        if self._stopped.is_set():
            return  # shutting down: the next read publishes on demand
        with self._lock:
            if layer_id in self._running:
                self._dirty.add(layer_id)
                return
            self._running.add(layer_id)
        thread = threading.Thread(target=self._run, args=(layer_id,), daemon=True,
                                  name=f"snapshot-{layer_id}")
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run(self, layer_id: int) -> None:
        while True:
            # Wait a little so a burst of edits costs one build, and for big layers until the
            # spacing after the newest snapshot has passed (next_build_in).
            if self._stopped.wait(max(self.delay, self._spacing(layer_id))):
                self._finish(layer_id)
                return
            with self._lock:
                self._dirty.discard(layer_id)
            early = False
            try:
                # One build per version across worker processes: the others wait here, then
                # find the version published, or built so recently that they wait again.
                with self.db.process_lock(layer_id):
                    early = next_build_in(self.db, layer_id) > 0
                    if not early:
                        publish(self.db, self.store, layer_id)
            except Exception as exc:  # noqa: BLE001 - a failed background build is retried on read
                if self.on_error:
                    self.on_error(layer_id, exc)
            with self._lock:  # decide and leave under one lock: no edit slips between
                if (early or layer_id in self._dirty) and not self._stopped.is_set():
                    continue
                self._leave(layer_id)
            return

    def _spacing(self, layer_id: int) -> float:
        try:
            return next_build_in(self.db, layer_id)
        except Exception:  # noqa: BLE001 - the database is away: try after the usual delay
            return 0.0

    def _finish(self, layer_id: int) -> None:
        with self._lock:
            self._leave(layer_id)

    def _leave(self, layer_id: int) -> None:
        self._running.discard(layer_id)
        self._dirty.discard(layer_id)
        self._threads.discard(threading.current_thread())

    def start(self) -> None:
        self._stopped.clear()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop scheduling, cancel waits, and let builds in progress finish."""
        self._stopped.set()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def idle(self) -> bool:
        with self._lock:
            return not self._running
