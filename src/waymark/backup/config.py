"""`waymark backup config`: the effective configuration, schema version and key ids,
written to ``<backup_url>/config/`` so a rebuilt host can be configured the same way.
Secrets (secret key, credentials, database password) are left out, never redacted copies.
"""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from typing import Any

from waymark import __version__
from waymark.backup import urls
from waymark.backup.litestream import required_target
from waymark.settings import SECRET_FIELDS, Settings
from waymark.storage import open_store

_URL_FIELDS = {"database_url", "object_store_url", "redis_url", "backup_url", "archive_url"}


def _scrub(name: str, value: Any) -> Any:
    if name == "secret_key":
        return None
    if name in _URL_FIELDS and isinstance(value, str) and value:
        value = urls.public(value)
        if "@" in value.split("?", 1)[0]:  # user:password@host: keep the host only
            scheme, rest = value.split("://", 1)
            value = f"{scheme}://{rest.rsplit('@', 1)[1]}"
        return value
    return value


def effective_config(settings: Settings) -> dict[str, Any]:
    from waymark.db.migrate import current_revision, head_revision
    from waymark.storage.crypto import key_provider

    values = {}
    for name, value in settings.redacted().items():
        if name in SECRET_FIELDS and name not in _URL_FIELDS:
            continue  # secrets are left out entirely
        values[name] = _scrub(name, getattr(settings, name) if name in _URL_FIELDS else value)
    try:
        revision = current_revision(settings.resolved_database_url)
    except Exception as exc:  # noqa: BLE001 - reported in the document
        revision = f"unavailable: {type(exc).__name__}"
    keys: dict[str, Any] = {"provider": settings.master_key_source}
    if settings.kms_key_id:
        keys["kms_key_id"] = settings.kms_key_id
    else:
        keys["file"] = settings.master_key_file or str(settings.resolved_master_key_path)
    if settings.encrypt_objects:
        provider = key_provider(settings)
        keys.update(current=provider.current_key_id(), key_ids=provider.key_ids())
    return {
        "kind": "waymark-config-backup",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "waymark_version": __version__,
        "python": platform.python_version(),
        "schema_revision": revision,
        "schema_head": head_revision(),
        "settings": values,
        "master_keys": keys,
        "secrets_left_out": sorted(n for n in SECRET_FIELDS if n not in _URL_FIELDS),
    }


def backup_config(settings: Settings) -> tuple[str, dict[str, Any]]:
    target = required_target(settings)
    doc = effective_config(settings)
    store = open_store(target.sub("config"))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    body = json.dumps(doc, indent=2, sort_keys=True).encode()
    key = f"{stamp}.json"
    store.put_sync(key, body, content_type="application/json")
    store.put_sync("latest.json", body, content_type="application/json")
    return urls.public(target.sub(f"config/{key}")), doc
