"""Graceful shutdown of `waymark serve`: on SIGTERM it stops accepting connections, finishes
the requests in flight, closes websockets with 1012 ("service restart": reconnect soon) and
exits 0."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.integration.deploy_support import WAYMARK
from tests.redis_servers import Http
from tests.servers import LOOPBACK, free_port, stop_process

pytestmark = pytest.mark.timeout(180)


def start_server(tmp_path: Path, *args: str,
                 **env_extra: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`waymark serve` as a real process on a free loopback port, ready (/readyz 200)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    env.update({"WAYMARK_DATA_DIR": str(tmp_path / "data"), "WAYMARK_DEMO_DATA": "false",
                "WAYMARK_METRICS_PORT": "0", "WAYMARK_ENCRYPT_OBJECTS": "false",
                # uploads are imported inside the request (not as a job)
                "WAYMARK_IMPORT_JOB_BYTES": str(100 * 1024 * 1024), **env_extra})
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(WAYMARK), "serve", "--host", LOOPBACK, "--port", str(port),
                                 "--no-job-worker", "--no-backup", *args], env=env, stdout=out,
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
    return proc, base, log


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    proc, base, log = start_server(tmp_path)
    try:
        yield proc, base, log
    finally:
        stop_process(proc)


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    # sessions in files: a login made on one worker is valid on the other
    proc, base, log = start_server(tmp_path, "--workers", "2", WAYMARK_SESSION_STORE="file")
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


class HeldUpload:
    """An import request kept in flight by the test itself: headers and half of the body are
    sent, the rest only when the test says so. As long as it takes, whatever the machine."""

    def __init__(self, port: int, path: str, body: bytes, headers: dict[str, str]) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=120)
        head = "".join(f"{k}: {v}\r\n" for k, v in {
            "Host": f"{LOOPBACK}:{port}", "Content-Type": "application/geo+json",
            "Content-Length": str(len(body)), "Connection": "close", **headers}.items())
        self.sock.sendall(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode())
        self.rest = body[len(body) // 2:]
        self.sock.sendall(body[:len(body) // 2])

    def finish(self) -> tuple[int, dict[str, object]]:
        """Send the rest of the body; the response's status and JSON body."""
        self.sock.sendall(self.rest)
        raw = b""
        while chunk := self.sock.recv(65536):
            raw += chunk
        self.sock.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if b"transfer-encoding: chunked" in head.lower():
            payload = _unchunk(payload)
        return status, json.loads(payload)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out, data = out + data[:size], data[size + 2:]


def test_sigterm_during_a_long_request_lets_it_complete(server) -> None:  # type: ignore[no-untyped-def]
    proc, base, log = server
    port = int(base.rsplit(":", 1)[1])
    user = Http(base)
    user.signup("shutdown@example.com")
    r = user.request("POST", "/api/v1/maps", json={"title": "long import", "visibility": "public"})
    assert r.status_code == 201, r.text
    map_id = r.json()["id"]

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(f"ws://{LOOPBACK}:{port}/api/v1/maps/{map_id}/ws", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        upload = HeldUpload(port, f"/api/v1/maps/{map_id}/import?filename=big.geojson",
                            big_geojson(2_000), {"Cookie": user.cookie(),
                                                 "X-CSRF-Token": user.csrf or ""})
        proc.send_signal(signal.SIGTERM)  # the upload is in flight: half of its body is sent
        deadline = time.monotonic() + 60
        while not refused(port):  # new connections are turned away ...
            assert time.monotonic() < deadline, "the listener did not close after SIGTERM"
            assert proc.poll() is None, "the server exited with a request in flight"
            time.sleep(0.05)
        status, body = upload.finish()  # ... while the one in flight completes
        assert status == 201, body
        assert body["imported"] == 2_000
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
        assert refused(port)
        # the websocket was closed by the server with "service restart", not dropped
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None, f"no close frame (1006): {closed.value!r}"
        assert closed.value.rcvd.code == 1012, closed.value.rcvd


def closing_frame(ws) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Read until the server closes; the (code, reason) of its close frame."""
    from websockets.exceptions import ConnectionClosed

    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=20)
    frame = closed.value.rcvd
    assert frame is not None, f"no close frame (a browser sees 1006): {closed.value!r}"
    return frame.code, frame.reason


def test_sigterm_closes_websockets_with_service_restart(two_workers) -> None:  # type: ignore[no-untyped-def]
    from websockets.sync.client import connect

    proc, base, log = two_workers
    port = int(base.rsplit(":", 1)[1])
    owner = Http(base)
    owner.signup("restart@example.com")
    maps = []
    for title in ("first", "second"):
        r = owner.request("POST", "/api/v1/maps", json={"title": title, "visibility": "public"})
        assert r.status_code == 201, r.text
        maps.append(r.json()["id"])
    with ExitStack() as stack:
        stack.callback(owner.close)
        sockets = []
        # editors (session cookie) and anonymous viewers, on two maps, spread over 2 workers
        for i in range(6):
            headers = {"Cookie": owner.cookie()} if i % 2 else {}
            ws = stack.enter_context(connect(f"ws://{LOOPBACK}:{port}/api/v1/maps/{maps[i % 2]}/ws",
                                             additional_headers=headers, open_timeout=10))
            sockets.append(ws)
            hello = json.loads(ws.recv(timeout=10))
            assert hello["type"] == "hello" and hello["can_edit"] is bool(i % 2), hello
        proc.send_signal(signal.SIGTERM)
        frames = [closing_frame(ws) for ws in sockets]
        assert frames == [(1012, "server restarting")] * len(sockets), frames
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
        assert refused(port)
        # each worker closed its own sockets before granian let go of them
        closed_per_worker = re.findall(r"closed (\d+) websocket\(s\) with 1012", log.read_text())
        assert sum(map(int, closed_per_worker)) == len(sockets), closed_per_worker


def test_a_stopping_process_closes_its_sockets_and_turns_new_ones_away(tmp_path,  # type: ignore[no-untyped-def]
                                                                      sqlite_url) -> None:
    """The same path in process (no granian): what a stop signal starts, step by step."""
    from litestar.exceptions import WebSocketDisconnect
    from litestar.testing import TestClient

    from tests.conftest import ApiClient, make_settings
    from waymark.app import create_app
    from waymark.realtime.shutdown import OPEN

    def close_of(ws) -> tuple[int, str]:  # type: ignore[no-untyped-def]
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(20):  # presence updates may come first
                ws.receive_json(timeout=10)
        return closed.value.code, closed.value.detail

    app = create_app(make_settings(tmp_path, sqlite_url))
    try:
        with TestClient(app) as tc:
            api = ApiClient(tc)
            api.signup("stop@example.com")
            path = f"/api/v1/maps/{api.create_map(visibility='public')['id']}/ws"
            with tc.websocket_connect(path) as first, tc.websocket_connect(path) as second:
                assert first.receive_json()["type"] == second.receive_json()["type"] == "hello"
                assert len(OPEN) == 2
                # what the SIGTERM handler runs, on the app's event loop
                assert tc.blocking_portal.call(OPEN.close_all, 10.0) == 2
                assert close_of(first) == close_of(second) == (1012, "server restarting")
                assert len(OPEN) == 0  # the handlers ended (presence left, unsubscribed)
            # the listener still accepts for a moment while the process stops
            with tc.websocket_connect(path) as late:
                assert close_of(late) == (1012, "server restarting")
            assert app.state.realtime.connections == {}
    finally:
        OPEN.stopping = False
        app.state.services.db.dispose()
