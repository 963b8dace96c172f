"""ObjectStore: the one object-store interface of Waymark, a thin wrapper over obstore.

It adds what obstore leaves to callers: key validation, idempotent delete, "create only"
writes for content-addressed objects, and errors translated to ObjectNotFound /
StorageError with messages that never carry credentials.
"""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, NotFoundError

from waymark.observability import metrics

from .errors import ObjectNotFound, StorageError, summarize
from .keys import validate_key, validate_prefix

# What obstore raises besides its own BaseError tree: FileNotFoundError (missing objects),
# other OSErrors (local filesystem), NotImplementedError (unsupported options), ValueError
# (bad paths or config) and RuntimeError (async runtime trouble).
_BACKEND_ERRORS = (BaseError, OSError, NotImplementedError, ValueError, RuntimeError)
_NOT_FOUND = (FileNotFoundError, NotFoundError)
_PING_PREFIX = "__waymark_ping__"
_READ_OPS = frozenset({"get", "get_range", "head", "delete"})
_NO_BUCKET = "NoSuchBucket"


@dataclass(frozen=True)
class ObjectInfo:
    """Metadata of one object; ``etag`` is the backend's value, quotes included."""

    key: str
    size: int
    etag: str | None
    last_modified: datetime | None


class ObjectStore:
    """An object store opened from a URL by :func:`waymark.storage.open_store`.

    Async methods serve the web app; the ``*_sync`` twins serve the CLI and job workers.
    """

    def __init__(
        self,
        inner: Any,
        url: str,
        *,
        secrets: Iterable[str] = (),
        local_root: Path | None = None,
    ) -> None:
        self._inner = inner
        self.url = url  # secrets removed: safe for logs
        self._secrets = tuple(s for s in secrets if s)
        self._local_root = local_root
        # LocalStore rejects attributes (Content-Type): the web layer derives it from the
        # key when serving local files, so it is simply not stored there.
        self._supports_attributes = local_root is None

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    # ---- async API ------------------------------------------------------------
    async def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        """Write (or overwrite) ``key`` atomically."""
        validate_key(key)
        with self._errors("put", key):
            await obstore.put_async(self._inner, key, data, **self._put_kwargs(content_type))

    async def put_if_absent(
        self, key: str, data: bytes, *, content_type: str | None = None
    ) -> bool:
        """Write ``key`` only if it does not exist; True if written.

        For content-addressed immutable objects: a False return means an identical object
        (same key, hence same content) is already there, which is success.
        """
        validate_key(key)
        try:
            with self._errors("put_if_absent", key, passthrough=AlreadyExistsError):
                await obstore.put_async(
                    self._inner, key, data, mode="create", **self._put_kwargs(content_type)
                )
        except AlreadyExistsError:
            return False
        return True

    async def get(self, key: str) -> bytes:
        """Return the whole object; ObjectNotFound if missing."""
        validate_key(key)
        with self._errors("get", key):
            result = await obstore.get_async(self._inner, key)
            return bytes(await result.bytes_async())

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes start..end-1 of the object as stored (no decryption: for public archives such
        as a basemap, which are uploaded unencrypted and read piecewise)."""
        validate_key(key)
        with self._errors("get_range", key):
            return bytes(await obstore.get_range_async(self._inner, key, start=start, end=end))

    async def head(self, key: str) -> ObjectInfo:
        """Return the object's metadata; ObjectNotFound if missing."""
        validate_key(key)
        with self._errors("head", key):
            meta = await obstore.head_async(self._inner, key)
        return _info(meta, key)

    async def exists(self, key: str) -> bool:
        try:
            await self.head(key)
        except ObjectNotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing object is not an error."""
        validate_key(key)
        try:
            with self._errors("delete", key):
                await obstore.delete_async(self._inner, key)
        except ObjectNotFound:
            pass

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        """All objects under ``prefix``, sorted by key, recursively.

        Prefixes match whole path segments: "a" (or "a/") lists "a/x" but not "ab".
        """
        prefix = validate_prefix(prefix).rstrip("/")
        with self._errors("list", prefix or "/"):
            metas = await obstore.list(self._inner, prefix or None).collect_async()
        return _sorted_infos(metas)

    async def copy_to(self, other: ObjectStore, key: str) -> None:
        """Copy ``key`` into ``other`` (another store, possibly another backend), streaming."""
        validate_key(key)
        with self._errors("get", key):
            result = await obstore.get_async(self._inner, key)
            content_type = result.attributes.get("Content-Type")
            stream = result.stream()
        with other._errors("put", key):
            await obstore.put_async(other._inner, key, stream, **other._put_kwargs(content_type))

    async def ping(self) -> None:
        """Cheap reachability check for /readyz: one LIST request; StorageError if it fails."""
        self._check_local_root()
        with self._errors("ping", _PING_PREFIX):
            await obstore.list_with_delimiter_async(self._inner, _PING_PREFIX)

    # ---- sync API (CLI, job workers) --------------------------------------------
    def put_sync(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        validate_key(key)
        with self._errors("put", key):
            obstore.put(self._inner, key, data, **self._put_kwargs(content_type))

    def put_if_absent_sync(
        self, key: str, data: bytes, *, content_type: str | None = None
    ) -> bool:
        validate_key(key)
        try:
            with self._errors("put_if_absent", key, passthrough=AlreadyExistsError):
                obstore.put(self._inner, key, data, mode="create", **self._put_kwargs(content_type))
        except AlreadyExistsError:
            return False
        return True

    def get_sync(self, key: str) -> bytes:
        validate_key(key)
        with self._errors("get", key):
            return bytes(obstore.get(self._inner, key).bytes())

    def head_sync(self, key: str) -> ObjectInfo:
        validate_key(key)
        with self._errors("head", key):
            meta = obstore.head(self._inner, key)
        return _info(meta, key)

    def exists_sync(self, key: str) -> bool:
        try:
            self.head_sync(key)
        except ObjectNotFound:
            return False
        return True

    def delete_sync(self, key: str) -> None:
        validate_key(key)
        try:
            with self._errors("delete", key):
                obstore.delete(self._inner, key)
        except ObjectNotFound:
            pass

    def list_sync(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        prefix = validate_prefix(prefix).rstrip("/")
        with self._errors("list", prefix or "/"):
            metas = obstore.list(self._inner, prefix or None).collect()
        return _sorted_infos(metas)

    def ping_sync(self) -> None:
        self._check_local_root()
        with self._errors("ping", _PING_PREFIX):
            obstore.list_with_delimiter(self._inner, _PING_PREFIX)

    # ---- internals ----------------------------------------------------------------
    def _put_kwargs(self, content_type: str | None) -> dict[str, Any]:
        if content_type and self._supports_attributes:
            return {"attributes": {"Content-Type": content_type}}
        return {}

    def _check_local_root(self) -> None:
        root = self._local_root
        if root is not None and not (root.is_dir() and os.access(root, os.W_OK | os.X_OK)):
            raise StorageError(f"ping failed on {self.url}: directory missing or not writable")

    @contextmanager
    def _errors(
        self, op: str, key: str, *, passthrough: type[BaseException] | None = None
    ) -> Iterator[None]:
        """Translate backend exceptions; the original is chained only if it is secret-free.

        Also the metrics hook: every call's latency, and failures (not misses) counted."""
        start = time.perf_counter()
        try:
            yield
        except _BACKEND_ERRORS as exc:
            if passthrough is not None and isinstance(exc, passthrough):
                raise
            # A 404 on a write, or S3's NoSuchBucket on any call, is a broken store, not a
            # missing object.
            if isinstance(exc, _NOT_FOUND) and op in _READ_OPS and _NO_BUCKET not in str(exc):
                raise ObjectNotFound(key, self.url) from None
            metrics.STORE_ERRORS.labels(operation=op).inc()
            message = f"{op} {key!r} failed on {self.url}: {summarize(exc, self._secrets)}"
            error = StorageError(message)
            if any(s in str(exc) for s in self._secrets):
                raise error from None
            raise error from exc
        finally:
            metrics.STORE_DURATION.labels(operation=op).observe(time.perf_counter() - start)


def _info(meta: Any, key: str | None = None) -> ObjectInfo:
    return ObjectInfo(
        key=key if key is not None else meta["path"],
        size=int(meta["size"]),
        etag=meta.get("e_tag"),
        last_modified=meta.get("last_modified"),
    )


def _sorted_infos(metas: Iterable[Any]) -> list[ObjectInfo]:
    return sorted((_info(m) for m in metas), key=lambda info: info.key)
