"""Object storage for map data: uploads, layer snapshots, map bundles, archives.

One async interface (:class:`ObjectStore`) over obstore, opened from a URL with
:func:`open_store` (``file://``/plain path, ``memory://``, ``s3://``).
"""

from .errors import ObjectNotFound, StorageError
from .keys import bundle_key, snapshot_key, upload_key, validate_key
from .store import ObjectInfo, ObjectStore
from .url import open_store

__all__ = [
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "StorageError",
    "bundle_key",
    "open_store",
    "snapshot_key",
    "upload_key",
    "validate_key",
]
