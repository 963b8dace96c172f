"""`waymark backup status`: where the replica stands compared with the live database."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from waymark.backup import litestream, urls
from waymark.backup.litestream import BackupError, required_target
from waymark.settings import Settings


@dataclass
class BackupStatus:
    replica: str
    database: str
    local_txid: int | None
    replica_txid: int | None
    last_sync: str | None  # time of the newest LTX file in the replica
    lag_seconds: float | None  # 0 when the replica has everything the database has
    replica_bytes: int
    database_bytes: int
    files_per_level: dict[str, int] = field(default_factory=dict)
    pitr_window_hours: int = 0
    oldest_restore_point: str | None = None
    replicating: bool | None = None  # a `litestream replicate` with our config is running

    @property
    def ok(self) -> bool:
        return self.replica_txid is not None

    def as_dict(self) -> dict:
        return asdict(self)


def _json(proc) -> list[dict]:  # type: ignore[no-untyped-def]
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BackupError(f"litestream failed: {detail[0]}")
    text = proc.stdout.strip()
    return json.loads(text) if text else []


def _local_txid(db_path) -> int | None:  # type: ignore[no-untyped-def]
    """Highest TXID Litestream has written locally (``.<db>-litestream/ltx/<level>/``)."""
    state = db_path.with_name(f".{db_path.name}-litestream") / "ltx"
    best = None
    for f in state.glob("*/*.ltx"):
        try:
            txid = int(f.stem.split("-")[-1], 16)
        except ValueError:
            continue
        best = txid if best is None else max(best, txid)
    return best


def replicating(config: Path, proc_root: Path = Path("/proc")) -> bool | None:
    """Is a ``litestream replicate`` with this config running on this host? None when it
    cannot be told (no /proc). Needed because Litestream's local TXID only advances while
    it runs: with Litestream dead, "local TXID = replica TXID" would read as no lag."""
    if not proc_root.is_dir():
        return None
    wanted = str(config)
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if (args and Path(args[0]).name == "litestream" and "replicate" in args
                and wanted in args):
            return True
    return False


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def backup_status(settings: Settings) -> BackupStatus:
    db_path = litestream.database_path(settings)
    files = _json(litestream.run(settings, "ltx", "-json", "-level", "all", str(db_path),
                                 timeout=120))
    local_txid = _local_txid(db_path)
    if db_path.exists():
        rows = _json(litestream.run(settings, "status", "-json", str(db_path), timeout=60))
        raw = rows[0].get("local_txid", "") if rows else ""
        if raw and raw.strip("-"):
            local_txid = max(local_txid or 0, int(raw, 16))
    per_level: dict[str, int] = {}
    for f in files:
        per_level[str(f["level"])] = per_level.get(str(f["level"]), 0) + 1
    replica_txid = max((int(f["max_txid"], 16) for f in files), default=None)
    stamps = [f["timestamp"] for f in files if f.get("timestamp")]
    last_sync = max(stamps, key=_ts) if stamps else None
    oldest = min(stamps, key=_ts) if stamps else None
    running = replicating(litestream.config_path(settings))
    lag = None
    if replica_txid is not None and last_sync is not None:
        # Behind, or not replicating at all (then nothing newer can reach the replica and
        # the time since the last sync is the honest answer).
        behind = (local_txid is not None and local_txid > replica_txid) or running is False
        lag = max(0.0, time.time() - _ts(last_sync)) if behind else 0.0
    return BackupStatus(
        replica=urls.public(required_target(settings).sub("db")),
        database=str(db_path), local_txid=local_txid, replica_txid=replica_txid,
        last_sync=last_sync, lag_seconds=lag,
        replica_bytes=sum(int(f.get("size", 0)) for f in files),
        database_bytes=db_path.stat().st_size if db_path.exists() else 0,
        files_per_level=per_level, pitr_window_hours=settings.pitr_window_hours,
        oldest_restore_point=oldest, replicating=running)


def record_metrics(settings: Settings) -> BackupStatus:
    """Set waymark_backup_lag_seconds and waymark_backup_last_success_timestamp_seconds."""
    from waymark.observability import metrics

    status = backup_status(settings)
    if status.lag_seconds is not None:
        metrics.BACKUP_LAG.set(status.lag_seconds)
    if status.last_sync:
        metrics.BACKUP_LAST_SUCCESS.set(_ts(status.last_sync))
    return status
