"""Real time on the embedded backends (no Redis): one process works fully."""

from __future__ import annotations

import time
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import ApiClient, make_settings
from waymark.app import create_app

POINT = {"type": "Point", "coordinates": [-3.19, 55.95]}


@pytest.fixture
def rt_app(tmp_path, sqlite_url):  # type: ignore[no-untyped-def]
    app = create_app(make_settings(tmp_path, sqlite_url, realtime_window=3,
                                   live_flush_seconds=1))
    yield app
    app.state.services.db.dispose()


def _client(app) -> tuple[TestClient, ApiClient]:  # type: ignore[no-untyped-def]
    tc = TestClient(app)
    tc.__enter__()
    return tc, ApiClient(tc)


def _until(ws, kind: str, limit: int = 20) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    for _ in range(limit):
        msg = ws.receive_json()
        if msg["type"] == kind:
            return msg
    raise AssertionError(f"no {kind} message")


def test_http_edit_reaches_socket_and_socket_edit_is_persisted(rt_app) -> None:  # type: ignore[no-untyped-def]
    tc, alice = _client(rt_app)
    alice.signup("alice@example.com", name="Alice")
    m = alice.create_map(visibility="public")
    layer = m["layers"][0]["id"]
    base = f"/api/v1/maps/{m['id']}"
    with tc.websocket_connect(base + "/ws") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["can_edit"] and hello["seq"] == 0
        assert hello["presence"]["users"][0]["name"] == "Alice"
        r = alice.post(f"{base}/layers/{layer}/features", json={"geometry": POINT})
        assert r.status_code == 201
        edit = _until(ws, "edit")
        assert edit["seq"] == 1 and edit["op"] == "feature.create"
        assert edit["feature"]["id"] == r.json()["id"] and edit["by"]["name"] == "Alice"
        ws.send_json({"type": "edit", "ref": "c1", "layer": layer, "op": "update",
                      "id": r.json()["id"], "properties": {"name": "via ws"}, "version": 1})
        ack = _until(ws, "ack")
        assert ack["ref"] == "c1" and ack["feature"]["version"] == 2
        assert _until(ws, "edit")["seq"] == 2
        ws.send_json({"type": "edit", "ref": "c2", "layer": layer, "op": "update",
                      "id": r.json()["id"], "properties": {}, "version": 1})
        err = _until(ws, "error")
        assert err["ref"] == "c2" and err["error"]["code"] == "version_mismatch"
    f = alice.get(f"{base}/layers/{layer}/features/{r.json()['id']}").json()
    assert f["properties"] == {"name": "via ws"}
    tc.__exit__(None, None, None)


def test_viewers_receive_but_cannot_edit(rt_app) -> None:  # type: ignore[no-untyped-def]
    tc, alice = _client(rt_app)
    alice.signup("alice@example.com")
    m = alice.create_map(visibility="public")
    layer = m["layers"][0]["id"]
    tc2 = TestClient(rt_app)
    with tc2, tc2.websocket_connect(f"/api/v1/maps/{m['id']}/ws") as ws:
        hello = ws.receive_json()
        assert hello["can_edit"] is False and hello["user"] is None
        ws.send_json({"type": "edit", "ref": "x", "layer": layer, "op": "create", "geometry": POINT})
        assert _until(ws, "error")["error"]["code"] == "editor_required"
    assert alice.get(f"/api/v1/maps/{m['id']}/layers/{layer}").json()["feature_count"] == 0
    tc.__exit__(None, None, None)


def test_websocket_messages_are_rate_limited(tmp_path, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(tmp_path, sqlite_url, rate_limits="ws_message=3/minute"))
    try:
        with TestClient(app) as tc:
            m = ApiClient(tc)
            m.signup("alice@example.com")
            map_id = m.create_map(visibility="public")["id"]
            with tc.websocket_connect(f"/api/v1/maps/{map_id}/ws") as ws:
                assert ws.receive_json()["type"] == "hello"
                replies = []
                for _ in range(4):
                    ws.send_json({"type": "ping"})
                    replies.append(_until(ws, "pong") if len(replies) < 3 else _until(ws, "error"))
                assert [r["type"] for r in replies] == ["pong"] * 3 + ["error"]
                assert replies[3]["error"]["code"] == "rate_limited"
                assert replies[3]["error"]["details"]["retry_after"] >= 1
    finally:
        app.state.services.db.dispose()


def test_private_map_socket_refused_and_cross_site_cookie_ignored(rt_app) -> None:  # type: ignore[no-untyped-def]
    tc, alice = _client(rt_app)
    alice.signup("alice@example.com")
    m = alice.create_map(visibility="private")
    with tc.websocket_connect(f"/api/v1/maps/{m['id']}/ws",
                              headers={"Origin": "https://evil.example"}) as ws:
        msg = ws.receive_json()
        assert msg["type"] == "error" and msg["error"]["code"] == "not_found"
    with tc.websocket_connect(f"/api/v1/maps/{m['id']}/ws") as ws:
        assert ws.receive_json()["type"] == "hello"
    tc.__exit__(None, None, None)


def test_reconnect_inside_and_outside_the_window(rt_app) -> None:  # type: ignore[no-untyped-def]
    tc, alice = _client(rt_app)
    alice.signup("alice@example.com")
    m = alice.create_map(visibility="public")
    base = f"/api/v1/maps/{m['id']}"
    layer = m["layers"][0]["id"]
    with tc.websocket_connect(base + "/ws") as ws:
        ws.receive_json()
        for i in range(3):
            alice.post(f"{base}/layers/{layer}/features", json={"geometry": POINT})
            assert _until(ws, "edit")["seq"] == i + 1
    with tc.websocket_connect(base + "/ws?since=1") as ws:  # missed 2 and 3: inside the window
        hello = ws.receive_json()
        assert hello["seq"] == 3 and hello["replay"] == 2
        assert [ws.receive_json()["seq"] for _ in range(2)] == [2, 3]
    for _ in range(3):  # the window is 3 events: seq 4-6 push 1-3 out
        alice.post(f"{base}/layers/{layer}/features", json={"geometry": POINT})
    time.sleep(0.2)
    with tc.websocket_connect(base + "/ws?since=2") as ws:
        hello = ws.receive_json()
        assert hello["seq"] == 6 and hello["replay"] is None
        assert ws.receive_json() == {"type": "resync", "reason": "window", "seq": 6}
    tc.__exit__(None, None, None)


def test_live_positions(rt_app) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from waymark.db.models import LivePosition

    tc, alice = _client(rt_app)
    alice.signup("alice@example.com")
    m = alice.create_map(visibility="public")
    layer = m["layers"][0]["id"]
    token = alice.post("/api/v1/tokens", json={"name": "tracker", "scope": "write"}).json()["token"]
    live = f"/api/v1/maps/{m['id']}/live/{layer}"
    anon = TestClient(rt_app)
    with anon, anon.websocket_connect(f"/api/v1/maps/{m['id']}/ws") as ws:
        ws.receive_json()
        r = anon.post(live + "/positions", json={"device": "bus-1", "lat": 1, "lon": 2})
        assert r.status_code == 401
        for i in range(3):
            r = anon.post(live + "/positions", headers={"Authorization": f"Bearer {token}"},
                          json={"device": "bus-1", "lat": 55.9 + i / 100, "lon": -3.2})
            assert r.status_code == 202, r.text
            msg = _until(ws, "live")
            assert msg["positions"][0]["lat"] == pytest.approx(55.9 + i / 100)
        bad = anon.post(live + "/positions", headers={"Authorization": f"Bearer {token}"},
                        json={"device": "bus-1", "lat": 95, "lon": 0})
        assert bad.status_code == 422
        devices = anon.get(live).json()["devices"]
        assert devices[0]["device"] == "bus-1" and len(devices[0]["track"]) == 3
    db = rt_app.state.services.db
    deadline = time.monotonic() + 5
    count = 0
    while time.monotonic() < deadline and count < 3:
        time.sleep(0.2)
        with db.read() as s:
            count = s.scalar(select(func.count()).select_from(LivePosition))
    assert count == 3  # written in a batch by the history writer, not per request
    assert rt_app.state.realtime.history.flushes <= 2
    tc.__exit__(None, None, None)
