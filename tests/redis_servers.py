"""Real Redis servers, Sentinel groups and Waymark app processes for the Redis-layer tests.

Everything binds 127.0.0.1 on free ports and is stopped by PID. Redis is started with
``--save '' --appendonly no`` unless a test asks for persistence; Sentinel configs are
regenerated on every run (Sentinel rewrites them).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers import LOOPBACK, free_port, require_binary, stop_process

ROOT = Path(__file__).resolve().parents[1]


def redis_binary() -> str:
    return require_binary("redis-server", "redis-server")


def _ping(port: int, timeout: float = 0.5) -> bool:
    import socket

    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    port: int
    dir: str
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        log = open(Path(self.dir) / f"redis-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", LOOPBACK, "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no", *self.extra],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _ping(self.port):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=2)


def start_redis(base_dir: str | None = None, extra: list[str] | None = None) -> RedisServer:
    redis_binary()
    base = base_dir or tempfile.mkdtemp(prefix="waymark-redis-")
    for _ in range(3):
        server = RedisServer(free_port(), base, list(extra or []))
        try:
            server.start()
            return server
        except RuntimeError:
            server.kill()
    raise RuntimeError("could not start redis-server")


def _running_redis() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from _running_redis()


@pytest.fixture(scope="module")
def module_redis_server() -> Iterator[RedisServer]:
    """One server for a module's tests (each keeps to its own keys)."""
    yield from _running_redis()


# ---- Sentinel -------------------------------------------------------------------------------
@dataclass
class SentinelGroup:
    primary: RedisServer
    replica: RedisServer
    sentinels: list[subprocess.Popen[bytes]]
    sentinel_ports: list[int]
    dir: str
    master: str = "wmmaster"

    @property
    def url(self) -> str:
        hosts = ",".join(f"{LOOPBACK}:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.master}/0"

    def current_primary_port(self) -> int | None:
        import redis

        for port in self.sentinel_ports:
            try:
                addr = redis.Redis(host=LOOPBACK, port=port, socket_timeout=1).execute_command(
                    "SENTINEL", "get-master-addr-by-name", self.master)
                if addr:
                    return int(addr[1])
            except Exception:  # noqa: BLE001, S112 - try the next sentinel
                continue
        return None

    def stop(self) -> None:
        for proc in self.sentinels:
            stop_process(proc)
        self.primary.stop()
        self.replica.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_sentinel_group() -> SentinelGroup:
    base = tempfile.mkdtemp(prefix="waymark-sentinel-")
    primary = start_redis(base, ["--repl-diskless-sync-delay", "0"])
    replica = start_redis(base, ["--repl-diskless-sync-delay", "0", "--replicaof", LOOPBACK,
                                 str(primary.port)])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # wait for the replica to be in sync
        info = replica.client().info("replication")
        if info.get("master_link_status") == "up":
            break
        time.sleep(0.1)
    ports, procs = [], []
    for _ in range(3):
        port = free_port()
        conf = Path(base) / f"sentinel-{port}.conf"
        conf.write_text(
            f"bind {LOOPBACK}\nport {port}\ndir {base}\nsentinel resolve-hostnames no\n"
            f"sentinel monitor wmmaster {LOOPBACK} {primary.port} 2\n"
            "sentinel down-after-milliseconds wmmaster 1000\n"
            "sentinel failover-timeout wmmaster 5000\n"
            "sentinel parallel-syncs wmmaster 1\n")
        log = open(Path(base) / f"sentinel-{port}.log", "ab")  # noqa: SIM115
        procs.append(subprocess.Popen([redis_binary(), str(conf), "--sentinel"], stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        ports.append(port)
    group = SentinelGroup(primary, replica, procs, ports, base)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(_ping(p) for p in ports) and group.current_primary_port() == primary.port:
            return group
        time.sleep(0.1)
    group.stop()
    raise RuntimeError("sentinels did not come up")


# ---- Waymark app processes ------------------------------------------------------------------
@dataclass
class AppProcess:
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "granian", "--interface", "asgi", "--host", LOOPBACK,
             "--port", str(self.port), "--workers", "1", "--no-access-log", "waymark.asgi:app"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=str(ROOT))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"app on {self.port} did not start:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def app_env(data_dir: Path, database_url: str, redis_url: str = "", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    env.update({"WAYMARK_DATA_DIR": str(data_dir), "WAYMARK_DATABASE_URL": database_url,
                "WAYMARK_REDIS_URL": redis_url, "WAYMARK_DEMO_DATA": "false",
                "WAYMARK_ENCRYPT_OBJECTS": "false", "WAYMARK_SNAPSHOT_DELAY_MS": "50",
                "WAYMARK_JOBS_IMMEDIATE": "true", "WAYMARK_LOG_LEVEL": "warning",
                "WAYMARK_PUBLIC_URL": "http://127.0.0.1"})
    env.update(extra)
    return env


def start_apps(n: int, tmp: Path, database_url: str, redis_url: str,
               **extra: str) -> list[AppProcess]:
    apps = []
    for i in range(n):
        app = AppProcess(free_port(), app_env(tmp / "var", database_url, redis_url, **extra),
                         tmp / f"app{i}.log")
        app.start()
        apps.append(app)
    return apps


class Http:
    """A tiny cookie-keeping JSON client (httpx) that sends the CSRF token on writes."""

    def __init__(self, base: str) -> None:
        import httpx

        self.http = httpx.Client(base_url=base, timeout=10)
        self.csrf: str | None = None
        self.token: str | None = None

    def request(self, method: str, url: str, **kw: Any):  # type: ignore[no-untyped-def]
        headers = dict(kw.pop("headers", None) or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        elif self.csrf and method not in ("GET", "HEAD"):
            headers.setdefault("X-CSRF-Token", self.csrf)
        return self.http.request(method, url, headers=headers, **kw)

    def signup(self, email: str, password: str = "correct horse battery staple") -> dict[str, Any]:
        r = self.http.post("/api/v1/auth/signup", json={"email": email, "password": password,
                                                        "display_name": email.split("@")[0]})
        assert r.status_code == 201, r.text
        self.csrf = r.json()["csrf_token"]
        return r.json()

    def cookie(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())

    def close(self) -> None:
        self.http.close()


def dumps(obj: Any) -> str:
    return json.dumps(obj)
