"""Rolling deploys of 3 app processes behind a real HAProxy, under continuous load.

The tests share one cluster and run in order: bring-up (r1) -> rolling deploy (r2) ->
broken release rolled back (stays r2) -> manual rollback (r1). Each one that changes
processes runs under a bounded load of writes and reads through HAProxy and then checks
that no request failed and that every acknowledged write is in the database.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx
import pytest

from tests.integration.deploy_support import (
    HAProxy,
    api_user,
    app_env,
    make_release,
    served_commit,
    start_haproxy,
    waymark,
    write_plan,
)
from tests.redis_servers import start_redis
from tests.servers import LOOPBACK, free_port, wait_until

pytestmark = pytest.mark.timeout(400)


@dataclass
class Cluster:
    root: Path
    plan: Path
    haproxy: HAProxy
    ports: list[int]
    releases: dict[str, Path]
    headers: dict[str, str] = field(default_factory=dict)
    map_id: str = ""
    layer_id: str = ""

    def state(self) -> dict:
        return json.loads((self.root / "state" / "state.json").read_text())

    def deploy(self, *args: str):  # type: ignore[no-untyped-def]
        return waymark("deploy", *args, "--plan", str(self.plan))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("deploy")
    ports = [free_port() for _ in range(3)]
    # several instances on one data dir share their state through Redis (as the plan does)
    redis = start_redis(str(root))
    env = {**app_env(root), "WAYMARK_REDIS_URL": redis.url}
    plan = write_plan(root, env, [(f"app{i + 1}", p) for i, p in enumerate(ports)],
                      f"http://{LOOPBACK}:{(lb_port := free_port())}",
                      drain_timeout=10, ready_timeout=60, ready_grace=6, stop_timeout=15,
                      settle_seconds=0.5)
    releases = {
        "r1": make_release(root / "releases", "r1"),
        "r2": make_release(root / "releases", "r2"),
        # Starts and answers /healthz, but its object storage is unreachable: /readyz 503.
        "broken": make_release(root / "releases", "broken", serve_env={
            "WAYMARK_OBJECT_STORE_URL": "s3://gone?endpoint=http://127.0.0.1:9&region=us-east-1"}),
        # Fails `waymark check --deploy` (debug on in production).
        "unsafe": make_release(root / "releases", "unsafe", env={"WAYMARK_DEBUG": "true"}),
    }
    # Loose per-IP limits here: the load comes from one IP (the limits have their own test).
    haproxy = start_haproxy(root, plan, lb_port, "--rate-limit", "100000")
    c = Cluster(root, plan, haproxy, ports, releases)
    try:
        first = c.deploy("release", str(releases["r1"]))
        assert first.returncode == 0, first.stdout + first.stderr
        c.headers, c.map_id, c.layer_id = api_user(haproxy.url)
        yield c
    finally:
        stopped = c.deploy("stop")
        if stopped.returncode != 0:  # do not leave app processes behind
            import os
            import signal

            for entry in c.state().get("instances", {}).values():
                with contextlib.suppress(OSError):
                    os.killpg(entry["pid"], signal.SIGKILL)
        haproxy.stop()
        redis.stop()


class Load:
    """Writes (new features) and reads through HAProxy from a few threads, until stopped."""

    def __init__(self, c: Cluster, threads: int = 3) -> None:
        self.c = c
        self.stop_event = threading.Event()
        self.acked: list[str] = []
        self.failures: list[str] = []
        self.requests = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def _run(self, n: int) -> None:
        path = f"/api/v1/maps/{self.c.map_id}/layers/{self.c.layer_id}/features"
        with httpx.Client(base_url=self.c.haproxy.url, headers=self.c.headers, timeout=30) as client:
            i = 0
            while not self.stop_event.is_set():
                i += 1
                try:
                    if i % 2:
                        r = client.post(path, json={
                            "geometry": {"type": "Point", "coordinates": [n, i % 80]},
                            "properties": {"t": n, "i": i}})
                        ok = r.status_code == 201
                        if ok:
                            with self.lock:
                                self.acked.append(r.json()["id"])
                    else:
                        r = client.get(f"/api/v1/maps/{self.c.map_id}")
                        ok = r.status_code == 200
                    if not ok:
                        self.failures.append(f"{r.request.method} {r.status_code} {r.text[:120]}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                with self.lock:
                    self.requests += 1
                time.sleep(0.02)

    def __enter__(self) -> Self:
        for t in self.threads:
            t.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=60)

    def lost_writes(self) -> set[str]:
        """Acknowledged feature ids that are not in the layer now."""
        found: set[str] = set()
        url = f"/api/v1/maps/{self.c.map_id}/layers/{self.c.layer_id}/features"
        after = None
        with httpx.Client(base_url=self.c.haproxy.url, headers=self.c.headers, timeout=30) as cl:
            while True:
                r = cl.get(url, params={"limit": 1000, **({"after": after} if after else {})})
                assert r.status_code == 200, r.text
                found |= {f["id"] for f in r.json()["features"]}
                after = r.json()["next"]
                if not after:
                    break
        return set(self.acked) - found


def commits(c: Cluster) -> list[str]:
    return [served_commit(f"http://{LOOPBACK}:{p}") for p in c.ports]


def test_first_release_brings_up_all_instances(cluster: Cluster) -> None:
    assert commits(cluster) == ["r1", "r1", "r1"]
    status = cluster.deploy("status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("running haproxy=UP") == 3, status.stdout
    assert "current:  " + str(cluster.releases["r1"]) in status.stdout


def test_unsafe_environment_is_refused_before_any_instance_is_touched(cluster: Cluster) -> None:
    pids = {n: e["pid"] for n, e in cluster.state()["instances"].items()}
    result = cluster.deploy("release", str(cluster.releases["unsafe"]))
    assert result.returncode == 1
    assert "check failed" in result.stderr and "WAYMARK_DEBUG" in result.stderr, result.stderr
    assert "no instance was touched" in result.stderr
    assert {n: e["pid"] for n, e in cluster.state()["instances"].items()} == pids
    assert commits(cluster) == ["r1", "r1", "r1"]


def test_rolling_deploy_under_load_fails_no_request_and_loses_no_write(cluster: Cluster) -> None:
    old_pids = {e["pid"] for e in cluster.state()["instances"].values()}
    with Load(cluster) as load:
        result = cluster.deploy("release", str(cluster.releases["r2"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert load.failures == [], load.failures[:10]
    assert len(load.acked) >= 20, f"too little load to mean anything: {load.requests} requests"
    assert load.lost_writes() == set()
    assert commits(cluster) == ["r2", "r2", "r2"]
    state = cluster.state()
    assert not old_pids & {e["pid"] for e in state["instances"].values()}  # all replaced
    assert (state["current"], state["previous"]) == (str(cluster.releases["r2"]),
                                                      str(cluster.releases["r1"]))
    print(f"rolling deploy: {load.requests} requests, {len(load.acked)} writes, 0 failed")


def test_broken_release_is_rolled_back_automatically(cluster: Cluster) -> None:
    with Load(cluster) as load:
        result = cluster.deploy("release", str(cluster.releases["broken"]))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "app1: new release failed: /readyz still answered 503" in result.stdout, result.stdout
    assert "rolled back to r2" in result.stderr, result.stderr
    assert load.failures == [], load.failures[:10]
    assert load.lost_writes() == set()
    assert commits(cluster) == ["r2", "r2", "r2"]
    state = cluster.state()
    assert state["current"] == str(cluster.releases["r2"])  # the broken one never became current
    assert cluster.deploy("status").stdout.count("running haproxy=UP") == 3


def test_manual_rollback_returns_to_the_previous_release(cluster: Cluster) -> None:
    with Load(cluster, threads=2) as load:
        result = cluster.deploy("rollback")
    assert result.returncode == 0, result.stdout + result.stderr
    assert load.failures == [], load.failures[:10]
    assert load.lost_writes() == set()
    assert commits(cluster) == ["r1", "r1", "r1"]
    state = cluster.state()
    assert (state["current"], state["previous"]) == (str(cluster.releases["r1"]),
                                                      str(cluster.releases["r2"]))


def test_haproxy_limits_connections_and_request_rate_per_ip(cluster: Cluster) -> None:
    """A second HAProxy on the same servers with tight per-IP limits: 429 past the rate,
    new connections refused past the concurrent-connection limit."""
    port = free_port()
    lb = start_haproxy(cluster.root, cluster.plan, port, "--rate-limit", "5", "--conn-limit",
                       "2", name="limited")
    try:
        with httpx.Client(base_url=lb.url, timeout=10) as client:
            codes = [client.get("/healthz").status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and set(codes[6:]) == {429}, codes
        def answered(sock: socket.socket) -> bool:
            """Did HAProxy answer an HTTP request on this connection (or reject it)?"""
            sock.settimeout(5)
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                return sock.recv(100).startswith(b"HTTP/1.1 ")
            except (ConnectionResetError, BrokenPipeError):
                return False
            finally:
                sock.close()

        # 4 connections at once with a limit of 2: HAProxy's threads may accept them in any
        # order, so which ones are refused varies, but never more than 2 get an answer.
        conns = [socket.create_connection((LOOPBACK, port)) for _ in range(4)]
        results = [answered(c) for c in conns]
        assert 1 <= sum(results) <= 2, results
        # once HAProxy has seen them closed, a new connection is answered (a 429 by now)
        wait_until(lambda: answered(socket.create_connection((LOOPBACK, port))),
                   "a connection answered after the others closed")
    finally:
        lb.stop()
