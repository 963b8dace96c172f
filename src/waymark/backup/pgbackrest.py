"""pgBackRest, configured from Waymark's settings: for PostgreSQL what Litestream is for SQLite.

``config(settings)`` builds pgbackrest.conf; nothing is written by hand. The repository is
``<backup_url>/pg`` (next to Litestream's ``db/``, the object backup and the configuration
backups), on a directory or on S3. PostgreSQL itself pushes every WAL segment there
(``archive_command``, printed by `waymark backup pg-setup`), at the latest
WAYMARK_PG_ARCHIVE_TIMEOUT_SECONDS after a write (``archive_timeout``): that bounds the RPO
on a host loss. A daily job takes a base backup: full when the newest full one is older than
``FULL_EVERY``, else differential. Full backups are kept so that the oldest one is at least
WAYMARK_PITR_WINDOW_HOURS (and two full cycles) old, with all WAL since: a restore to any
second since then is exact.

pgBackRest reads PostgreSQL's data directory, so it runs on the database host, as the owner
of that directory (from root, Waymark switches to that user with runuser).
"""

from __future__ import annotations

import configparser
import hashlib
import io
import math
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from waymark.backup import urls
from waymark.backup.litestream import BackupError, required_target
from waymark.settings import Settings

STANZA = "waymark"
FULL_EVERY = timedelta(days=7)
DEFAULT_SOCKET_DIR = "/var/run/postgresql"
_SECRET_OPTIONS = ("repo1-s3-key", "repo1-s3-key-secret", "repo1-s3-token")


@dataclass(frozen=True)
class Server:
    """Where PostgreSQL runs on this host: its data directory, port and socket directory."""

    data_dir: str
    port: int
    socket_dir: str


def binary() -> str:
    found = shutil.which("pgbackrest")
    if found is None:
        raise BackupError("pgbackrest not found: apt-get install pgbackrest (on the database host)")
    return found


def check_postgres(settings: Settings) -> None:
    if settings.is_sqlite:
        raise BackupError("pgBackRest backs up PostgreSQL; this database is SQLite (Litestream)")
    if settings.postgres_managed:
        raise BackupError("WAYMARK_POSTGRES_MANAGED is set: backups and point-in-time restore "
                          "are the provider's (use its console or API), not pgBackRest's")
    required_target(settings)


def server(settings: Settings) -> Server:
    """Data directory (WAYMARK_POSTGRES_DATA_DIR, else asked), port and socket directory as
    the running server reports them; defaults when it is down (a restore after a loss)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from waymark.db.engine import make_engine

    found: dict[str, str] = {}
    engine = make_engine(settings.resolved_database_url, pool_size=1,
                         transaction_pooler=settings.db_transaction_pooler)
    try:
        with engine.connect() as conn:
            for name in ("port", "unix_socket_directories", "data_directory"):
                try:
                    found[name] = str(conn.execute(text(f"SHOW {name}")).scalar_one())
                except Exception:  # noqa: BLE001 - data_directory needs pg_read_all_settings
                    conn.rollback()
    except Exception:  # noqa: BLE001 - the server is down: settings, last config, defaults
        pass
    finally:
        engine.dispose()
    known = _written(settings)  # what the server said last time, for when it is down
    data_dir = settings.postgres_data_dir or found.get("data_directory") or known.get("pg1-path", "")
    if not data_dir:
        raise BackupError("PostgreSQL's data directory is unknown: set WAYMARK_POSTGRES_DATA_DIR "
                          "(e.g. /var/lib/postgresql/15/main)")
    sockets = [s.strip() for s in found.get("unix_socket_directories", "").split(",") if s.strip()]
    port = found.get("port") or known.get("pg1-port") or make_url(
        settings.resolved_database_url).port or 5432
    socket_dir = sockets[0] if sockets else known.get("pg1-socket-path", DEFAULT_SOCKET_DIR)
    return Server(data_dir, int(port), socket_dir)


def _written(settings: Settings) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(config_path(settings).read_text())
    except (OSError, configparser.Error):
        return {}
    return dict(parser[STANZA]) if parser.has_section(STANZA) else {}


def repository(settings: Settings, *, secrets: bool = False) -> dict[str, str]:
    """The repo1-* options for ``<backup_url>/pg``, from the settings alone (the file must
    not depend on which process wrote it). Credentials given in the URL's query are written
    (``secrets``: the 0600 file has them, printed copies not); otherwise they come from the
    environment of whoever runs pgBackRest (``child_env``)."""
    target = required_target(settings).sub("pg")
    kind = urls.scheme(target)
    if kind == "file":
        return {"repo1-path": urls.local_path(target)}
    if kind != "s3":
        raise BackupError(f"WAYMARK_BACKUP_URL scheme {kind!r} is not supported: use file:// or s3://")
    bucket, prefix, params = urls.s3_parts(target)
    lowered = {k.lower().removeprefix("aws_"): v for k, v in params.items()}
    endpoint = lowered.get("endpoint", "")
    host = endpoint.split("://", 1)[-1].rstrip("/") or f"s3.{lowered.get('region', 'us-east-1')}.amazonaws.com"
    out = {"repo1-type": "s3", "repo1-s3-bucket": bucket, "repo1-path": "/" + prefix,
           "repo1-s3-region": lowered.get("region", "us-east-1")}
    if ":" in host:
        host, port = host.rsplit(":", 1)
        out["repo1-storage-port"] = port
    out["repo1-s3-endpoint"] = host
    if endpoint:  # a self-hosted store (MinIO, SeaweedFS...): path-style addressing
        out["repo1-s3-uri-style"] = "path"
    key, secret = lowered.get("access_key_id"), lowered.get("secret_access_key")
    if key and secret:
        out["repo1-s3-key"] = key if secrets else "<access_key_id from WAYMARK_BACKUP_URL>"
        out["repo1-s3-key-secret"] = secret if secrets else "<secret_access_key from WAYMARK_BACKUP_URL>"
    if settings.backup_sse_kms_key_id:
        out["repo1-s3-kms-key-id"] = settings.backup_sse_kms_key_id
    return out


def retention_full(settings: Settings) -> int:
    """Full backups to keep: the oldest must reach back over the PITR window."""
    return max(2, math.ceil(timedelta(hours=settings.pitr_window_hours) / FULL_EVERY) + 1)


def config(settings: Settings, *, secrets: bool = False,
           at: Server | None = None) -> dict[str, dict[str, str]]:
    check_postgres(settings)
    at = at or server(settings)
    lock = hashlib.sha256(at.data_dir.encode()).hexdigest()[:12]  # one lock directory per cluster
    return {
        "global": {**repository(settings, secrets=secrets),
                   "repo1-retention-full": str(retention_full(settings)),
                   "start-fast": "y", "process-max": "2", "compress-type": "gz",
                   # a backup (and `check`) waits this long for its WAL to be archived: a
                   # busy server may have a backlog of segments to push first
                   "archive-timeout": "600",
                   "log-level-console": "warn", "log-level-file": "off",
                   # pgBackRest's own default is /tmp/pgbackrest; one directory per cluster
                   "lock-path": f"/tmp/pgbackrest-{STANZA}-{lock}"},  # noqa: S108  # nosec B108
        STANZA: {"pg1-path": at.data_dir, "pg1-port": str(at.port),
                 "pg1-socket-path": at.socket_dir},
    }


def config_path(settings: Settings) -> Path:
    return Path(settings.pgbackrest_config)


def render(settings: Settings, *, secrets: bool = False, at: Server | None = None) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_dict(config(settings, secrets=secrets, at=at))
    out = io.StringIO()
    parser.write(out, space_around_delimiters=False)
    return ("# Generated by Waymark from its settings (WAYMARK_BACKUP_URL, WAYMARK_PITR_WINDOW_HOURS,"
            "\n# WAYMARK_POSTGRES_DATA_DIR, ...). Do not edit: `waymark backup pg-setup` rewrites "
            "it.\n" + out.getvalue())


def postgres_conf(settings: Settings) -> dict[str, str]:
    """The postgresql.conf settings that make PostgreSQL archive every WAL segment."""
    return {"wal_level": "replica", "archive_mode": "on",
            "archive_timeout": f"{max(settings.pg_archive_timeout_seconds, 1)}s",
            "archive_command": f"{binary()} --config={config_path(settings)} --stanza={STANZA} "
                               "archive-push %p"}


def owner_of(path: Path) -> str:
    """The user owning ``path`` (or its nearest existing parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return pwd.getpwuid(path.stat().st_uid).pw_name


def as_owner(path: Path) -> list[str]:
    """Command prefix running as the owner of ``path`` when we are root and it is not."""
    if os.geteuid() != 0:
        return []
    user = owner_of(path)
    return [] if user == "root" else [shutil.which("runuser") or "runuser", "-u", user, "--"]


def write_config(settings: Settings, at: Server | None = None) -> Path:
    """Write the configuration (0600, owned like PostgreSQL's data directory)."""
    at = at or server(settings)
    path = config_path(settings)
    body = render(settings, secrets=True, at=at)
    user = owner_of(Path(at.data_dir))
    created = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(body)
    os.chmod(tmp, 0o600)
    if os.geteuid() == 0:  # pgBackRest (and PostgreSQL's archive_command) run as that user
        shutil.chown(tmp, user=user)
        if created:
            shutil.chown(path.parent, user=user)
    os.replace(tmp, path)
    return path


def current_config(settings: Settings, at: Server | None = None) -> Path:
    """The written configuration, refreshed when the settings changed (one source of truth)."""
    path = config_path(settings)
    try:
        unchanged = path.read_text() == render(settings, secrets=True, at=at)
    except OSError:
        unchanged = False
    if unchanged:
        return path
    try:
        return write_config(settings, at)
    except OSError as exc:
        raise BackupError(f"the pgBackRest configuration {path} is missing or out of date and "
                          f"cannot be written ({exc.strerror}): run `waymark backup pg-setup` "
                          "as root on the database host") from None


def child_env(settings: Settings) -> dict[str, str]:
    """Environment for pgBackRest: S3 credentials and a private CA from the usual AWS_*
    variables (pgBackRest's own names are PGBACKREST_REPO1_*), unless the URL carries them;
    no credentials at all means the instance's or pod's role."""
    env = dict(os.environ)
    if settings.backup_target is None or settings.backup_target.scheme != "s3":
        return env
    if "repo1-s3-key" not in repository(settings):
        names = {"AWS_ACCESS_KEY_ID": "PGBACKREST_REPO1_S3_KEY",  # variable names, not secrets
                 "AWS_SECRET_ACCESS_KEY": "PGBACKREST_REPO1_S3_KEY_SECRET",  # nosec B105
                 "AWS_SESSION_TOKEN": "PGBACKREST_REPO1_S3_TOKEN"}  # nosec B105
        for aws, ours in names.items():
            if env.get(aws):
                env.setdefault(ours, env[aws])
        if "PGBACKREST_REPO1_S3_KEY" not in env:
            env.setdefault("PGBACKREST_REPO1_S3_KEY_TYPE", "auto")
    if env.get("AWS_CA_BUNDLE"):
        env.setdefault("PGBACKREST_REPO1_STORAGE_CA_FILE", env["AWS_CA_BUNDLE"])
    return env


def run(settings: Settings, *args: str, timeout: float = 3600, at: Server | None = None,
        config_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run one pgbackrest command for the stanza with the generated configuration."""
    at = at or server(settings)
    cfg = config_file or current_config(settings, at)
    cmd = [*as_owner(Path(at.data_dir)), binary(), f"--config={cfg}", f"--stanza={STANZA}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                          env=child_env(settings))


def failed(proc: subprocess.CompletedProcess[str], what: str) -> BackupError:
    lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
    detail = next((line for line in lines if line.startswith("ERROR")), lines[-1] if lines else "")
    return BackupError(f"{what} failed: {detail or f'exit code {proc.returncode}'}")


def info(settings: Settings, at: Server | None = None) -> dict[str, Any]:
    """`pgbackrest info` for the stanza: archive range and backups."""
    import json

    proc = run(settings, "--output=json", "info", timeout=300, at=at)
    if proc.returncode != 0:
        raise failed(proc, "pgbackrest info")
    rows = json.loads(proc.stdout or "[]")
    return rows[0] if rows else {}
