"""Restoring PostgreSQL from its pgBackRest repository, as restore.py does for SQLite.

``restore_cluster`` restores a data directory (the latest state, or ``--to-time``), then
proves it before anyone relies on it: it starts a private PostgreSQL on that directory (a
Unix socket in a temporary directory, no TCP), lets it replay the archived WAL up to the
target and promote, checks every B-tree index and table with amcheck (inside a transaction
that is rolled back: the restored data is not changed), reads the schema revision, and
stops it cleanly. Then the directory is ready to be started as the cluster.

- Into the configured data directory (WAYMARK_POSTGRES_DATA_DIR, e.g. after losing it):
  refused while it holds data unless ``force`` (PostgreSQL stopped; pgBackRest's --delta).
  WAL archiving stays on, so the new timeline is archived and later restores can follow it.
- Anywhere else (``output``): a side copy. Its WAL archiving is switched off, so it can
  never write into the live cluster's repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from waymark.backup import pgbackrest
from waymark.backup.litestream import BackupError
from waymark.backup.restore import RestoreResult, parse_moment
from waymark.settings import Settings

START_TIMEOUT_S = 3600  # replaying WAL of a large database takes a while
INTEGRITY_SQL = """
\\set ON_ERROR_STOP on
BEGIN;
CREATE EXTENSION IF NOT EXISTS amcheck;
SELECT 'indexes', count(*) FROM (
  SELECT bt_index_check(c.oid, true) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam
  WHERE c.relkind = 'i' AND a.amname = 'btree' AND c.relpersistence = 'p'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')) s;
SELECT 'tables', count(DISTINCT c.oid), count(v.blkno) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN LATERAL verify_heapam(c.oid) v ON true
  WHERE c.relkind = 'r' AND c.relpersistence = 'p'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast');
SELECT 'revision', coalesce((SELECT version_num FROM alembic_version), 'none');
ROLLBACK;
"""


def pg_bin(name: str) -> str:
    """A PostgreSQL server program (pg_ctl, psql): Debian keeps them per version."""
    import glob

    found = shutil.which(name)
    if found and name == "psql":
        return found
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0)
    for d in reversed(dirs):
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    if found:
        return found
    raise BackupError(f"{name} not found: the PostgreSQL server package (postgresql) is needed "
                      "on the host that restores")


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _prepare_target(target: Path, owner: str, in_place: bool, force: bool) -> bool:
    """Create the target directory (0700, owner's); True when it already holds data."""
    filled = target.exists() and any(target.iterdir())
    if filled and not force:
        what = "the live data directory" if in_place else "a non-empty directory"
        raise BackupError(f"refusing to overwrite {what} {target}: stop PostgreSQL and pass "
                          "--force, or restore elsewhere with --output DIR")
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    if os.geteuid() == 0:
        shutil.chown(target, user=owner)
    return filled


def restore_cluster(settings: Settings, *, to_time: str | None = None,
                    output: Path | None = None, force: bool = False) -> RestoreResult:
    pgbackrest.check_postgres(settings)
    at = pgbackrest.server(settings)
    live = Path(at.data_dir).resolve()
    target = (output or live).resolve()
    in_place = target == live
    owner = pgbackrest.owner_of(live)
    filled = _prepare_target(target, owner, in_place, force)
    args = [f"--pg1-path={target}"]
    stamp = None
    if to_time:
        moment = parse_moment(to_time)
        stamp = moment.strftime("%Y-%m-%d %H:%M:%S.%f+00")
        args += ["--type=time", f"--target={stamp}", "--target-action=promote"]
    if filled:
        args.append("--delta")
    started = time.monotonic()
    proc = pgbackrest.run(settings, *args, "restore", at=at, timeout=24 * 3600)
    if proc.returncode != 0:
        raise pgbackrest.failed(proc, "pgbackrest restore")
    if not in_place:  # a side copy must never archive into the live cluster's repository
        with open(target / "postgresql.auto.conf", "a") as conf:
            conf.write("# restored aside by `waymark restore --output`: never archive into the "
                       "live cluster's repository\narchive_mode = 'off'\n")
    integrity = check_restored(settings, target, owner, archive=in_place)
    return RestoreResult(target, True, stamp, integrity, time.monotonic() - started, _size(target))


def check_restored(settings: Settings, data_dir: Path, owner: str, *, archive: bool) -> str:
    """Start a private PostgreSQL on ``data_dir`` until recovery ends, check it, stop it."""
    # mkdtemp: a fresh 0700 directory; under /tmp because the postgres user must reach it
    run_dir = Path(tempfile.mkdtemp(prefix="waymark-restore-check-", dir="/tmp"))  # nosec B108
    prefix = pgbackrest.as_owner(data_dir)
    files = {"pg_hba.conf": "local all all trust\n",  # a socket in a private directory only
             "pg_ident.conf": "", "postgresql.conf": "", "check.sql": INTEGRITY_SQL}
    for name, body in files.items():
        (run_dir / name).write_text(body)
    if os.geteuid() == 0:
        for path in (run_dir, *(run_dir / name for name in files)):
            shutil.chown(path, user=owner)
    os.chmod(run_dir, 0o700)
    opts = ["-c listen_addresses=''", f"-c unix_socket_directories={run_dir}", "-c port=5432",
            f"-c hba_file={run_dir}/pg_hba.conf", f"-c ident_file={run_dir}/pg_ident.conf",
            "-c hot_standby=off"]
    if not (data_dir / "postgresql.conf").exists():  # Debian keeps it in /etc/postgresql
        opts += [f"-c config_file={run_dir}/postgresql.conf", f"-c data_directory={data_dir}"]
    if archive:
        command = pgbackrest.postgres_conf(settings)["archive_command"]
        opts += ["-c archive_mode=on", f"-c archive_command='{command}'"]
    else:
        opts.append("-c archive_mode=off")
    pg_ctl, log = pg_bin("pg_ctl"), run_dir / "postgres.log"
    started = False
    try:
        start = subprocess.run(
            [*prefix, pg_ctl, "-D", str(data_dir), "-l", str(log), "-w", "-t",
             str(START_TIMEOUT_S), "-o", " ".join(opts), "start"],
            capture_output=True, text=True, timeout=START_TIMEOUT_S + 60, check=False,
            env=pgbackrest.child_env(settings))  # its restore_command fetches WAL from S3
        started = start.returncode == 0
        if not started:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise BackupError("the restored cluster did not finish recovery: "
                              + (" / ".join(tail) or start.stderr.strip()))
        dbname = make_url(settings.resolved_database_url).database or "postgres"
        psql = [*prefix, pg_bin("psql"), "-X", "-q", "-A", "-t", "-F", "|", "-h", str(run_dir),
                "-p", "5432", "-U", owner, "-d", dbname]
        _wait_promoted(psql, [*prefix, pg_ctl, "-D", str(data_dir), "status"], log)
        check = subprocess.run([*psql, "-f", str(run_dir / "check.sql")], capture_output=True,
                               text=True, timeout=24 * 3600, check=False)
        if check.returncode != 0:
            raise BackupError(f"integrity check failed: {check.stderr.strip()[-500:]}")
        found = dict(line.split("|", 1) for line in check.stdout.splitlines() if "|" in line)
        tables, problems = found["tables"].split("|")
        if int(problems):
            raise BackupError(f"integrity check failed: amcheck reports {problems} corrupt "
                              "heap blocks")
        return (f"ok (amcheck: {found['indexes']} indexes, {tables} tables; schema revision "
                f"{found['revision']})")
    finally:
        if started:
            subprocess.run([*prefix, pg_ctl, "-D", str(data_dir), "-m", "fast", "-w", "stop"],
                           capture_output=True, text=True, timeout=600, check=False)
        shutil.rmtree(run_dir, ignore_errors=True)


def _wait_promoted(psql: list[str], status: list[str], log: Path) -> None:
    """pg_ctl -w returns once the server runs; recovery (WAL replay up to the target) goes on
    until it promotes. Wait for that, or for the server to give up."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        probe = subprocess.run([*psql, "-c", "SELECT pg_is_in_recovery()"], capture_output=True,
                               text=True, timeout=60, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == "f":
            return
        if subprocess.run(status, capture_output=True, timeout=60, check=False).returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise BackupError("the restored cluster stopped during recovery: " + " / ".join(tail))
        time.sleep(0.2)
    raise BackupError(f"the restored cluster was still recovering after {START_TIMEOUT_S} s")
