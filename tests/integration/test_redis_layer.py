"""The Redis layer against real redis-server processes and two real app processes.

Two granian processes share one SQLite file and one Redis: sessions, rate limits, the
response cache and real-time edits must work across them, and survive a Redis outage.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_servers import AppProcess, Http, RedisServer, start_apps, start_redis
from tests.servers import wait_until

POINT = {"type": "Point", "coordinates": [-3.19, 55.95]}
pytestmark = pytest.mark.redis


_n = itertools.count()


def email(name: str = "alice") -> str:
    return f"{name}{next(_n)}@example.com"


# One Redis and two app processes for the module (starting Python processes is the slow
# part); every test makes its own users and maps. The outage test runs last: it empties Redis.
@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path,
         redis_server: RedisServer) -> Iterator[list[AppProcess]]:
    tmp = tmp_path_factory.mktemp("redis-apps")
    shutil.copyfile(sqlite_template, tmp / "waymark.db")
    procs = start_apps(2, tmp, f"sqlite:///{tmp / 'waymark.db'}", redis_server.url,
                       WAYMARK_RATE_LIMITS="login=5/hour,signup=1000/minute",  # hour: no window edge mid-test
                       WAYMARK_REALTIME_WINDOW="5", WAYMARK_PRESENCE_TTL_SECONDS="3",
                       WAYMARK_LIVE_TTL_SECONDS="4", WAYMARK_LIVE_FLUSH_SECONDS="1")
    try:
        yield procs
    finally:
        for p in procs:
            p.stop()


def ws_connect(app: AppProcess, path: str, cookie: str = "", token: str = ""):  # type: ignore[no-untyped-def]
    from websockets.sync.client import connect

    headers = {}
    if cookie:
        headers["Cookie"] = cookie
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return connect(app.ws_base + path, additional_headers=headers, open_timeout=5)


def recv_until(ws, kind: str, timeout: float = 5.0) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {kind!r} message within {timeout} s")
        msg = json.loads(ws.recv(timeout=left))
        if msg["type"] == kind:
            return msg


def published_up_to(app: AppProcess, path: str, seq: int) -> None:
    """Edits are published after the response: wait until the map's sequence reaches seq."""
    def reached() -> bool:
        with ws_connect(app, path) as ws:
            return recv_until(ws, "hello")["seq"] >= seq

    wait_until(reached, f"edit {seq} published")


def setup_map(app: AppProcess, visibility: str = "public") -> tuple[Http, str, str]:
    alice = Http(app.base)
    alice.signup(email())
    r = alice.request("POST", "/api/v1/maps", json={"title": "Shared", "visibility": visibility})
    assert r.status_code == 201, r.text
    return alice, r.json()["id"], r.json()["layers"][0]["id"]


def test_edit_on_one_process_reaches_websocket_of_the_other(apps: list[AppProcess]) -> None:
    a, b = apps
    alice, map_id, layer = setup_map(a)
    # the session made on A authenticates the websocket on B
    with ws_connect(b, f"/api/v1/maps/{map_id}/ws", cookie=alice.cookie()) as ws:
        hello = recv_until(ws, "hello")
        assert hello["can_edit"] is True and hello["user"]["name"].startswith("alice")
        r = alice.request("POST", f"/api/v1/maps/{map_id}/layers/{layer}/features",
                          json={"geometry": POINT, "properties": {"n": 1}})
        assert r.status_code == 201
        edit = recv_until(ws, "edit")
        assert edit["seq"] == 1 and edit["feature"]["id"] == r.json()["id"]
        # and an edit sent over B's websocket reaches a websocket on A
        with ws_connect(a, f"/api/v1/maps/{map_id}/ws") as viewer:
            # presence is shared too: the viewer on A sees alice, who is connected to B
            presence = recv_until(viewer, "hello")["presence"]
            assert [u["name"] for u in presence["users"]] == [hello["user"]["name"]]
            assert presence["anonymous"] == 1  # the viewer itself
            ws.send(json.dumps({"type": "edit", "ref": "r1", "layer": layer, "op": "delete",
                                "id": r.json()["id"]}))
            assert recv_until(ws, "ack")["ref"] == "r1"
            got = recv_until(viewer, "edit")
            assert got["op"] == "feature.delete" and got["seq"] == 2


def test_session_is_shared_and_ended_server_side(apps: list[AppProcess],
                                                 redis_server: RedisServer) -> None:
    a, b = apps
    alice = Http(a.base)
    address = email()
    alice.signup(address)
    on_b = Http(b.base)
    on_b.http.cookies.update(alice.http.cookies)
    assert on_b.request("GET", "/api/v1/auth/me").status_code == 200
    # a second session (log in on B), then change the password from the first one on A
    other = Http(b.base)
    r = other.http.post("/api/v1/auth/login", json={"email": address,
                                                     "password": "correct horse battery staple"})
    assert r.status_code == 200
    assert other.request("GET", "/api/v1/auth/me").status_code == 200
    r = alice.request("POST", "/api/v1/auth/password",
                      json={"current_password": "correct horse battery staple",
                            "new_password": "another long password 42"})
    assert r.status_code == 204, r.text
    assert other.request("GET", "/api/v1/auth/me").status_code == 401  # ended, on the other worker
    assert alice.request("GET", "/api/v1/auth/me").status_code == 200
    # log out on B ends the session for A too
    on_b = Http(b.base)
    on_b.http.cookies.update(alice.http.cookies)
    on_b.csrf = alice.request("GET", "/api/v1/auth/me").json()["csrf_token"]
    sid = alice.http.cookies["waymark_session"]
    assert redis_server.client().exists(f"wm:sessions:{sid}") == 1
    assert on_b.request("POST", "/api/v1/auth/logout").status_code == 204
    assert redis_server.client().exists(f"wm:sessions:{sid}") == 0  # deleted, not just the cookie
    assert alice.request("GET", "/api/v1/auth/me").status_code == 401


def test_sessions_survive_an_app_restart(apps: list[AppProcess]) -> None:
    a, _ = apps
    alice = Http(a.base)
    alice.signup(email())
    a.stop()
    a.start()
    assert alice.request("GET", "/api/v1/auth/me").status_code == 200


def test_rate_limit_is_shared_by_both_processes(apps: list[AppProcess],
                                                redis_server: RedisServer) -> None:
    import httpx

    # Earlier tests in this module logged in from this address within the same minute.
    client = redis_server.client()
    for key in client.scan_iter("*rl:login:*"):
        client.delete(key)
    codes = []
    for i in range(7):
        app = apps[i % 2]
        r = httpx.post(app.base + "/api/v1/auth/login",
                       json={"email": "nobody@example.com", "password": "wrong password!"})
        codes.append(r.status_code)
        if r.status_code == 429:
            limited = r
    assert codes == [401] * 5 + [429, 429], (codes, apps[0].log_tail()[-1500:],
                                             apps[1].log_tail()[-1500:])
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Limit"] == "5" and limited.headers["RateLimit-Remaining"] == "0"
    assert limited.json()["error"]["code"] == "rate_limited"


def test_no_stale_read_after_a_write(apps: list[AppProcess]) -> None:
    import httpx

    a, b = apps
    alice, map_id, layer = setup_map(a)
    data = f"{b.base}/api/v1/maps/{map_id}/layers/{layer}/data"
    meta = f"{b.base}/api/v1/maps/{map_id}"
    for i in range(5):
        assert len(httpx.get(data).json()["features"]) == i  # B caches each version it serves
        httpx.get(meta)
        r = alice.request("POST", f"/api/v1/maps/{map_id}/layers/{layer}/features",
                          json={"geometry": POINT})
        assert r.status_code == 201
        # the very next read, on the other process, sees the edit
        assert len(httpx.get(data).json()["features"]) == i + 1
        body = httpx.get(meta).json()
        assert body["layers"][0]["version"] == int(r.headers["X-Layer-Version"])
    assert alice.request("PATCH", f"/api/v1/maps/{map_id}", json={"title": "Renamed"}).status_code == 200
    assert httpx.get(meta).json()["title"] == "Renamed"


def test_private_data_never_served_from_a_shared_entry(apps: list[AppProcess],
                                                       redis_server: RedisServer) -> None:
    import httpx

    a, b = apps
    alice, map_id, layer = setup_map(a, "public")
    alice.request("POST", f"/api/v1/maps/{map_id}/layers/{layer}/features",
                  json={"geometry": POINT, "properties": {"secret": "s3cret"}})
    data = f"/api/v1/maps/{map_id}/layers/{layer}/data"
    # public: an anonymous read on B fills the shared cache (data and metadata)
    assert "s3cret" in httpx.get(b.base + data).text
    assert httpx.get(b.base + f"/api/v1/maps/{map_id}").status_code == 200
    sha_url = alice.request("GET", f"/api/v1/maps/{map_id}/layers/{layer}").json()["snapshot_url"]
    sha = sha_url.rsplit("/", 1)[1].removesuffix(".geojson")
    shared = redis_server.client()
    # the shared level holds the public bytes (written after the response)
    wait_until(lambda: shared.exists(f"wm:c:{sha}") == 1, "snapshot bytes in Redis")
    wait_until(lambda: any(shared.scan_iter(f"wm:c:map:{map_id}:v*")), "map entry in Redis")
    # the owner makes it private: nobody else gets the cached bytes, on either process
    assert alice.request("PATCH", f"/api/v1/maps/{map_id}",
                         json={"visibility": "private"}).status_code == 200
    outsider = Http(b.base)
    outsider.signup(email("eve"))
    for base in (a.base, b.base):
        for url in (data, f"/api/v1/maps/{map_id}", sha_url):
            r = httpx.get(base + url)
            assert r.status_code == 404 and "s3cret" not in r.text, (base, url)
    r = outsider.request("GET", data)
    assert r.status_code == 404 and "s3cret" not in r.text
    # the owner still reads it
    assert "s3cret" in alice.request("GET", data).text


def test_reconnect_with_sequence_inside_and_outside_the_window(apps: list[AppProcess]) -> None:
    a, b = apps
    alice, map_id, layer = setup_map(a)
    path = f"/api/v1/maps/{map_id}/ws"
    for _ in range(3):
        alice.request("POST", f"/api/v1/maps/{map_id}/layers/{layer}/features",
                      json={"geometry": POINT})
    published_up_to(b, path, 3)
    with ws_connect(b, path + "?since=1") as ws:  # missed 2 and 3 (window: 5 events)
        hello = recv_until(ws, "hello")
        assert hello["seq"] == 3 and hello["replay"] == 2
        assert [recv_until(ws, "edit")["seq"] for _ in range(2)] == [2, 3]
    for _ in range(5):
        alice.request("POST", f"/api/v1/maps/{map_id}/layers/{layer}/features",
                      json={"geometry": POINT})
    published_up_to(a, path, 8)
    with ws_connect(a, path + "?since=2") as ws:  # 3 has left the window
        hello = recv_until(ws, "hello")
        assert hello["seq"] == 8 and hello["replay"] is None
        assert recv_until(ws, "resync")["reason"] == "window"
    with ws_connect(a, path + "?since=8") as ws:  # up to date: nothing to replay
        assert recv_until(ws, "hello")["replay"] == 0


def test_presence_is_shared_and_expires_on_its_own(apps: list[AppProcess],
                                                   redis_server: RedisServer) -> None:
    from waymark.backends.redis.hub import RedisHub
    from waymark.backends.redis.presence import RedisPresence

    a, b = apps
    alice, map_id, _ = setup_map(a)

    async def ghost() -> None:  # what a process that then died left behind: never refreshed
        hub = RedisHub(redis_server.url)
        try:
            await RedisPresence(hub, ttl=3).touch(map_id, "ghost", {
                "user_id": 10_000, "name": "ghost", "role": "viewer", "state": "viewing"})
        finally:
            await hub.close()

    asyncio.run(ghost())
    with ws_connect(b, f"/api/v1/maps/{map_id}/ws", cookie=alice.cookie()) as editor, \
            ws_connect(a, f"/api/v1/maps/{map_id}/ws") as viewer:
        name = alice.request("GET", "/api/v1/auth/me").json()["display_name"]
        recv_until(editor, "hello")
        hello = recv_until(viewer, "hello")
        assert "ghost" in [u["name"] for u in hello["presence"]["users"]]
        # alice (on B) starts editing: the viewer on A sees it
        editor.send(json.dumps({"type": "presence", "state": "editing"}))
        deadline = time.monotonic() + 15
        while True:
            msg = recv_until(viewer, "presence", timeout=max(0.1, deadline - time.monotonic()))
            states = {u["name"]: u["state"] for u in msg["users"]}
            if "ghost" not in states and states.get(name) == "editing":
                break  # the ghost expired (pushed by the heartbeat) while alice stayed
        assert msg["anonymous"] == 1 and states == {name: "editing"}


def test_live_positions_through_redis(apps: list[AppProcess]) -> None:
    import httpx

    a, b = apps
    alice, map_id, layer = setup_map(a)
    tokens = {scope: alice.request("POST", "/api/v1/tokens", json={
        "name": scope, "scope": scope}).json()["token"] for scope in ("write", "read")}
    live = f"/api/v1/maps/{map_id}/live/{layer}"
    auth = {"Authorization": f"Bearer {tokens['write']}"}
    with ws_connect(b, f"/api/v1/maps/{map_id}/ws", token=tokens["read"]) as ws:
        hello = recv_until(ws, "hello")  # a token authenticates the websocket too
        assert hello["role"] == "owner" and hello["can_edit"] is False  # read scope: viewer
        r = httpx.post(a.base + live + "/positions", headers=auth, json={"positions": [
            {"device": "bus-1", "lat": 55.95, "lon": -3.19},
            {"device": "bus-2", "lat": 55.90, "lon": -3.10, "ts": "2026-01-01T10:00:00Z"}]})
        assert r.status_code == 202, r.text
        assert [p["device"] for p in recv_until(ws, "live")["positions"]] == ["bus-1", "bus-2"]
        for i in range(3):  # the marker moves
            r = httpx.post(a.base + live + "/positions", headers=auth,
                           json={"device": "bus-1", "lat": 55.96 + i / 100, "lon": -3.19})
            assert r.status_code == 202
            assert recv_until(ws, "live")["positions"][0]["lat"] == 55.96 + i / 100
    r = httpx.post(a.base + live + "/positions", json={"device": "x", "lat": 1, "lon": 1},
                   headers={"Authorization": f"Bearer {tokens['read']}"})
    assert r.status_code == 403  # a read token cannot feed a live layer
    devices = {d["device"]: d for d in httpx.get(b.base + live).json()["devices"]}  # kept in Redis
    assert devices["bus-1"]["lat"] == 55.96 + 2 / 100 and len(devices["bus-1"]["track"]) == 4
    assert len(devices["bus-2"]["track"]) == 1
    # history reaches the database (batched by a background writer, flushed every second)
    db_path = a.env["WAYMARK_DATABASE_URL"].removeprefix("sqlite:///")
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(db_path) as conn:
            rows = conn.execute("SELECT device, COUNT(*) FROM live_positions p JOIN layers l"
                                " ON l.id = p.layer_id WHERE l.public_id = ? GROUP BY device"
                                " ORDER BY device", (layer,)).fetchall()
        if rows == [("bus-1", 4), ("bus-2", 1)] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert rows == [("bus-1", 4), ("bus-2", 1)]
    # WAYMARK_LIVE_TTL_SECONDS=4 of silence: the devices expire on their own
    wait_until(lambda: httpx.get(a.base + live).json()["devices"] == [], "live devices expired")


def test_pubsub_break_is_caught_up_from_the_stream(apps: list[AppProcess],
                                                    redis_server: RedisServer) -> None:
    a, b = apps
    alice, map_id, layer = setup_map(a)
    features = f"/api/v1/maps/{map_id}/layers/{layer}/features"
    with ws_connect(b, f"/api/v1/maps/{map_id}/ws") as ws:
        assert recv_until(ws, "hello")["seq"] == 0
        # drop B's pub/sub connection (as a fail-over does) and keep it from subscribing again
        # until A has published four edits: they can only reach B's client from the stream
        admin = redis_server.client()
        admin.execute_command("ACL", "SETUSER", "default", "-subscribe", "-psubscribe")
        try:
            assert admin.client_kill_filter(_type="pubsub") >= 1
            ids = [alice.request("POST", features, json={"geometry": POINT}).json()["id"]
                   for _ in range(4)]
            # published (in the stream) while B could not subscribe: nobody heard them live
            wait_until(lambda: int(admin.get(f"wm:seq:{map_id}") or 0) == 4, "4 edits published")
            assert admin.pubsub_channels() == []
        finally:
            admin.execute_command("ACL", "SETUSER", "default", "+@all")
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + 15
        while len(got) < 4:
            msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            assert msg["type"] != "resync", msg  # nothing was lost: no refetch needed
            if msg["type"] == "edit":
                got.append(msg)
        # every edit arrives once, in order, numbered: caught up from the stream
        assert [m["seq"] for m in got] == [1, 2, 3, 4]
        assert [m["feature"]["id"] for m in got] == ids


def test_redis_outage_degrades_and_recovers(apps: list[AppProcess],
                                            redis_server: RedisServer) -> None:
    import httpx

    a, b = apps
    alice, map_id, layer = setup_map(a)
    token = alice.request("POST", "/api/v1/tokens",
                          json={"name": "w", "scope": "write"}).json()["token"]
    writer = Http(a.base)
    writer.token = token
    features = f"/api/v1/maps/{map_id}/layers/{layer}/features"
    reads = [f"/api/v1/maps/{map_id}", f"/api/v1/maps/{map_id}/layers/{layer}/data", features,
             "/api/v1/maps"]
    with ws_connect(b, f"/api/v1/maps/{map_id}/ws") as ws:
        recv_until(ws, "hello")
        redis_server.stop()
        statuses = []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:  # reads and writes on both processes
            for app in (a, b):
                for url in reads:
                    statuses.append(httpx.get(app.base + url, timeout=10).status_code)
            r = writer.request("POST", features, json={"geometry": POINT})
            statuses.append(r.status_code)
            statuses.append(httpx.post(b.base + "/api/v1/auth/login", json={
                "email": "x@example.com", "password": "wrong password!"}).status_code)
        assert statuses and all(s < 500 for s in statuses), sorted(set(statuses))
        assert set(statuses) <= {200, 201, 401}
        assert recv_until(ws, "status")["state"] == "degraded"
        ready = httpx.get(a.base + "/readyz").json()
        assert ready["status"] == "degraded" and ready["checks"]["redis"]["ok"] is False
        assert httpx.get(a.base + "/readyz").status_code == 200
        assert "failing open" in a.log_tail() + b.log_tail()
        redis_server.start()  # same port, empty (no persistence)
        status = recv_until(ws, "status", timeout=15)
        assert status["state"] == "ok"
        # A's edits during the outage reached only A's clients: once A is back it publishes a
        # numbered map.reload, which tells this client (on B) to refetch
        reload = recv_until(ws, "edit", timeout=15)
        assert reload["op"] == "map.reload" and reload["reason"] == "redis_recovered"
        assert isinstance(reload["seq"], int)
        deadline = time.monotonic() + 15  # A notices on its own too (probe with back-off)
        while httpx.get(a.base + "/readyz").json()["status"] != "ready":
            assert time.monotonic() < deadline, "process A did not recover"
            time.sleep(0.2)
        r = writer.request("POST", features, json={"geometry": POINT})
        assert r.status_code == 201
        edit = recv_until(ws, "edit", timeout=10)
        assert edit["feature"]["id"] == r.json()["id"] and edit["seq"] is not None
    assert httpx.get(a.base + "/readyz").json()["status"] == "ready"
