"""Graceful shutdown of `waymark serve`: on SIGTERM it stops accepting connections, finishes
the requests in flight, closes websockets and exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.deploy_support import WAYMARK
from tests.redis_servers import Http
from tests.servers import LOOPBACK, free_port, stop_process

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    env.update({"WAYMARK_DATA_DIR": str(tmp_path / "data"), "WAYMARK_DEMO_DATA": "false",
                "WAYMARK_METRICS_PORT": "0", "WAYMARK_ENCRYPT_OBJECTS": "false",
                # the whole upload is imported inside the request: a long request
                "WAYMARK_IMPORT_JOB_BYTES": str(100 * 1024 * 1024)})
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(WAYMARK), "serve", "--host", LOOPBACK, "--port", str(port),
                                 "--no-job-worker", "--no-backup"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://{LOOPBACK}:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError(log.read_text()[-3000:])
        time.sleep(0.2)
    try:
        yield proc, base, log
    finally:
        stop_process(proc)


def big_geojson(n: int) -> bytes:
    features = [{"type": "Feature", "properties": {"i": i, "name": f"point {i}"},
                 "geometry": {"type": "Point", "coordinates": [i % 360 - 180, (i % 170) - 85]}}
                for i in range(n)]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def refused(port: int) -> bool:
    try:
        socket.create_connection((LOOPBACK, port), timeout=1).close()
        return False
    except OSError:
        return True


def test_sigterm_during_a_long_request_lets_it_complete(server) -> None:  # type: ignore[no-untyped-def]
    proc, base, log = server
    port = int(base.rsplit(":", 1)[1])
    user = Http(base)
    user.signup("shutdown@example.com")
    r = user.request("POST", "/api/v1/maps", json={"title": "long import", "visibility": "public"})
    assert r.status_code == 201, r.text
    map_id = r.json()["id"]
    body = big_geojson(40_000)
    result: dict[str, object] = {}

    def long_request() -> None:
        try:
            resp = user.request("POST", f"/api/v1/maps/{map_id}/import?filename=big.geojson",
                                content=body, headers={"Content-Type": "application/geo+json"},
                                timeout=120)
            result["status"], result["body"] = resp.status_code, resp.json()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            result["error"] = repr(exc)

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(f"ws://{LOOPBACK}:{port}/api/v1/maps/{map_id}/ws", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        worker = threading.Thread(target=long_request)
        worker.start()
        time.sleep(1.0)  # the upload is sent and being imported
        assert worker.is_alive(), f"the request was not long enough to test anything: {result}"
        proc.send_signal(signal.SIGTERM)
        in_flight_when_refused = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if refused(port):
                in_flight_when_refused = worker.is_alive()
                break
            time.sleep(0.05)
        worker.join(timeout=120)
        assert result.get("status") == 201, result
        assert result["body"]["imported"] == 40_000  # type: ignore[index]
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
        assert refused(port)
        # it stopped accepting new connections while the old request was still running
        assert in_flight_when_refused is True, in_flight_when_refused
        # the websocket was closed by the server, not left hanging
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
        print(f"websocket close frame from the server: {closed.value.rcvd}")
