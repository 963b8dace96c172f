"""rediss:// (TLS): the app keeps its sessions and real time in a TLS-only redis-server."""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from tests.conftest import ApiClient, make_settings
from tests.redis_servers import redis_binary
from tests.servers import LOOPBACK, free_port, stop_process
from tests.tls_support import tls_files
from waymark.app import create_app

pytestmark = pytest.mark.redis


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    ca, cert, key = tls_files(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [redis_binary(), "--port", "0", "--tls-port", str(port), "--bind", LOOPBACK,
         "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        context = ssl.create_default_context(cafile=str(ca))
        deadline = time.monotonic() + 10
        while True:
            try:
                import socket

                with socket.create_connection((LOOPBACK, port), timeout=1) as raw, \
                        context.wrap_socket(raw, server_hostname=LOOPBACK) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "TLS redis did not start"
            time.sleep(0.1)
        yield port, ca
    finally:
        stop_process(proc)


def test_rediss_url_is_accepted_and_used(tmp_path: Path, sqlite_url: str,
                                         tls_redis: tuple[int, Path]) -> None:
    import redis

    port, ca = tls_redis
    url = f"rediss://{LOOPBACK}:{port}/0?ssl_ca_certs={ca}&ssl_cert_reqs=required"
    app = create_app(make_settings(tmp_path, sqlite_url, redis_url=url))
    try:
        with TestClient(app) as tc:
            alice = ApiClient(tc)
            alice.signup("alice@example.com")
            ready = tc.get("/readyz").json()
            assert ready["status"] == "ready" and ready["checks"]["redis"]["backend"] == "redis"
            m = alice.create_map(visibility="public")
            with tc.websocket_connect(f"/api/v1/maps/{m['id']}/ws") as ws:
                assert ws.receive_json()["type"] == "hello"
                r = alice.post(f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}/features",
                               json={"geometry": {"type": "Point", "coordinates": [1, 2]}})
                assert r.status_code == 201
                while (msg := ws.receive_json())["type"] != "edit":
                    pass
                assert msg["seq"] == 1  # numbered by the TLS Redis
        # the session and the edit stream really are in that Redis
        client = redis.Redis(host=LOOPBACK, port=port, ssl=True, ssl_ca_certs=str(ca))
        assert any(client.scan_iter("wm:sessions:*"))
        assert client.get(f"wm:seq:{m['id']}") == b"1"
    finally:
        app.state.services.db.dispose()
