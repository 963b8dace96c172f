"""Real servers for tests, started on loopback free ports and stopped by PID.

Import the fixtures into a conftest.py or a test module:

    from tests.servers import moto_server, postgres_server  # noqa: F401

Plain helpers (``start_moto_server``, ``start_postgres_server``) let a test start an extra
server of its own, e.g. one that it stops on purpose.
"""

from __future__ import annotations

import glob
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

LOOPBACK = "127.0.0.1"
TEST_ACCESS_KEY = "test"
TEST_SECRET_KEY = "test"
TEST_REGION = "us-east-1"


# ---- generic helpers ------------------------------------------------------------------
def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def missing_dependency(message: str) -> None:
    """Fail in CI (a missing dependency is a broken build), skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require_binary(name: str, package: str) -> str:
    """Path of executable ``name`` (a name on PATH or a path); fail in CI / skip if missing."""
    path = shutil.which(name)
    if path is None:
        missing_dependency(f"{name} not found: apt-get install {package}")
    return path  # type: ignore[return-value]  # missing_dependency never returns


@contextmanager
def scoped_env(**changes: str | None) -> Iterator[None]:
    """Set (or, with None, unset) environment variables and restore them afterwards."""
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def wait_until(check: Any, what: str, timeout: float = 60.0) -> Any:
    """Poll ``check()`` until it returns something truthy (returned); fail naming ``what``
    after a generous ``timeout``. Tests wait for events this way, never for a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a process this module started; kill it if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


# ---- moto_server (S3) -----------------------------------------------------------------
def moto_server_binary() -> str:
    candidate = Path(sys.executable).parent / "moto_server"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("moto_server")
    if found is None:
        missing_dependency(
            f"moto_server not found next to {sys.executable}: pip install 'moto[server]'"
        )
    return found  # type: ignore[return-value]


@dataclass
class MotoServer:
    """A running moto_server; S3 calls need credentials, any value works (test/test)."""

    endpoint: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log_dir: str = field(repr=False, default="")

    def url(self, bucket: str, prefix: str = "") -> str:
        """The waymark ``s3://`` URL of ``bucket``/``prefix`` on this server."""
        path = f"/{quote(prefix.strip('/'))}" if prefix.strip("/") else ""
        return f"s3://{bucket}{path}?endpoint={self.endpoint}&region={TEST_REGION}"

    def boto3_client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=TEST_REGION,
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
        )

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` (3-63 chars, lowercase) and return the name."""
        # AWS_CA_BUNDLE (set on this machine) must not reach boto3 for a plain-http server.
        with scoped_env(AWS_CA_BUNDLE=None):
            self.boto3_client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        stop_process(self.process)
        if self._log_dir:
            shutil.rmtree(self._log_dir, ignore_errors=True)


def hold_write_gate(gate_path: str, held: Any, release: Any, released_marker: str) -> None:
    """Child-process target: hold Waymark's SQLite write lock (the WriteGate's flock), as
    another app process in the middle of a write would: `held` is set once it is; it lets go
    when the test sets `release` (at the latest after 120 s, so a failed test cannot hang),
    writing `released_marker` (a file) first so waiters can tell they came after it."""
    import fcntl

    fd = os.open(gate_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held.set()
    release.wait(120)
    Path(released_marker).touch()
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def readyz_ok(port: int, host: str = LOOPBACK) -> bool:
    """A Waymark server on `port` answers GET /readyz with 200."""
    conn = http.client.HTTPConnection(host, port, timeout=1)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _http_answers(host: str, port: int) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=1)
    try:
        conn.request("GET", "/moto-api/")
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


def start_moto_server(
    env: Mapping[str, str] | None = None, *, startup_timeout: float = 30.0
) -> MotoServer:
    """Start moto_server on a free loopback port and wait until it answers HTTP."""
    binary = moto_server_binary()
    child_env = dict(os.environ)
    child_env.pop("AWS_CA_BUNDLE", None)
    child_env.update(env or {})
    log_dir = tempfile.mkdtemp(prefix="waymark-moto-")
    log_path = Path(log_dir) / "moto.log"
    last_error = ""
    for _attempt in range(3):  # another process may grab the port between pick and bind
        port = free_port()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [binary, "-H", LOOPBACK, "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_env,
            )
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if _http_answers(LOOPBACK, port):
                return MotoServer(f"http://{LOOPBACK}:{port}", proc, log_path, log_dir)
            time.sleep(0.1)
        last_error = _tail(log_path)
        stop_process(proc)
    shutil.rmtree(log_dir, ignore_errors=True)
    raise RuntimeError(f"moto_server did not start:\n{last_error}")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A moto S3 server for the session; AWS_ACCESS_KEY_ID/SECRET are test/test meanwhile."""
    server = start_moto_server()
    try:
        with scoped_env(
            AWS_ACCESS_KEY_ID=TEST_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=TEST_SECRET_KEY
        ):
            yield server
    finally:
        server.stop()


# ---- PostgreSQL ---------------------------------------------------------------------------
def postgres_bin_dir() -> str | None:
    """Newest ``/usr/lib/postgresql/<version>/bin`` (Debian layout), or None."""
    dirs = glob.glob("/usr/lib/postgresql/*/bin")

    def version(path: str) -> tuple[int, ...]:
        raw = Path(path).parent.name
        return tuple(int(p) for p in raw.split(".") if p.isdigit()) or (0,)

    return max(dirs, key=version) if dirs else None


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster (trust auth, fsync off): never for real data."""

    host: str
    port: int
    base_dir: str
    pg_bin: str
    as_postgres: list[str]

    @property
    def data_dir(self) -> str:
        return os.path.join(self.base_dir, "data")

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user=postgres dbname={dbname}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name`` and return its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        pg_ctl = os.path.join(self.pg_bin, "pg_ctl")
        result = subprocess.run(
            [*self.as_postgres, pg_ctl, "-D", self.data_dir, "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            _kill_postmaster(self.data_dir)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _kill_postmaster(data_dir: str) -> None:
    """Fallback when pg_ctl stop fails: kill the postmaster we started, by its PID file."""
    try:
        pid = int(Path(data_dir, "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    with suppress(OSError):
        os.kill(pid, 9)


def postgres_options(port: int, base_dir: str, durable: bool = False) -> str:
    """pg_ctl -o options: loopback, the socket in base_dir, and no fsync unless durable."""
    opts = f"-h {LOOPBACK} -p {port} -k {base_dir}"
    return opts if durable else opts + " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def start_postgres_server(*, startup_timeout: int = 60, conf: Mapping[str, str] | None = None,
                          base_dir: str | None = None, durable: bool = False) -> PostgresServer:
    """initdb + pg_ctl start on a free loopback port, as the postgres user when root.

    ``conf``: extra postgresql.conf settings (e.g. WAL archiving); ``base_dir``: an existing
    empty directory to use (e.g. one whose path is already in those settings); ``durable``:
    keep fsync and synchronous commits (backup and recovery drills)."""
    pg_bin = postgres_bin_dir()
    initdb = require_binary(os.path.join(pg_bin, "initdb") if pg_bin else "initdb", "postgresql")
    pg_bin = os.path.dirname(initdb)
    pg_ctl = require_binary(os.path.join(pg_bin, "pg_ctl"), "postgresql")

    is_root = os.geteuid() == 0
    as_postgres: list[str] = []
    # /tmp rather than $TMPDIR: the postgres user must be able to reach the directory.
    base_dir = base_dir or tempfile.mkdtemp(prefix="waymark-pg-", dir="/tmp" if is_root else None)
    if is_root:
        as_postgres = [require_binary("runuser", "util-linux"), "-u", "postgres", "--"]
        shutil.chown(base_dir, user="postgres", group="postgres")
    os.chmod(base_dir, 0o700)
    data_dir = os.path.join(base_dir, "data")
    log_file = os.path.join(base_dir, "postgres.log")

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*as_postgres, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    init = run(
        initdb, "-D", data_dir, "-U", "postgres", "--auth-local=trust", "--auth-host=trust",
        "-E", "UTF8", "--no-locale", "--no-sync",
    )
    if init.returncode != 0:
        shutil.rmtree(base_dir, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    if conf:
        with open(os.path.join(data_dir, "postgresql.conf"), "a") as out:
            out.writelines(f"{key} = '{value}'\n" for key, value in conf.items())

    last_error = ""
    for _attempt in range(3):  # the free port may be taken before postgres binds it
        port = free_port()
        opts = postgres_options(port, base_dir, durable)
        start = run(
            pg_ctl, "-D", data_dir, "-l", log_file, "-w", "-t", str(startup_timeout),
            "-o", opts, "start",
            timeout=startup_timeout + 30,
        )
        if start.returncode == 0:
            return PostgresServer(LOOPBACK, port, base_dir, pg_bin, as_postgres)
        last_error = f"{start.stdout}\n{start.stderr}\n{_tail(Path(log_file))}"
        run(pg_ctl, "-D", data_dir, "-m", "immediate", "-w", "stop")
    shutil.rmtree(base_dir, ignore_errors=True)
    raise RuntimeError(f"postgres did not start:\n{last_error}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session; ``.create_database(name)`` gives a URL."""
    server = start_postgres_server()
    try:
        yield server
    finally:
        server.stop()


# ---- PgBouncer (transaction pooling in front of PostgreSQL) --------------------------------
@dataclass
class PgBouncerServer:
    """PgBouncer in transaction mode in front of a PostgresServer (trust auth, loopback)."""

    host: str
    port: int
    base_dir: str
    process: subprocess.Popen[bytes]
    pool_size: int

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user=postgres dbname={dbname}"

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _accepts_connections(conninfo: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(conninfo, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def start_pgbouncer(postgres: PostgresServer, *, pool_size: int = 4,
                    startup_timeout: float = 30.0) -> PgBouncerServer:
    """pgbouncer (Debian `pgbouncer`) on a free loopback port, pool_mode = transaction; it
    refuses to run as root, so it runs as the postgres user like the server."""
    binary = require_binary("pgbouncer", "pgbouncer")
    base_dir = tempfile.mkdtemp(prefix="waymark-pgbouncer-",
                                dir="/tmp" if postgres.as_postgres else None)
    Path(base_dir, "userlist.txt").write_text('"postgres" ""\n')
    last_error = ""
    for _attempt in range(3):
        port = free_port()
        ini = Path(base_dir, "pgbouncer.ini")
        ini.write_text(
            "[databases]\n"
            f"* = host={postgres.host} port={postgres.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = {LOOPBACK}\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {base_dir}/userlist.txt\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\n"
            "max_client_conn = 500\nserver_reset_query =\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {base_dir}/pgbouncer.log\n")
        if postgres.as_postgres:
            shutil.chown(base_dir, user="postgres", group="postgres")
            for name in ("userlist.txt", "pgbouncer.ini"):
                shutil.chown(Path(base_dir, name), user="postgres", group="postgres")
        proc = subprocess.Popen([*postgres.as_postgres, binary, str(ini)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
        server = PgBouncerServer(LOOPBACK, port, base_dir, proc, pool_size)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if _accepts_connections(server.conninfo()):
                return server
            time.sleep(0.1)
        last_error = _tail(Path(base_dir, "pgbouncer.log"))
        stop_process(proc)
    shutil.rmtree(base_dir, ignore_errors=True)
    raise RuntimeError(f"pgbouncer did not start:\n{last_error}")


@pytest.fixture(scope="session")
def pgbouncer_server(postgres_server: PostgresServer) -> Iterator[PgBouncerServer]:
    """PgBouncer (transaction mode) in front of the session's PostgreSQL server."""
    server = start_pgbouncer(postgres_server)
    try:
        yield server
    finally:
        server.stop()
