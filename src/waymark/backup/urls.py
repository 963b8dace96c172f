"""Layout of the backup target (WAYMARK_BACKUP_URL)::

    <backup_url>/db/        Litestream replica of the SQLite database (LTX files)
    <backup_url>/pg/        pgBackRest repository of a PostgreSQL database (WAL, base backups)
    <backup_url>/objects/   incremental copy of object storage (ciphertext as stored)
    <backup_url>/config/    configuration backups (no secrets)
    <backup_url>/archive/   archived maps and snapshots (unless WAYMARK_ARCHIVE_URL is set)
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

_CREDENTIAL_PARAMS = {"access_key_id", "aws_access_key_id", "secret_access_key",
                      "aws_secret_access_key", "session_token", "aws_session_token", "token"}


def sub_url(url: str, name: str) -> str:
    """``url`` with ``/name`` appended to its path (query kept)."""
    if "://" not in url:
        return url.rstrip("/") + "/" + name
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + "/" + name
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def local_path(url: str) -> str:
    """Filesystem path of a file:// URL (or plain path)."""
    if "://" not in url:
        return url
    return unquote(urlsplit(url).path)


def s3_parts(url: str) -> tuple[str, str, dict[str, str]]:
    """(bucket, prefix, query parameters) of an s3:// URL."""
    parts = urlsplit(url)
    return parts.netloc, unquote(parts.path).strip("/"), dict(parse_qsl(parts.query))


def public(url: str) -> str:
    """``url`` without credential query parameters: safe to print and back up."""
    if "://" not in url or "?" not in url:
        return url
    parts = urlsplit(url)
    query = "&".join(f"{k}={v}" for k, v in parse_qsl(parts.query)
                     if k.lower() not in _CREDENTIAL_PARAMS)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


@dataclass(frozen=True)
class BackupTarget:
    """WAYMARK_BACKUP_URL (settings.backup_target) and the layout under it."""

    url: str

    @property
    def scheme(self) -> str:
        return scheme(self.url)

    def sub(self, name: str) -> str:
        """The URL of ``<backup_url>/name`` (db, pg, objects, config, archive, ...)."""
        return sub_url(self.url, name)

    @property
    def public(self) -> str:
        """The URL without credentials: safe to print."""
        return public(self.url)
