"""One typed settings object, read from WAYMARK_* variables.

Every field has a safe default for the active profile (WAYMARK_ENV = dev | staging | prod)
and can be overridden by WAYMARK_<FIELD> or, for secrets, WAYMARK_<FIELD>_FILE (the value
is read from that file, so secrets never need to sit in the environment).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # parsed in the module that owns each format, imported when first used
    import ipaddress

    from waymark.backup.urls import BackupTarget
    from waymark.basemaps.presets import Presets
    from waymark.mail import SmtpTarget
    from waymark.ops.redis import RedisTarget
    from waymark.ratelimit.rules import Rule

PROFILES = ("dev", "staging", "prod")
DEFAULT_SECRET = "dev-insecure-secret-change-me"  # noqa: S105  # nosec B105 - dev placeholder, refused outside dev
SECRET_FIELDS = frozenset({"secret_key", "database_url", "object_store_url", "redis_url",
                           "sentry_dsn", "metrics_token", "backup_url",
                           "archive_url", "smtp_url"})


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
    job_stale_seconds: int = 30  # a running job silent this long is handed to another worker
    snapshot_cache_items: int = 256
    snapshot_delay_ms: int = 1000  # background publishing waits this long to coalesce edits
    shared_cache_seconds: int = 300  # CDNs/proxies revalidate public snapshots this often
    db_pool_size: int = 10  # PostgreSQL connections per process, at most (scaling.md)
    db_transaction_pooler: bool = False  # the URL is PgBouncer in transaction mode
    demo_data: bool = True  # `waymark serve` seeds a demo map on an empty database
    allow_signup: bool = True
    log_level: str = "info"

    # ---- Redis layer: rate limits, response cache, real time, live data -----------
    rate_limits: str = ""  # overrides of the defaults, e.g. "login=10/minute,write=off"
    trusted_proxies: str = ""  # IPs/CIDRs whose X-Forwarded-For is believed (none by default)
    api_cache: bool = True  # two-level cache of versioned public responses and snapshots
    cache_ttl_seconds: int = 3600  # how long a cache entry lives in Redis
    realtime_window: int = 1000  # edit events kept per map for reconnecting clients
    presence_ttl_seconds: int = 30  # a viewer disappears this long after its last heartbeat
    live_ttl_seconds: int = 600  # a silent device's latest position and track expire after this
    live_track_points: int = 50  # points kept in each device's short track
    live_flush_seconds: int = 5  # live position history is written to the database this often
    # ---- basemaps and place search (basemaps/, geocode/) ---------------------------
    basemaps: str = ""  # JSON list of basemap presets (basemaps/presets.py); built-in always there
    default_basemap: str = ""  # preset for maps whose basemap is "default"; empty: natural-earth
    basemap_url: str = ""  # one raster XYZ template, offered as preset "custom" (older setting)
    basemap_attribution: str = ""  # attribution of basemap_url
    geocoder: str = "builtin"  # builtin (offline gazetteer) | nominatim | photon
    geocoder_url: str = ""  # base URL of the Nominatim or Photon service
    geocoder_rate_per_second: int = 1  # requests per second to that service (Nominatim: 1)
    geocoder_cache_seconds: int = 86400  # how long its answers are reused

    # ---- observability (docs/operations/monitoring.md) ---------------------------
    metrics_port: int = 9464  # `waymark serve` serves /metrics here (0: no listener)
    metrics_token: str = ""  # bearer token for /metrics; when set also served on the app port
    slow_request_ms: int = 1000  # access lines of slower requests say slow=true (warning)
    access_log_flush_ms: int = 200  # access lines are written in batches this often (0: each)
    sentry_dsn: str = ""  # error tracking with sentry-sdk; empty: off
    commit: str = ""  # build's VCS commit for waymark_build_info and error reports

    # ---- data safety (backups, retention, encryption at rest) -------------------
    backup_url: str = ""  # file:///abs/dir or s3://bucket/prefix?...; required in prod
    pitr_window_hours: int = 24  # restores to any second inside this window are exact
    backup_sync_interval_seconds: int = 1  # Litestream sync interval: bounds the RPO
    backup_sse_kms_key_id: str = ""  # S3 server-side encryption of DB replicas (SSE-KMS)
    backup_sse_customer_key_path: str = ""  # or SSE-C: a file holding a base64 32-byte key
    postgres_managed: bool = False  # a cloud PostgreSQL: its provider does the backups
    postgres_data_dir: str = ""  # PostgreSQL's data directory (pgBackRest pg1-path); empty: ask it
    pgbackrest_config: str = "/etc/pgbackrest/pgbackrest.conf"  # generated by `backup pg-setup`
    pg_archive_timeout_seconds: int = 60  # a WAL segment is archived at most this late: the RPO
    archive_url: str = ""  # empty: <backup_url>/archive, else <data_dir>/archive
    trash_days: int = 30  # a deleted map can be restored by its owner this long
    archive_days: int = 365  # archived maps and snapshots are kept this long, then purged
    snapshot_keep_versions: int = 10  # snapshot versions kept per layer; older ones archived
    encrypt_objects: bool = True  # envelope encryption (AES-256-GCM) of stored objects
    master_key_path: str = ""  # empty: <data_dir>/master.key (created 0600 on first use)
    # Shared master key sources, for several nodes (one of them; docs/operations/scaling.md):
    master_key_file: str = ""  # a key file mounted from a secret, the same on every node
    kms_key_id: str = ""  # or a KMS key (id, ARN or alias) that wraps the data keys
    kms_endpoint_url: str = ""  # KMS endpoint; empty: the AWS default for the region
    kms_region: str = ""  # KMS region; empty: AWS_REGION / AWS_DEFAULT_REGION

    # ---- routine maintenance jobs (docs/operations/maintenance.md) ----------------
    vacuum_free_pages: int = 5000  # SQLite: give free pages back above this; PG: dead-tuple report
    staging_layer_hours: int = 24  # hidden import staging layers older than this are orphans
    live_history_days: int = 30  # live positions kept this long (0: forever)
    config_backup_days: int = 90  # configuration backups kept this long (the newest always)
    job_retention_days: int = 30  # finished import jobs (status, errors) kept this long
    history_keep_days: int = 0  # compact change history older than this (0: keep it all)

    # ---- mail (password reset; docs/configuration.md) ----------------------------
    smtp_url: str = ""  # smtp://, smtp+starttls:// or smtps://user:pass@host:port; empty: no mail
    mail_from: str = "Waymark <waymark@localhost>"  # sender address of the mail Waymark sends
    password_reset_minutes: int = 60  # a reset link works this long, once

    # ---- parsed values: each string setting parsed once, by load_settings -------------
    # Cached on the (frozen) object: load_settings reads each one, so a malformed value
    # fails at start-up and every consumer reads the parsed value, never the string.
    @cached_property
    def rate_limit_rules(self) -> dict[str, Rule]:
        """The default rate limits with WAYMARK_RATE_LIMITS applied, by class."""
        from waymark.ratelimit.rules import parse_rules

        return parse_rules(self.rate_limits)

    @cached_property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """WAYMARK_TRUSTED_PROXIES: the networks whose X-Forwarded-For is believed."""
        from waymark.ratelimit.rules import parse_networks

        return tuple(parse_networks(self.trusted_proxies))

    @cached_property
    def redis_target(self) -> RedisTarget | None:
        """WAYMARK_REDIS_URL parsed (plain or Sentinel); None: the embedded stores."""
        if not self.redis_url:
            return None
        from waymark.ops.redis import parse_redis_url

        return parse_redis_url(self.redis_url)

    @cached_property
    def smtp_target(self) -> SmtpTarget | None:
        """WAYMARK_SMTP_URL parsed; None: no mail is sent."""
        if not self.smtp_url:
            return None
        from waymark.mail import parse_smtp_url

        return parse_smtp_url(self.smtp_url)

    @cached_property
    def backup_target(self) -> BackupTarget | None:
        """WAYMARK_BACKUP_URL and the layout under it; None: no backup target."""
        if not self.backup_url:
            return None
        from waymark.backup.urls import BackupTarget

        return BackupTarget(self.backup_url)

    @cached_property
    def basemap_presets(self) -> Presets:
        """The built-in basemap, WAYMARK_BASEMAPS, WAYMARK_BASEMAP_URL and the default."""
        from waymark.basemaps.presets import load_presets

        return load_presets(self.basemaps, self.default_basemap, self.basemap_url,
                            self.basemap_attribution)

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
    def resolved_master_key_path(self) -> Path:
        return Path(self.master_key_path) if self.master_key_path else self.data_dir / "master.key"

    @property
    def resolved_archive_url(self) -> str:
        if self.archive_url:
            return self.archive_url
        if self.backup_target is not None:
            return self.backup_target.sub("archive")
        return f"file://{(self.data_dir / 'archive').resolve()}"

    @property
    def broker_socket(self) -> Path | None:
        """Where the app workers of one `waymark serve` share real time, presence and rate
        limits without Redis (realtime/broker.py); None with Redis or a single worker."""
        if self.redis_url or self.workers <= 1:
            return None
        path = (self.data_dir / "broker.sock").resolve()
        if len(str(path)) > 100:  # longer than a Unix socket address may be
            digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
            path = Path(tempfile.gettempdir()) / f"waymark-broker-{digest}.sock"
        return path

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def master_key_source(self) -> str:
        """kms | shared-file | local-file: where the object encryption's master key lives."""
        if self.kms_key_id:
            return "kms"
        return "shared-file" if self.master_key_file else "local-file"

    def node_key_problem(self) -> str | None:
        """Why this node may not start with its own generated master key, or None.

        With a shared database every node must read every object, so the master key must
        be shared too; a key generated in one node's data dir makes the objects it writes
        unreadable everywhere else (and is lost with the node)."""
        if self.is_sqlite or not self.encrypt_objects or self.master_key_source != "local-file":
            return None
        return ("the database is shared (not a local SQLite file), but the object encryption "
                f"key would be this node's own {self.resolved_master_key_path}, so other nodes "
                "could not read what this one writes: set WAYMARK_MASTER_KEY_FILE to a key file "
                "mounted from a secret, the same on every node (`waymark keys create -o FILE`, "
                "or the existing master.key), or WAYMARK_KMS_KEY_ID (+ WAYMARK_KMS_ENDPOINT_URL) "
                "for a KMS key")

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
            if not self.backup_url:
                issues.append(
                    "no backup target: set WAYMARK_BACKUP_URL (file:///abs/dir or "
                    "s3://bucket/prefix) so the database and objects are replicated"
                )
            if not self.cookie_secure:
                issues.append("cookie_secure is off: serve over HTTPS and set WAYMARK_COOKIE_SECURE=true")
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
    try:
        _ = settings.redis_target
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    try:
        _ = settings.rate_limit_rules, settings.trusted_networks
    except ValueError as exc:
        raise SettingsError(f"WAYMARK_RATE_LIMITS / WAYMARK_TRUSTED_PROXIES: {exc}") from None
    try:
        _ = settings.smtp_target
    except ValueError as exc:
        raise SettingsError(f"WAYMARK_SMTP_URL: {exc}") from None
    _ = settings.backup_target
    for name in ("vacuum_free_pages", "staging_layer_hours", "live_history_days",
                 "config_backup_days", "job_retention_days", "history_keep_days"):
        if getattr(settings, name) < 0:
            raise SettingsError(f"WAYMARK_{name.upper()} must be 0 or more")
    if settings.staging_layer_hours < 1:
        raise SettingsError("WAYMARK_STAGING_LAYER_HOURS must be at least 1 (imports in "
                            "progress use staging layers)")
    if settings.password_reset_minutes <= 0:
        raise SettingsError("WAYMARK_PASSWORD_RESET_MINUTES must be positive")
    from waymark.basemaps.presets import PresetError

    try:
        _ = settings.basemap_presets
    except PresetError as exc:
        raise SettingsError(str(exc)) from None
    if settings.geocoder not in ("builtin", "nominatim", "photon"):
        raise SettingsError("WAYMARK_GEOCODER must be builtin, nominatim or photon")
    if settings.geocoder != "builtin" and not settings.geocoder_url.startswith(("http://", "https://")):
        raise SettingsError(f"WAYMARK_GEOCODER={settings.geocoder} needs WAYMARK_GEOCODER_URL "
                            "(http(s)://host/path of the service)")
    if settings.db_pool_size < 1:
        raise SettingsError("WAYMARK_DB_POOL_SIZE must be at least 1")
    if settings.max_upload_bytes <= 0:
        raise SettingsError("WAYMARK_MAX_UPLOAD_BYTES must be positive")
    if settings.master_key_file and settings.kms_key_id:
        raise SettingsError("WAYMARK_MASTER_KEY_FILE and WAYMARK_KMS_KEY_ID are both set: "
                            "choose one master key source")
    return settings


__all__ = ["DEFAULT_SECRET", "PROFILES", "Settings", "SettingsError", "load_settings"]
