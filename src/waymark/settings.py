"""One typed settings object, read from WAYMARK_* variables.

Every field has a safe default for the active profile (WAYMARK_ENV = dev | staging | prod)
and can be overridden by WAYMARK_<FIELD> or, for secrets, WAYMARK_<FIELD>_FILE (the value
is read from that file, so secrets never need to sit in the environment).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

PROFILES = ("dev", "staging", "prod")
DEFAULT_SECRET = "dev-insecure-secret-change-me"
SECRET_FIELDS = frozenset({"secret_key", "database_url", "object_store_url", "redis_url"})


class SettingsError(ValueError):
    """A configuration value is malformed or unsafe; the message names the fix."""


@dataclass(frozen=True)
class Settings:
    env: str = "dev"
    debug: bool = False
    secret_key: str = DEFAULT_SECRET
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: sqlite:///<data_dir>/waymark.db
    object_store_url: str = ""  # empty: <data_dir>/objects
    redis_url: str = ""  # empty: embedded stores
    session_store: str = "memory"  # memory | file (embedded backends)
    session_max_age: int = 14 * 24 * 3600
    cookie_secure: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    public_url: str = "http://127.0.0.1:8000"
    max_upload_bytes: int = 50 * 1024 * 1024
    import_job_bytes: int = 2 * 1024 * 1024  # uploads larger than this import as a job
    jobs_immediate: bool = False  # run jobs inline (tests, single-shot CLI)
    snapshot_cache_items: int = 256
    snapshot_delay_ms: int = 1000  # background publishing waits this long to coalesce edits
    demo_data: bool = True  # `waymark serve` seeds a demo map on an empty database
    allow_signup: bool = True
    log_level: str = "info"

    # ---- derived values -------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'waymark.db').resolve()}"

    @property
    def resolved_object_store_url(self) -> str:
        if self.object_store_url:
            return self.object_store_url
        return f"file://{(self.data_dir / 'objects').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def redacted(self) -> dict[str, Any]:
        """The effective configuration with secrets hidden, for `waymark check` and logs."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = _redact(str(value))
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out

    def problems(self) -> list[str]:
        """Unsafe settings for this profile, each with the fix. Empty means safe."""
        issues: list[str] = []
        if self.env == "dev":
            return issues
        if self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32:
            issues.append(
                "secret_key is the default or shorter than 32 characters: set WAYMARK_SECRET_KEY "
                "(or WAYMARK_SECRET_KEY_FILE) to a random value, e.g. `python -c 'import secrets;"
                "print(secrets.token_urlsafe(48))'`"
            )
        if self.debug:
            issues.append("debug is on: unset WAYMARK_DEBUG")
        if self.env == "prod":
            if not self.cookie_secure:
                issues.append("cookie_secure is off: serve over HTTPS and set WAYMARK_COOKIE_SECURE=true")
            if self.workers > 1 and not self.redis_url and self.session_store == "memory":
                issues.append(
                    "several workers with in-memory sessions: set WAYMARK_REDIS_URL or "
                    "WAYMARK_SESSION_STORE=file"
                )
        return issues


def _redact(value: str) -> str:
    """Hide passwords inside URLs and whole secrets elsewhere."""
    if "://" in value and "@" in value:
        scheme, rest = value.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    if "://" in value:
        return value
    return "***"


_PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "dev": {"debug": False, "demo_data": True},
    "staging": {"demo_data": False, "session_store": "file"},
    "prod": {"demo_data": False, "session_store": "file", "cookie_secure": True},
}


def _coerce(name: str, raw: str, target: Any) -> Any:
    if target is bool:
        low = raw.strip().lower()
        if low in {"1", "true", "yes", "on"}:
            return True
        if low in {"0", "false", "no", "off", ""}:
            return False
        raise SettingsError(f"WAYMARK_{name.upper()}={raw!r} is not a boolean (use true or false)")
    if target is int:
        try:
            return int(raw.replace("_", ""))
        except ValueError:
            raise SettingsError(f"WAYMARK_{name.upper()}={raw!r} is not an integer") from None
    if target is Path:
        return Path(raw)
    return raw


_TYPES = {"bool": bool, "int": int, "Path": Path, "str": str}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from the environment (and explicit overrides, used by tests)."""
    environ = os.environ if environ is None else environ
    env = overrides.get("env") or environ.get("WAYMARK_ENV", "dev")
    if env not in PROFILES:
        raise SettingsError(f"WAYMARK_ENV={env!r} is not one of {', '.join(PROFILES)}")
    values: dict[str, Any] = dict(_PROFILE_DEFAULTS[env])
    values["env"] = env
    for f in dataclasses.fields(Settings):
        if f.name == "env":
            continue
        key = f"WAYMARK_{f.name.upper()}"
        target = _TYPES[f.type if isinstance(f.type, str) else f.type.__name__]
        if key + "_FILE" in environ:
            path = Path(environ[key + "_FILE"])
            try:
                values[f.name] = _coerce(f.name, path.read_text().strip(), target)
            except OSError as exc:
                raise SettingsError(f"{key}_FILE={path}: cannot read ({exc.strerror})") from None
        elif key in environ:
            values[f.name] = _coerce(f.name, environ[key], target)
    values.update(overrides)
    if isinstance(values.get("data_dir"), str):
        values["data_dir"] = Path(values["data_dir"])
    settings = Settings(**values)
    if settings.session_store not in {"memory", "file"}:
        raise SettingsError("WAYMARK_SESSION_STORE must be memory or file")
    if settings.log_level.lower() not in {"debug", "info", "warning", "error", "critical"}:
        raise SettingsError("WAYMARK_LOG_LEVEL must be debug, info, warning, error or critical")
    if settings.max_upload_bytes <= 0:
        raise SettingsError("WAYMARK_MAX_UPLOAD_BYTES must be positive")
    return settings


__all__ = ["Settings", "SettingsError", "load_settings", "PROFILES", "DEFAULT_SECRET"]
