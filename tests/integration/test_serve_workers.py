"""`waymark serve --workers 2` on the embedded defaults (no Redis) behaves like one process:
sessions, real time, presence and rate limits are shared by the workers; and every process
exports its memory and CPU on the metrics port.

Which worker a connection lands on is the kernel's choice: websockets are opened until both
workers hold some (each worker's count is on /metrics, labelled by pid)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.serve_process import STOP_GRACE_SECONDS, Served, start_serve
from tests.servers import LOOPBACK, free_port, wait_until

pytestmark = pytest.mark.timeout(600)
LOGIN_LIMIT = 6


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
                         WAYMARK_RATE_LIMITS=f"login={LOGIN_LIMIT}/minute")
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
    for pid in by_role["worker"]:  # real processes: children of granian's master
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert stat[1] == master
    for name in ("waymark_process_pss_bytes", "process_cpu_seconds_total",
                 "process_start_time_seconds"):
        pids = {labels["pid"] for n, labels, _ in samples if n == name}
        assert pids == set().union(*by_role.values()), name
