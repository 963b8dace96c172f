"""Read-only mode across two app processes sharing one database (no Redis): the switch set
by `waymark maintenance on` in a third process is seen by both; HTTP and websocket writes
are refused on both, reads, pages and data are served; `off` opens writes again on both.
The DR runbook's "read-only service during a long recovery" is this procedure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.redis_servers import AppProcess, Http, start_apps

POINT = {"type": "Point", "coordinates": [-3.19, 55.95]}
MESSAGE = "Database move in progress, back at 14:00 UTC."
WAYMARK = Path(sys.executable).parent / "waymark"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[tuple[list[AppProcess], str]]:
    tmp = tmp_path_factory.mktemp("read-only")
    shutil.copyfile(sqlite_template, tmp / "waymark.db")
    url = f"sqlite:///{tmp / 'waymark.db'}"
    apps = start_apps(2, tmp, url, "", WAYMARK_RATE_LIMITS="signup=100/minute")
    try:
        yield apps, url
    finally:
        for app in apps:
            app.stop()


def waymark(url: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    env["WAYMARK_DATABASE_URL"] = url
    proc = subprocess.run([str(WAYMARK), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def probe(app: AppProcess, token: str) -> int:
    """A write that changes nothing: 422 (empty title) while writes are open, 503 when not."""
    return httpx.post(app.base + "/api/v1/maps", json={"title": ""},
                      headers={"Authorization": f"Bearer {token}"}).status_code


def wait_for(condition, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_both_processes_refuse_writes_and_serve_reads(shared) -> None:  # type: ignore[no-untyped-def]
    from websockets.sync.client import connect

    (a, b), url = shared
    alice = Http(a.base)
    alice.signup("alice@example.com")
    token = alice.request("POST", "/api/v1/tokens", json={"name": "t", "scope": "write"}).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    m = alice.request("POST", "/api/v1/maps", json={"title": "Shared", "visibility": "public"}).json()
    layer = m["layers"][0]["id"]
    features = f"/api/v1/maps/{m['id']}/layers/{layer}/features"
    assert httpx.post(b.base + features, json={"geometry": POINT}, headers=bearer).status_code == 201
    assert probe(a, token) == probe(b, token) == 422

    assert MESSAGE in waymark(url, "maintenance", "on", "--message", MESSAGE, "--retry-after", "90")
    wait_for(lambda: probe(a, token) == 503 and probe(b, token) == 503, "both processes to refuse")

    for app in (a, b):
        r = httpx.post(app.base + features, json={"geometry": POINT}, headers=bearer)
        assert r.status_code == 503 and r.headers["Retry-After"] == "90"
        assert r.json()["error"] == {"code": "read_only", "message": MESSAGE,
                                     "details": {"since": r.json()["error"]["details"]["since"],
                                                 "retry_after": 90}}
        # reads, data, the page (with its banner) and the embed are served
        data = httpx.get(f"{app.base}/api/v1/maps/{m['id']}/layers/{layer}/data")
        assert data.status_code == 200 and len(data.json()["features"]) == 1
        page = httpx.get(f"{app.base}/m/{m['id']}")
        assert page.status_code == 200 and MESSAGE in page.text
        assert httpx.get(f"{app.base}/m/{m['id']}/embed").status_code == 200
    # a websocket edit on B is refused the same way
    with connect(f"{b.ws_base}/api/v1/maps/{m['id']}/ws", additional_headers=bearer,
                 open_timeout=10) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello" and hello["read_only"] == MESSAGE
        ws.send(json.dumps({"type": "edit", "ref": "w1", "layer": layer, "op": "create",
                            "geometry": POINT}))
        while (msg := json.loads(ws.recv(timeout=10)))["type"] != "error":
            pass
        assert msg["ref"] == "w1" and msg["status"] == 503 and msg["error"]["code"] == "read_only"
    assert "ON since" in waymark(url, "maintenance", "status")

    assert "OFF" in waymark(url, "maintenance", "off")
    wait_for(lambda: probe(a, token) == 422 and probe(b, token) == 422, "both to accept writes")
    assert httpx.post(a.base + features, json={"geometry": POINT}, headers=bearer).status_code == 201
    data = httpx.get(f"{b.base}/api/v1/maps/{m['id']}/layers/{layer}/data").json()
    assert len(data["features"]) == 2  # nothing written while read-only, one since
