"""A real PostgreSQL whose WAL goes to a real pgBackRest repository, for the backup, PITR
and disaster-recovery tests: archiving configured with exactly the postgresql.conf lines
`waymark backup pg-setup` asks for (backup/pgbackrest.postgres_conf), everything on loopback
and in directories the postgres user owns."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.servers import (
    LOOPBACK,
    PostgresServer,
    free_port,
    postgres_options,
    require_binary,
    scoped_env,
    start_postgres_server,
)
from waymark.db.migrate import upgrade
from waymark.settings import Settings, load_settings
from waymark.storage.keys_provider import LocalKeyFile

DATABASE = "waymark"


@dataclass
class ArchivedPostgres:
    server: PostgresServer
    root: Path  # backup target, pgBackRest config, restored copies: owned by postgres
    env: dict[str, str] = field(default_factory=dict)  # for `waymark` commands
    server_env: dict[str, str] = field(default_factory=dict)  # PostgreSQL's (archive_command)

    @property
    def settings(self) -> Settings:
        return load_settings(environ=self.env)

    @property
    def url(self) -> str:
        return self.server.url(DATABASE)

    def pg_ctl(self, *args: str, data_dir: str | None = None, timeout: float = 600
               ) -> subprocess.CompletedProcess[str]:
        cmd = [*self.server.as_postgres, os.path.join(self.server.pg_bin, "pg_ctl"),
               "-D", data_dir or self.server.data_dir, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              env={**os.environ, **self.server_env})

    def start(self) -> None:
        """Start (again) on the same port and socket, e.g. after a restore."""
        log = os.path.join(self.server.base_dir, "postgres.log")
        started = self.pg_ctl("-l", log, "-w", "-t", "600", "-o",
                              postgres_options(self.server.port, self.server.base_dir, True),
                              "start")
        assert started.returncode == 0, started.stdout + started.stderr + _tail(log)

    def kill(self) -> None:
        """kill -9 of the postmaster (its backends die with it): a host loss."""
        pid = int(Path(self.server.data_dir, "postmaster.pid").read_text().split()[0])
        os.kill(pid, 9)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise AssertionError("postmaster did not die")

    def query(self, sql: str, dbname: str = DATABASE, port: int | None = None) -> list[tuple]:
        conninfo = f"host={LOOPBACK} port={port or self.server.port} user=postgres dbname={dbname}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _tail(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")[-2000:]
    except OSError:
        return ""


def _postgres_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(path, user="postgres", group="postgres")
    os.chmod(path, 0o700)
    return path


def start_archived_postgres(extra_env: dict[str, str] | None = None, archive_timeout: int = 1,
                            server_env: dict[str, str] | None = None) -> ArchivedPostgres:
    """PostgreSQL archiving through pgBackRest to ``<root>/backup/pg`` (or the backup URL in
    ``extra_env``), database migrated; ``server_env``: PostgreSQL's own environment (what its
    archive_command needs, e.g. PGBACKREST_REPO1_S3_KEY for an S3 repository)."""
    from waymark.backup import pgbackrest

    require_binary("pgbackrest", "pgbackrest")
    root = _postgres_dir("waymark-pgbr-")
    base = _postgres_dir("waymark-pg-")
    (root / "backup").mkdir()
    if os.geteuid() == 0:
        shutil.chown(root / "backup", user="postgres", group="postgres")
    LocalKeyFile(root / "master.key").current_key_id()  # `waymark keys create` does this
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    env.update({"WAYMARK_BACKUP_URL": f"file://{root}/backup",
                "WAYMARK_PGBACKREST_CONFIG": str(root / "pgbackrest" / "pgbackrest.conf"),
                "WAYMARK_POSTGRES_DATA_DIR": str(base / "data"),
                "WAYMARK_PG_ARCHIVE_TIMEOUT_SECONDS": str(archive_timeout),
                "WAYMARK_DEMO_DATA": "false", "WAYMARK_METRICS_PORT": "0",
                # a shared database: the object key is a shared one, as on every such node
                "WAYMARK_MASTER_KEY_FILE": str(root / "master.key"),
                "PYTHONUNBUFFERED": "1", **(extra_env or {})})
    conf = pgbackrest.postgres_conf(load_settings(environ=env))
    with scoped_env(**(server_env or {})):
        server = start_postgres_server(base_dir=str(base), conf=conf, durable=True)
    archived = ArchivedPostgres(server, root, env, dict(server_env or {}))
    server.create_database(DATABASE)
    env["WAYMARK_DATABASE_URL"] = archived.url
    upgrade(archived.url)
    return archived


def start_copy(archived: ArchivedPostgres, data_dir: Path) -> int:
    """Start PostgreSQL on a restored side copy (its own port and socket); returns the port."""
    port = free_port()
    sockets = _postgres_dir("waymark-pgsock-")
    started = archived.pg_ctl("-l", str(sockets / "log"), "-w", "-t", "600", "-o",
                              postgres_options(port, str(sockets), True), "start",
                              data_dir=str(data_dir))
    assert started.returncode == 0, started.stdout + started.stderr + _tail(str(sockets / "log"))
    return port


def stop_copy(archived: ArchivedPostgres, data_dir: Path) -> None:
    archived.pg_ctl("-m", "fast", "-w", "stop", data_dir=str(data_dir))


def wait_archived(env: dict[str, str], timeout: float = 120) -> dict:
    """Poll the backup status (what `waymark backup status` prints) until every written WAL
    byte is archived (lag 0), pushing WAL as the worker's backup_lag job does."""
    from waymark.backup.pg_backup import push_wal
    from waymark.backup.pg_status import backup_status

    deadline = time.monotonic() + timeout
    status: dict = {}
    aws = {k: v for k, v in env.items() if k.startswith("AWS_")}
    settings = load_settings(environ=env)
    while time.monotonic() < deadline:
        with scoped_env(**aws):
            status = backup_status(settings).as_dict()
        if status.get("lag_seconds") == 0:
            return status
        push_wal(settings, status.get("lag_seconds"))
        time.sleep(0.2)
    raise AssertionError(f"WAL archive did not catch up: {status}")


@dataclass
class TlsProxy:
    """HAProxy terminating TLS in front of a plain-HTTP server (pgBackRest speaks S3 over
    HTTPS only; moto_server's own TLS mode closes connections in a way OpenSSL 3 refuses)."""

    process: subprocess.Popen[bytes]
    port: int
    ca_file: Path
    root: Path

    def stop(self) -> None:
        from tests.servers import stop_process

        stop_process(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


def start_tls_proxy(target_port: int) -> TlsProxy:
    from tests.tls_support import tls_files

    binary = require_binary("haproxy", "haproxy")
    root = Path(tempfile.mkdtemp(prefix="waymark-tls-", dir="/tmp"))
    os.chmod(root, 0o755)  # noqa: S103 - the CA file is read by pgBackRest as the postgres user
    ca, cert, key = tls_files(root)
    os.chmod(ca, 0o644)
    pem = root / "server-with-key.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    port = free_port()
    cfg = root / "haproxy.cfg"
    cfg.write_text(
        "global\n  maxconn 200\ndefaults\n  mode http\n  timeout connect 5s\n"
        "  timeout client 120s\n  timeout server 120s\n"
        f"frontend s3\n  bind {LOOPBACK}:{port} ssl crt {pem}\n  default_backend upstream\n"
        f"backend upstream\n  server upstream {LOOPBACK}:{target_port}\n")
    proc = subprocess.Popen([binary, "-f", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex((LOOPBACK, port)) == 0:
                return TlsProxy(proc, port, ca, root)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("haproxy (TLS in front of S3) did not start")
