"""open_store(url): the storage URL formats Waymark accepts.

- ``file:///abs/path`` or a plain path: a local directory (created if missing).
- ``memory://``: a fresh in-process store (unit tests; nothing is shared between calls).
- ``s3://bucket[/prefix]?endpoint=http://127.0.0.1:9000&region=us-east-1``: S3 or any
  S3-compatible server. Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
  (or the other variables obstore reads) or from ``options``/query parameters such as
  ``access_key_id`` and ``secret_access_key``. Secret parameters are removed from
  ``ObjectStore.url``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from obstore.exceptions import BaseError
from obstore.store import LocalStore, MemoryStore, S3Store

from .errors import StorageError, redact
from .store import ObjectStore

# obstore ClientConfig keys: accepted in options/query and passed as client_options.
_CLIENT_KEYS = frozenset(
    {
        "allow_http",
        "allow_invalid_certificates",
        "connect_timeout",
        "default_content_type",
        "http1_only",
        "http2_only",
        "pool_idle_timeout",
        "pool_max_idle_per_host",
        "proxy_url",
        "proxy_ca_certificate",
        "proxy_excludes",
        "randomize_addresses",
        "read_timeout",
        "timeout",
        "user_agent",
    }
)
_BOOL_CLIENT_KEYS = frozenset(
    {"allow_http", "allow_invalid_certificates", "http1_only", "http2_only", "randomize_addresses"}
)
_SECRET_WORDS = ("secret", "token", "password", "credential")
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_MIN_SECRET_LEN = 8  # shorter values (e.g. "test") are not worth mangling messages for

# Fail fast enough for /readyz and CLI use instead of obstore's 10 retries over 3 minutes.
_DEFAULT_CLIENT: dict[str, Any] = {"connect_timeout": timedelta(seconds=5)}
_DEFAULT_RETRY: dict[str, Any] = {
    "max_retries": 3,
    "retry_timeout": timedelta(seconds=30),
    "backoff": {
        "init_backoff": timedelta(milliseconds=100),
        "max_backoff": timedelta(seconds=5),
        "base": 2,
    },
}


def open_store(url: str, *, options: dict[str, str] | None = None) -> ObjectStore:
    """Open the object store described by ``url``; ValueError if the URL is malformed."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("object store URL must not be empty")
    url = url.strip()
    options = dict(options or {})
    if "://" not in url:
        return _open_local(Path(url), options)
    scheme = url.split("://", 1)[0].lower()
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError("file URLs must be absolute: file:///abs/path")
        return _open_local(Path(unquote(parts.path)), options)
    if scheme == "memory":
        _no_options("memory://", options)
        return ObjectStore(MemoryStore(), "memory://")
    if scheme == "s3":
        return _open_s3(url, options)
    raise ValueError(f"unsupported object store scheme {scheme!r} (use file://, memory://, s3://)")


def _open_local(path: Path, options: dict[str, str]) -> ObjectStore:
    _no_options("local directory", options)
    root = path.expanduser().resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
        inner = LocalStore(root, mkdir=True)
    except (OSError, BaseError) as exc:
        raise StorageError(f"cannot open local store {root}: {exc.__class__.__name__}") from exc
    return ObjectStore(inner, root.as_uri(), local_root=root)


def _open_s3(url: str, options: dict[str, str]) -> ObjectStore:
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ValueError(
            "credentials in the s3:// URL authority are not supported; use "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or options"
        )
    bucket = parts.netloc
    if not bucket:
        raise ValueError("s3 URL needs a bucket: s3://bucket[/prefix]")
    prefix = unquote(parts.path).strip("/")
    params: dict[str, str] = dict(parse_qsl(parts.query, keep_blank_values=True))
    params.update(options)

    config: dict[str, Any] = {}
    client: dict[str, Any] = dict(_DEFAULT_CLIENT)
    for key, value in params.items():
        name = key.lower().removeprefix("aws_")
        if name in _CLIENT_KEYS:
            client[name] = _parse_bool(key, value) if name in _BOOL_CLIENT_KEYS else value
        else:
            config[name] = value
    endpoint = config.get("endpoint")
    if endpoint:
        config.setdefault("virtual_hosted_style_request", "false")
        if endpoint.startswith("http://"):
            client.setdefault("allow_http", True)

    secrets = [v for k, v in params.items() if _is_secret(k)]
    secrets += [os.environ.get(name, "") for name in _SECRET_ENV]
    secrets = [s for s in secrets if len(s) >= _MIN_SECRET_LEN]

    # The public URL keeps the query's non-credential parameters (endpoint, region, ...).
    query_keys = {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    public_params = {
        k: v for k, v in params.items() if k in query_keys and not _is_credential(k)
    }
    public_url = f"s3://{bucket}" + (f"/{quote(prefix)}" if prefix else "")
    if public_params:
        public_url += "?" + urlencode(public_params, safe=":/")

    try:
        inner = S3Store(
            bucket,
            prefix=prefix or None,
            config=config,
            client_options=client,
            retry_config=_DEFAULT_RETRY,  # type: ignore[arg-type]
        )
    except (BaseError, ValueError, TypeError) as exc:
        # Name the option keys, never their values.
        raise ValueError(
            f"invalid s3 store configuration for {public_url} "
            f"(options: {', '.join(sorted(params)) or 'none'}): "
            f"{redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, secrets)}"
        ) from None
    return ObjectStore(inner, public_url, secrets=secrets)


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _is_credential(key: str) -> bool:
    return _is_secret(key) or key.lower().removeprefix("aws_") == "access_key_id"


def _parse_bool(key: str, value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"option {key!r} must be true or false")


def _no_options(kind: str, options: dict[str, str]) -> None:
    if options:
        raise ValueError(f"{kind} stores take no options (got: {', '.join(sorted(options))})")
