"""CDN-ready without leaking (decision 0016): nginx as a caching edge (recipes/ops.md §4, the
CDN stand-in) in front of the real app. A public snapshot is served from the edge's cache;
once the map is made private the edge stops serving it within the stated bound
(s-maxage + stale-while-revalidate); a private map's snapshot is never stored at the edge.

The bound is checked from below only: the test waits until the bound has passed since the
edge stored the snapshot (a slow machine only waits longer), then asks once.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.live import api_token, call, running_app
from tests.servers import LOOPBACK, free_port, require_binary, stop_process

SHARED_SECONDS = 2  # WAYMARK_SHARED_CACHE_SECONDS for this test (production: 300)


def _edge_config(work: Path, port: int, origin: str) -> Path:
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "cache"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(f"""
user root;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log notice;
events {{ worker_connections 64; }}
http {{
  access_log {work}/access.log;
  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
  proxy_cache_path {work}/cache levels=1:2 keys_zone=edge:1m max_size=64m inactive=10m
                   use_temp_path=off;
  server {{
    listen {LOOPBACK}:{port};
    location / {{
      proxy_pass {origin};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache edge;
      proxy_cache_key $scheme$host$request_uri;
      proxy_cache_revalidate on;
      proxy_cache_lock on;
      # stale-while-revalidate comes from the origin's header; `proxy_cache_use_stale
      # updating` would serve stale copies without bound (each revalidation that answers
      # 404 leaves the old entry to be served again): an edge must not be set up so
      proxy_cache_background_update on;
      add_header X-Cache-Status $upstream_cache_status always;
    }}
  }}
}}
""")
    return conf


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(edge URL, app URL)."""
    nginx = require_binary("nginx", "nginx")
    work = tmp_path_factory.mktemp("edge")
    with running_app(work / "var", WAYMARK_SHARED_CACHE_SECONDS=str(SHARED_SECONDS)) as app:
        port = free_port()
        conf = _edge_config(work / "nginx", port, app.url)
        check = subprocess.run([nginx, "-t", "-p", str(work / "nginx"), "-c", str(conf)],
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen([nginx, "-p", str(work / "nginx"), "-c", str(conf), "-g",
                                 "daemon off;"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while _get(f"http://{LOOPBACK}:{port}", "/healthz")[0] != 200:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
            yield f"http://{LOOPBACK}:{port}", app.url
        finally:
            stop_process(proc)


def _get(base: str, path: str) -> tuple[int, dict[str, str]]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
        response = conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    except OSError:
        return 0, {}
    finally:
        conn.close()


def _snapshot(app: str, token: str, visibility: str) -> tuple[str, str]:
    """A map with one point, published; (map id, snapshot URL)."""
    auth = {"Authorization": f"Bearer {token}"}
    status, m, _ = call(app, "POST", "/api/v1/maps", {"title": "edge", "visibility": visibility},
                        auth)
    assert status == 201, m
    base = f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}"
    call(app, "POST", base + "/features", {"geometry": {"type": "Point",
                                                        "coordinates": [1, 2]}}, auth)
    assert _get(app, base + "/data")[0] in (200, 401, 404)  # publishes (owner reads below)
    status, _, _ = call(app, "GET", base + "/data", headers=auth)
    assert status == 200
    status, layer, _ = call(app, "GET", base, headers=auth)
    return m["id"], layer["snapshot_url"]


def test_a_map_made_private_leaves_the_edge_within_the_bound(edge) -> None:  # type: ignore[no-untyped-def]
    edge_url, app = edge
    token = api_token(app, "edge-owner@example.com")
    map_id, url = _snapshot(app, token, "public")

    stored_at = time.monotonic()
    status, headers = _get(edge_url, url)
    assert (status, headers["x-cache-status"]) == (200, "MISS")
    cache_control = headers["cache-control"]
    assert "immutable" not in cache_control and "stale-if-error" not in cache_control
    s_maxage = int(re.search(r"s-maxage=(\d+)", cache_control).group(1))
    stale = int(re.search(r"stale-while-revalidate=(\d+)", cache_control).group(1))
    assert s_maxage == SHARED_SECONDS and stale <= 60
    status, headers = _get(edge_url, url)
    assert (status, headers["x-cache-status"]) == (200, "HIT")  # cacheable at the edge

    status, _, _ = call(app, "PATCH", f"/api/v1/maps/{map_id}", {"visibility": "private"},
                        {"Authorization": f"Bearer {token}"})
    assert status == 200
    assert _get(app, url)[0] == 404  # the origin refuses it at once

    # past the bound (+1 s: HTTP dates have whole seconds), the edge must not serve it
    time.sleep(max(0.0, stored_at + s_maxage + stale + 1 - time.monotonic()))
    status, headers = _get(edge_url, url)
    assert status == 404, (headers.get("x-cache-status"), headers)
    status, headers = _get(edge_url, url)
    assert status == 404, (headers.get("x-cache-status"), headers)


def test_an_unchanged_public_snapshot_is_revalidated_cheaply(edge) -> None:  # type: ignore[no-untyped-def]
    edge_url, app = edge
    _, url = _snapshot(app, api_token(app, "edge-public@example.com"), "public")
    stored_at = time.monotonic()
    assert _get(edge_url, url)[0] == 200
    time.sleep(max(0.0, stored_at + SHARED_SECONDS + 1 - time.monotonic()))
    statuses = {_get(edge_url, url)[1].get("x-cache-status") for _ in range(3)}
    assert statuses & {"REVALIDATED", "STALE", "UPDATING", "HIT"}  # kept, via a 304
    assert _get(edge_url, url)[0] == 200


def test_a_private_snapshot_is_never_stored_at_the_edge(edge) -> None:  # type: ignore[no-untyped-def]
    edge_url, app = edge
    token = api_token(app, "edge-private@example.com")
    _, url = _snapshot(app, token, "private")
    for _ in range(2):
        status, headers = _get(edge_url, url)  # anonymous through the edge: not found
        assert status == 404 and headers["x-cache-status"] == "MISS"
