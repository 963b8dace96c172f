"""Each rule in one place (issue 17 item 1): an edit made over HTTP, in a batch or over the
websocket goes through feature_write.apply_feature_edit and leaves the same history row and
the same version bumps; the published-read fast path and the routes agree on who may see a
map, for every visibility."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.api.test_published_reads import _call, _fast_path
from tests.api.test_snapshots import NO_GZIP, _publish, _setup
from tests.conftest import ApiClient
from waymark.api.published_reads import resolve_data, resolve_snapshot
from waymark.maps.access import VISIBILITIES, anyone_may_view

P1 = {"type": "Point", "coordinates": [1.0, 2.0]}
P2 = {"type": "Point", "coordinates": [3.0, 4.0]}


def _until(ws: Any, kind: str) -> dict[str, Any]:
    for _ in range(20):
        msg = ws.receive_json()
        if msg["type"] == kind:
            return msg
    raise AssertionError(f"no {kind} message")


class Entry:
    """One way of sending an edit: "http" (one request), "batch" or "ws" (a socket frame)."""

    def __init__(self, alice: ApiClient, base: str, layer: str, ws: Any) -> None:
        self.alice, self.base, self.layer, self.ws = alice, base, layer, ws
        self.features = f"{base}/layers/{layer}/features"

    def send(self, how: str, op: str, fid: str, *, version: int | None = None,
             geometry: Any = None, properties: Any = None) -> dict[str, Any] | None:
        """The edit; None when it went through, else the error object."""
        body = {k: v for k, v in (("geometry", geometry), ("properties", properties))
                if v is not None}
        if how == "http":
            headers = {"If-Match": f'"{version}"'} if version is not None else {}
            r = {"create": lambda: self.alice.post(self.features, json={"id": fid, **body}),
                 "update": lambda: self.alice.patch(f"{self.features}/{fid}", json=body,
                                                    headers=headers),
                 "delete": lambda: self.alice.delete(f"{self.features}/{fid}",
                                                     headers=headers)}[op]()
            return None if r.status_code < 300 else r.json()["error"]
        if how == "batch":
            operation = {"op": "add" if op == "create" else op, "id": fid, **body}
            if version is not None:
                operation["version"] = version
            r = self.alice.post(f"{self.base}/layers/{self.layer}/batch",
                                json={"operations": [operation]})
            return None if r.status_code == 200 else r.json()["error"]
        frame = {"type": "edit", "ref": fid, "layer": self.layer, "op": op, "id": fid, **body}
        if version is not None:
            frame["version"] = version
        self.ws.send_json(frame)
        reply = self.ws.receive_json()
        while reply["type"] not in ("ack", "error"):
            reply = self.ws.receive_json()
        return None if reply["type"] == "ack" else reply["error"]

    def versions(self) -> tuple[int, int]:
        """(map version, layer version)."""
        layer = self.alice.get(f"{self.base}/layers/{self.layer}").json()
        return self.alice.get(self.base).json()["version"], layer["version"]

    def newest_change(self) -> dict[str, Any]:
        return self.alice.get(f"{self.base}/layers/{self.layer}/history?limit=1").json()[0]


def test_http_batch_and_websocket_edits_leave_the_same_history_and_bumps(
        app: Litestar, alice: ApiClient) -> None:
    m = alice.create_map(visibility="private")
    base, layer = f"/api/v1/maps/{m['id']}", m["layers"][0]["id"]
    ids = {how: f"00000000-0000-4000-8000-00000000000{i}"
           for i, how in enumerate(("http", "batch", "ws"), 1)}
    alice_ref = {"id": alice.get("/api/v1/auth/me").json()["id"], "display_name": "Alice"}
    # the socket shares alice's session cookie (same origin, as in the browser)
    with alice.client.websocket_connect(base + "/ws") as ws:
        assert _until(ws, "hello")["can_edit"]
        entry = Entry(alice, base, layer, ws)
        for op, kwargs in (("create", {"geometry": P1, "properties": {"name": "a"}}),
                           ("update", {"geometry": P2, "properties": {"name": "b"}, "version": 1}),
                           ("delete", {"version": 2})):
            rows = {}
            for how, fid in ids.items():
                before = entry.versions()
                assert entry.send(how, op, fid, **kwargs) is None, (how, op)
                after = entry.versions()
                assert after == (before[0] + 1, before[1] + 1), (how, op)  # one bump each
                row = entry.newest_change()
                assert row["feature_id"] == fid and row["layer_version"] == after[1]
                assert row["user"] == alice_ref
                rows[how] = {"op": row["op"], "before": row["before"], "after": row["after"]}
                for state in (row["before"], row["after"]):
                    if state:  # created at different layer versions: the one difference
                        assert state.pop("created_version") > 0
            assert rows["http"] == rows["batch"] == rows["ws"], op
            assert rows["http"]["op"] == f"feature.{op}"
        assert alice.get(base + f"/layers/{layer}").json()["feature_count"] == 0
        # a stale version is refused the same way by all three, and changes nothing
        for how, fid in ids.items():
            assert entry.send(how, "create", fid, geometry=P1) is None
        for how, fid in ids.items():
            before, history = entry.versions(), entry.newest_change()
            error = entry.send(how, "update", fid, properties={"x": 1}, version=7)
            assert error is not None and error["code"] == "version_mismatch", how
            assert error["details"]["current"]["version"] == 1, how
            assert error["details"]["updated_by"]["id"] == alice_ref["id"], how
            assert entry.versions() == before and entry.newest_change() == history, how


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_fast_path_resolver_and_routes_agree_on_visibility(
        app: Litestar, alice: ApiClient, visibility: str) -> None:
    s = _setup(alice, visibility, 1)
    sha, url = _publish(alice, s)  # the owner's read also fills this process's cache
    open_to_all = anyone_may_view(visibility)
    svc = app.state.services
    # the resolver the fast path and the routes share
    snapshot = resolve_snapshot(svc.db, s["map"], s["layer"], sha)
    data = resolve_data(svc.db, s["map"], s["layer"])
    assert (snapshot is not None) is open_to_all and (data is not None) is open_to_all
    if open_to_all:
        assert snapshot.public is data.public is (visibility == "public")
    # the ASGI fast path answers only what anyone may see (the bytes are cached either way)
    fast = _fast_path(app)
    for path in (url, s["base"] + "/data"):
        assert _call(fast, path)["fell_through"] is not open_to_all, (visibility, path)
    # the routes, for a caller without a session (a client that never signed in)
    with TestClient(app) as tc:
        svc.cache.lru.clear()  # not cached: the fast path falls through to the routes
        for path in (url, s["base"] + "/data", s["base"], f"/api/v1/maps/{s['map']}"):
            r = tc.get(path, headers=NO_GZIP)
            assert r.status_code == (200 if open_to_all else 404), (visibility, path, r.text)
