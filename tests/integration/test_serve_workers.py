"""`waymark serve --workers 2` on the embedded defaults (no Redis) behaves like one process:
sessions, real time, presence and rate limits are shared by the workers; and every process
exports its memory and CPU on the metrics port.

Which worker a connection lands on is the kernel's choice: websockets are opened until both
workers hold some (each worker's count is on /metrics, labelled by pid)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.serve_process import STOP_GRACE_SECONDS, Served, start_serve
from tests.redis_servers import Http
from tests.servers import LOOPBACK, free_port, wait_until

pytestmark = pytest.mark.timeout(600)
LOGIN_LIMIT = 6
JOB_BYTES = 200  # uploads larger than this import in the job worker


class Server:
    def __init__(self, served: Served, metrics_port: int) -> None:
        self.served = served
        self.base = served.base
        self.metrics_url = f"http://{LOOPBACK}:{metrics_port}/metrics"

    def metrics(self) -> list[tuple[str, dict[str, str], float]]:
        text = httpx.get(self.metrics_url, timeout=30).text
        out = []
        for line in text.splitlines():
            m = re.fullmatch(r"([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)", line)
            if m and not line.startswith("#"):
                labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
                out.append((m.group(1), labels, float(m.group(3))))
        return out

    def sockets_per_pid(self) -> dict[str, float]:
        return {labels["pid"]: value for name, labels, value in self.metrics()
                if name == "waymark_ws_connections"}

    def worker_pids(self) -> set[str]:
        return {labels["pid"] for name, labels, _ in self.metrics()
                if name == "process_resident_memory_bytes" and labels["role"] == "worker"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("workers")
    metrics_port = free_port()
    served = start_serve(root / "data", root / "serve.log", "--workers", "2",
                         WAYMARK_METRICS_PORT=str(metrics_port),
                         WAYMARK_RATE_LIMITS=f"login={LOGIN_LIMIT}/minute",
                         WAYMARK_IMPORT_JOB_BYTES=str(JOB_BYTES))
    try:
        served.wait_ready()
        served.wait_log("Started worker-1")
        served.wait_log("Started worker-2")
        server = Server(served, metrics_port)
        wait_until(lambda: len(server.worker_pids()) == 2, "two app workers on /metrics")
        yield server
    finally:
        if served.proc.poll() is None:
            os.killpg(served.proc.pid, signal.SIGTERM)
            try:
                served.proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                served.kill_group()


def fresh(server: Server, method: str, path: str, **kw: Any) -> httpx.Response:
    """One request on a connection of its own (either worker may take it)."""
    with httpx.Client(base_url=server.base, timeout=30) as client:
        return client.request(method, path, **kw)


def test_every_process_exports_its_memory_and_cpu(server: Server) -> None:
    samples = server.metrics()
    by_role: dict[str, set[str]] = {}
    for name, labels, value in samples:
        if name == "process_resident_memory_bytes":
            assert value > 1_000_000, (labels, value)
            by_role.setdefault(labels["role"], set()).add(labels["pid"])
    assert {role: len(pids) for role, pids in by_role.items()} == \
        {"serve": 1, "master": 1, "worker": 2, "jobs": 1}, by_role
    assert by_role["serve"] == {str(server.served.proc.pid)}
    (master,) = by_role["master"]
    # real processes: children of granian's master, the job worker too (decision 0025)
    for pid in by_role["worker"] | by_role["jobs"]:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert stat[1] == master
    for name in ("waymark_process_pss_bytes", "process_cpu_seconds_total",
                 "process_start_time_seconds"):
        pids = {labels["pid"] for n, labels, _ in samples if n == name}
        assert pids == set().union(*by_role.values()), name


def test_a_session_is_valid_on_every_worker(server: Server) -> None:
    user = Http(server.base)
    user.signup("sessions@example.com")
    cookie = user.cookie()
    statuses = [fresh(server, "GET", "/api/v1/auth/me", headers={"Cookie": cookie}).status_code
                for _ in range(40)]
    assert statuses == [200] * 40, statuses
    assert fresh(server, "POST", "/api/v1/auth/logout",  # ended on one, ended on all
                 headers={"Cookie": cookie, "X-CSRF-Token": user.csrf or ""}).status_code == 204
    statuses = [fresh(server, "GET", "/api/v1/auth/me", headers={"Cookie": cookie}).status_code
                for _ in range(20)]
    assert statuses == [401] * 20, statuses


def _connect_on_both_workers(server: Server, stack: ExitStack, path: str,
                             headers: dict[str, str]) -> list[Any]:
    """Open websockets until both workers hold at least one; all of them, in order."""
    from websockets.sync.client import connect

    sockets: list[Any] = []
    before = server.sockets_per_pid()
    holders: set[str] = set()
    while len(holders) < 2:
        assert len(sockets) < 40, f"40 connections, all on {holders}"
        ws = stack.enter_context(connect(f"ws://{LOOPBACK}:{server.served.port}{path}",
                                         additional_headers=headers, open_timeout=30))
        hello = recv(ws, "hello")
        sockets.append((ws, hello))
        now = server.sockets_per_pid()
        holders |= {pid for pid, count in now.items() if count > before.get(pid, 0)}
    assert holders == server.worker_pids()
    return sockets


def recv(ws: Any, kind: str, until: Any = None) -> dict[str, Any]:
    """The next message of this type (and matching ``until``), within a generous deadline."""
    import time

    deadline = time.monotonic() + 30
    while True:
        msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if msg["type"] == kind and (until is None or until(msg)):
            return msg


def test_edits_and_presence_reach_clients_on_both_workers(server: Server) -> None:
    owner = Http(server.base)
    owner.signup("realtime@example.com")
    r = owner.request("POST", "/api/v1/maps", json={"title": "Shared", "visibility": "public"})
    assert r.status_code == 201, r.text
    map_id, layer_id = r.json()["id"], r.json()["layers"][0]["id"]
    path = f"/api/v1/maps/{map_id}/ws"
    with ExitStack() as stack:
        viewers = _connect_on_both_workers(server, stack, path, {})
        editors = _connect_on_both_workers(server, stack, path, {"Cookie": owner.cookie()})
        everyone = [ws for ws, _ in viewers + editors]
        # presence: every client, on either worker, sees the whole map's audience
        for ws in everyone:
            recv(ws, "presence", until=lambda m: m["anonymous"] == len(viewers)
                 and [u["name"] for u in m["users"]] == ["realtime"])
        # an edit made through any worker reaches every client, numbered once
        for i in range(3):
            r = fresh(server, "POST", f"/api/v1/maps/{map_id}/layers/{layer_id}/features",
                      json={"geometry": {"type": "Point", "coordinates": [i, i]}},
                      headers={"Cookie": owner.cookie(), "X-CSRF-Token": owner.csrf or ""})
            assert r.status_code == 201, r.text
            seqs = {recv(ws, "edit")["seq"] for ws in everyone}
            assert seqs == {i + 1}, seqs
        # an edit sent over a websocket on one worker reaches the clients of the other
        first_ws = editors[0][0]
        first_ws.send(json.dumps({"type": "edit", "ref": "r1", "layer": layer_id, "op": "create",
                                  "geometry": {"type": "Point", "coordinates": [9, 9]}}))
        assert {recv(ws, "edit")["seq"] for ws in everyone} == {4}


def test_rate_limits_count_requests_on_all_workers(server: Server) -> None:
    """The limit holds across both workers: the request after LOGIN_LIMIT in one window is
    refused. Windows are fixed minutes of the clock the server and this test share, so the
    requests are sent until the first 429 and counted per window (a run that crosses a
    minute boundary starts counting again, however slow the machine is)."""
    sent: list[tuple[int, int, int]] = []  # (window before sending, window after, status)
    while not sent or sent[-1][2] != 429:
        assert len(sent) <= 2 * LOGIN_LIMIT + 1, sent  # one boundary at most can be crossed
        before = int(time.time() // 60)
        status = fresh(server, "POST", "/api/v1/auth/login",
                       json={"email": "nobody@example.com", "password": "wrong password!"}
                       ).status_code
        sent.append((before, int(time.time() // 60), status))
    assert all(status == 401 for _, _, status in sent[:-1]), sent

    def fits(window: int) -> bool:  # LOGIN_LIMIT requests were counted in `window` before the 429
        surely = sum(1 for b, a, _ in sent[:-1] if b == a == window)
        maybe = sum(1 for b, a, _ in sent[:-1] if b != a and window in (b, a))  # across a boundary
        return surely <= LOGIN_LIMIT <= surely + maybe

    assert any(fits(window) for window in sent[-1][:2]), sent


def test_the_job_worker_forked_by_the_master_runs_an_import(server: Server) -> None:
    owner = Http(server.base)
    owner.signup("jobs@example.com")
    map_id = owner.request("POST", "/api/v1/maps", json={"title": "Jobs"}).json()["id"]
    points = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": f"point {i}"},
         "geometry": {"type": "Point", "coordinates": [i, i]}} for i in range(12)]}
    body = json.dumps(points)
    assert len(body) > JOB_BYTES
    r = owner.request("POST", f"/api/v1/maps/{map_id}/import?filename=points.geojson",
                      content=body)
    assert r.status_code == 202, r.text
    url = r.json()["job"]["url"]
    wait_until(lambda: owner.request("GET", url).json()["status"] in ("done", "failed"),
               "the import job to end", timeout=120)
    job = owner.request("GET", url).json()
    assert job["status"] == "done", job
    assert job["result"]["imported"] == 12
