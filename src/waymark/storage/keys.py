"""Object key naming and validation.

Every key the application writes is built here, so the bucket layout is described in one
place and stays stable across releases (backups and CDN caches depend on it).
"""

from __future__ import annotations

import re
import unicodedata

_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_STAMP = re.compile(r"^[0-9A-Za-z._-]+$")
_PUBLIC_ID = re.compile(r"^[0-9A-Za-z_-]+$")
_MAX_FILENAME = 100


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ValueError.

    Rejected: empty keys, a leading "/", empty segments ("a//b", trailing "/"), "." and
    ".." segments, backslashes and control characters. These would either escape a local
    directory store or be read differently by different backends.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("object key must be a non-empty string")
    if key.startswith("/"):
        raise ValueError(f"object key must not start with '/': {key!r}")
    if "\\" in key:
        raise ValueError(f"object key must not contain a backslash: {key!r}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise ValueError(f"object key must not contain control characters: {key!r}")
    for segment in key.split("/"):
        if segment == "":
            raise ValueError(f"object key must not contain empty segments: {key!r}")
        if segment in (".", ".."):
            raise ValueError(f"object key must not contain '.' or '..' segments: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Validate a listing prefix; "" means everything, one trailing "/" is allowed."""
    if prefix == "":
        return ""
    return validate_key(prefix.removesuffix("/"))


def safe_filename(filename: str) -> str:
    """Reduce a user-supplied file name to ``[A-Za-z0-9._-]``, keeping its extension.

    Uploads keep a recognisable name for operators, but the key must never carry path
    separators, dot segments or characters that some backends percent-encode.
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    name = _UNSAFE_FILENAME_CHARS.sub("_", name).strip("._-")
    if not name:
        return "file"
    if len(name) > _MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: _MAX_FILENAME - len(ext) - 1] + "." + ext
        else:
            name = name[:_MAX_FILENAME]
    return name


def snapshot_key(sha256_hex: str) -> str:
    """``snapshots/ab/<sha>.geojson.gz``: content-addressed, immutable layer snapshots.

    The two-character fan-out keeps directories small on the local filesystem backend.
    """
    sha = sha256_hex.lower()
    if not _HEX64.match(sha):
        raise ValueError("snapshot_key needs a 64-character hex SHA-256 digest")
    return f"snapshots/{sha[:2]}/{sha}.geojson.gz"


def upload_key(map_public_id: str, upload_id: str, filename: str) -> str:
    """``uploads/<map>/<upload_id>/<safe filename>``: the original of an imported file.

    Grouped per map so that deleting or archiving a map can list and remove its uploads.
    """
    _check_id("map_public_id", map_public_id)
    _check_id("upload_id", upload_id)
    return f"uploads/{map_public_id}/{upload_id}/{safe_filename(filename)}"


def bundle_key(map_public_id: str, stamp: str) -> str:
    """``bundles/<map>/<stamp>.zip``: a whole-map export/backup.

    ``stamp`` is normally a UTC timestamp such as ``20250101T120000Z`` so that bundles of
    one map list in chronological order.
    """
    _check_id("map_public_id", map_public_id)
    if not _STAMP.match(stamp) or stamp in (".", ".."):
        raise ValueError(f"invalid bundle stamp: {stamp!r}")
    return f"bundles/{map_public_id}/{stamp}.zip"


def _check_id(name: str, value: str) -> None:
    if not isinstance(value, str) or not _PUBLIC_ID.match(value):
        raise ValueError(f"{name} must match [0-9A-Za-z_-]+: {value!r}")
