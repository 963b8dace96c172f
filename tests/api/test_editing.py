"""Editing features: per-feature CRUD with optimistic concurrency, batch, history, revert.

Everything here runs on SQLite and on PostgreSQL (`db_clients`); the edit path
(`WITH_PGBOUNCER`) also through PgBouncer in transaction mode.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from tests.conftest import WITH_PGBOUNCER, ApiClient


def pt(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


class Layer:
    """URLs and small helpers around one layer of a fresh map."""

    def __init__(self, client: ApiClient, map_id: str, layer_id: str) -> None:
        self.c = client
        self.map_id = map_id
        self.url = f"/api/v1/maps/{map_id}/layers/{layer_id}"

    def feature_url(self, fid: str) -> str:
        return f"{self.url}/features/{fid}"

    def add(self, geometry: Any, properties: Any = None, client: ApiClient | None = None) -> dict:
        r = (client or self.c).post(self.url + "/features",
                                    json={"geometry": geometry, "properties": properties or {}})
        assert r.status_code == 201, r.text
        return r.json()

    def info(self) -> dict[str, Any]:
        r = self.c.get(self.url)
        assert r.status_code == 200, r.text
        return r.json()

    def state(self) -> dict[str, Any]:
        """The layer as edits change it: its info without the snapshot URL, which the
        background publisher sets whenever it gets to it (after edits made earlier)."""
        return {k: v for k, v in self.info().items() if k != "snapshot_url"}

    def features(self) -> dict[str, dict[str, Any]]:
        r = self.c.get(self.url + "/features")
        assert r.status_code == 200, r.text
        return {f["id"]: f for f in r.json()["features"]}

    def history(self, **params: Any) -> list[dict[str, Any]]:
        r = self.c.get(self.url + "/history", params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def batch(self, *ops: dict[str, Any], client: ApiClient | None = None):  # type: ignore[no-untyped-def]
        return (client or self.c).post(self.url + "/batch", json={"operations": list(ops)})

    def revert(self, version: int):  # type: ignore[no-untyped-def]
        return self.c.post(self.url + "/revert", json={"version": version})


def _error(r, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def owner(db_clients) -> ApiClient:  # type: ignore[no-untyped-def]
    c = db_clients()
    c.signup("owner@example.com", name="Olive Owner")
    return c


@pytest.fixture
def layer(owner: ApiClient) -> Layer:
    m = owner.create_map("Editing")
    return Layer(owner, m["id"], m["layers"][0]["id"])


@pytest.fixture
def editor(db_clients, owner: ApiClient, layer: Layer) -> ApiClient:  # type: ignore[no-untyped-def]
    c = db_clients()
    c.signup("editor@example.com", name="Eddie Editor")
    r = owner.post(f"/api/v1/maps/{layer.map_id}/members",
                   json={"email": "editor@example.com", "role": "editor"})
    assert r.status_code == 201, r.text
    return c


# ---- one feature -----------------------------------------------------------------------
@WITH_PGBOUNCER
def test_feature_create_get_put_patch_delete(layer: Layer) -> None:
    c = layer.c
    start = layer.info()["version"]
    r = c.post(layer.url + "/features", json={"geometry": pt(10, 20), "properties": {"name": "a"}})
    assert r.status_code == 201, r.text
    f = r.json()
    fid = f["id"]
    assert uuid.UUID(fid) and f["type"] == "Feature" and f["version"] == 1
    assert f["geometry"] == pt(10, 20) and f["properties"] == {"name": "a"}
    assert r.headers["etag"] == '"1"' and r.headers["x-layer-version"] == str(start + 1)

    r = c.get(layer.feature_url(fid))
    assert r.status_code == 200 and r.json() == f and r.headers["etag"] == '"1"'
    r = c.get(layer.feature_url(fid), headers={"If-None-Match": '"1"'})
    assert r.status_code == 304 and r.headers["etag"] == '"1"'

    # PUT replaces geometry and properties (missing properties become {})
    r = c.put(layer.feature_url(fid), json={"geometry": pt(11, 21), "properties": {"kind": "x"}},
              headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.headers["etag"] == '"2"'
    assert r.json()["properties"] == {"kind": "x"} and r.json()["geometry"] == pt(11, 21)

    # PATCH changes only the members given
    r = c.patch(layer.feature_url(fid), json={"properties": {"kind": "y"}}, headers={"If-Match": "2"})
    assert r.status_code == 200 and r.json()["version"] == 3
    assert r.json()["geometry"] == pt(11, 21) and r.json()["properties"] == {"kind": "y"}
    r = c.patch(layer.feature_url(fid), json={"geometry": pt(12, 22), "version": 3})  # body version
    assert r.status_code == 200 and r.json()["properties"] == {"kind": "y"}
    assert r.headers["etag"] == '"4"' and c.get(layer.feature_url(fid)).json()["geometry"] == pt(12, 22)

    r = c.delete(layer.feature_url(fid), headers={"If-Match": 'W/"4"'})
    assert r.status_code == 204, r.text
    _error(c.get(layer.feature_url(fid)), 404, "not_found")
    _error(c.patch(layer.feature_url(fid), json={"properties": {}}), 404, "not_found")
    info = layer.info()
    assert info["version"] == start + 5 and info["feature_count"] == 0 and info["bbox"] is None


def test_client_chosen_id_and_duplicates(layer: Layer) -> None:
    fid = str(uuid.uuid4())
    r = layer.c.post(layer.url + "/features", json={"id": fid, "geometry": pt(1, 1)})
    assert r.status_code == 201 and r.json()["id"] == fid
    _error(layer.c.post(layer.url + "/features", json={"id": fid, "geometry": pt(1, 1)}), 409,
           "feature_exists")
    err = _error(layer.c.post(layer.url + "/features", json={"id": "nope", "geometry": pt(1, 1)}), 422)
    assert err["details"]["field"] == "id"
    _error(layer.c.get(layer.feature_url("not-a-uuid")), 422)
    assert layer.info()["feature_count"] == 1


@WITH_PGBOUNCER
def test_stale_if_match_is_412_with_the_current_feature(layer: Layer) -> None:
    f = layer.add(pt(1, 2), {"n": 1})
    url = layer.feature_url(f["id"])
    current = layer.c.patch(url, json={"properties": {"n": 2}}, headers={"If-Match": '"1"'}).json()
    before = layer.info()
    for method, body in (("PATCH", {"properties": {"n": 99}}),
                         ("PUT", {"geometry": pt(5, 5), "properties": {"n": 99}}),
                         ("DELETE", None)):
        r = layer.c.request(method, url, json=body, headers={"If-Match": '"1"'})
        err = _error(r, 412, "version_mismatch")
        assert err["details"]["current"] == current
        assert r.headers["etag"] == '"2"'
    # body "version" is checked the same way
    err = _error(layer.c.patch(url, json={"properties": {"n": 99}, "version": 1}), 412)
    assert err["details"]["current"]["properties"] == {"n": 2}
    _error(layer.c.patch(url, json={"properties": {}}, headers={"If-Match": "banana"}), 412,
           "bad_if_match")
    assert layer.c.get(url).json() == current
    assert layer.info()["version"] == before["version"]


@WITH_PGBOUNCER
def test_edit_conflict_between_two_clients(layer: Layer, editor: ApiClient) -> None:
    """Both read v1; A saves; B's save is refused with A's state; B merges, retries, wins."""
    f = layer.add(pt(3, 4), {"name": "Old name", "note": ""})
    url = layer.feature_url(f["id"])
    a, b = layer.c, editor
    seen_a, seen_b = a.get(url), b.get(url)
    assert seen_a.headers["etag"] == seen_b.headers["etag"] == '"1"'

    r = a.patch(url, json={"properties": {**seen_a.json()["properties"], "name": "A's name"}},
                headers={"If-Match": seen_a.headers["etag"]})
    assert r.status_code == 200 and r.json()["version"] == 2
    a_state = r.json()

    r = b.patch(url, json={"properties": {**seen_b.json()["properties"], "note": "B's note"}},
                headers={"If-Match": seen_b.headers["etag"]})
    err = _error(r, 412, "version_mismatch")
    assert err["details"]["current"] == a_state  # B sees exactly what A saved

    theirs = err["details"]["current"]
    r = b.patch(url, json={"properties": {**theirs["properties"], "note": "B's note"}},
                headers={"If-Match": f'"{theirs["version"]}"'})
    assert r.status_code == 200 and r.json()["version"] == 3
    final = a.get(url).json()
    assert final["properties"] == {"name": "A's name", "note": "B's note"}  # nothing lost
    updates = [h for h in layer.history() if h["op"] == "feature.update"]
    assert [h["user"]["display_name"] for h in updates] == ["Eddie Editor", "Olive Owner"]


# ---- validation ------------------------------------------------------------------------
@pytest.mark.parametrize("geometry", [
    {"type": "Circle", "coordinates": [1, 2]},
    {"type": "Point"},
    {"type": "Point", "coordinates": [1]},
    {"type": "Point", "coordinates": ["1", "2"]},
    {"type": "LineString", "coordinates": [[1, 2]]},
    {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},  # not closed
    {"type": "Polygon", "coordinates": []},
    "POINT (1 2)",
    [1, 2],
])
def test_invalid_geometry_is_422_naming_the_field(layer: Layer, geometry: Any) -> None:
    before = layer.state()
    err = _error(layer.c.post(layer.url + "/features", json={"geometry": geometry}), 422, "invalid")
    assert err["details"]["field"] == "geometry"
    assert layer.state() == before


@pytest.mark.parametrize("coords", [[181, 0], [-180.5, 0], [0, 91], [0, -90.5], [1e308, 0]])
def test_out_of_range_coordinates(layer: Layer, coords: list[float]) -> None:
    err = _error(layer.c.post(layer.url + "/features",
                              json={"geometry": {"type": "Point", "coordinates": coords}}), 422)
    assert err["details"]["field"] == "geometry"
    f = layer.add(pt(0, 0))
    err = _error(layer.c.patch(layer.feature_url(f["id"]),
                               json={"geometry": {"type": "LineString",
                                                  "coordinates": [[0, 0], coords]}}), 422)
    assert err["details"]["field"] == "geometry"
    assert layer.c.get(layer.feature_url(f["id"])).json()["version"] == 1


def test_edge_of_range_coordinates_are_accepted(layer: Layer) -> None:
    for coords in ([180, 90], [-180, -90], [0, 0, 1200.5]):
        layer.add({"type": "Point", "coordinates": coords})
    assert layer.info()["bbox"] == [-180, -90, 180, 90]


@pytest.mark.parametrize("properties", [["a", "b"], "name=x", 3, True])
def test_properties_must_be_an_object(layer: Layer, properties: Any) -> None:
    err = _error(layer.c.post(layer.url + "/features",
                              json={"geometry": pt(1, 1), "properties": properties}), 422)
    assert err["details"]["field"] == "properties"
    f = layer.add(pt(1, 1), {"keep": True})
    err = _error(layer.c.patch(layer.feature_url(f["id"]), json={"properties": properties}), 422)
    assert err["details"]["field"] == "properties"
    assert layer.c.get(layer.feature_url(f["id"])).json()["properties"] == {"keep": True}


def test_body_must_be_an_object(layer: Layer) -> None:
    _error(layer.c.post(layer.url + "/features", json=[pt(1, 1)]), 422, "invalid_body")


def test_feature_without_geometry(layer: Layer) -> None:
    f = layer.add(None, {"name": "somewhere"})
    assert f["geometry"] is None
    info = layer.info()
    assert info["feature_count"] == 1 and info["bbox"] is None


# ---- batch ----------------------------------------------------------------------------
@WITH_PGBOUNCER
def test_batch_applies_all_as_one_version(layer: Layer) -> None:
    keep = layer.add(pt(1, 1), {"n": 1})
    gone = layer.add(pt(2, 2), {"n": 2})
    v0 = layer.info()["version"]
    new_id = str(uuid.uuid4())
    r = layer.batch({"op": "add", "id": new_id, "geometry": pt(3, 3), "properties": {"n": 3}},
                    {"op": "update", "id": keep["id"], "version": 1, "properties": {"n": 10}},
                    {"op": "delete", "id": gone["id"], "version": 1},
                    {"op": "add", "geometry": pt(4, 4)})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["layer_version"] == v0 + 1
    res = out["results"]
    assert [x["op"] for x in res] == ["add", "update", "delete", "add"]
    assert res[0] == {"op": "add", "id": new_id, "version": 1}
    assert res[1] == {"op": "update", "id": keep["id"], "version": 2}
    assert res[2] == {"op": "delete", "id": gone["id"]}
    features = layer.features()
    assert set(features) == {keep["id"], new_id, res[3]["id"]}
    assert features[keep["id"]]["properties"] == {"n": 10}
    info = layer.info()
    assert info["version"] == v0 + 1 and info["feature_count"] == 3
    recent = layer.history(limit=4)
    assert {h["layer_version"] for h in recent} == {v0 + 1}  # one unit of undo


@WITH_PGBOUNCER
@pytest.mark.parametrize("bad_op, code", [
    ({"op": "update", "id": "FEATURE", "geometry": {"type": "Point", "coordinates": [500, 0]}},
     "invalid"),
    ({"op": "add", "geometry": pt(1, 1), "properties": []}, "invalid"),
    ({"op": "update", "id": str(uuid.uuid4()), "properties": {}}, "not_found"),
    ({"op": "move", "id": "FEATURE"}, "invalid"),
    ({"op": "delete"}, "invalid"),
    ({"op": "add", "id": "FEATURE", "geometry": pt(1, 1)}, "feature_exists"),
])
def test_batch_is_all_or_nothing(layer: Layer, bad_op: dict, code: str) -> None:
    f = layer.add(pt(1, 1), {"n": 1})
    layer.add(pt(2, 2), {"n": 2})
    before_info, before_features, before_history = layer.state(), layer.features(), layer.history()
    bad = {k: (f["id"] if v == "FEATURE" else v) for k, v in bad_op.items()}
    r = layer.batch({"op": "add", "geometry": pt(50, 50), "properties": {"new": True}},
                    {"op": "update", "id": f["id"], "properties": {"n": 100}},
                    bad,
                    {"op": "delete", "id": f["id"]})
    err = _error(r, {"not_found": 404, "feature_exists": 409}.get(code, 422), code)
    assert err["details"]["index"] == 2
    assert layer.state() == before_info  # same version, count and bbox
    assert layer.features() == before_features
    assert layer.history() == before_history


def test_batch_version_mismatch_names_the_index(layer: Layer) -> None:
    a = layer.add(pt(1, 1))
    b = layer.add(pt(2, 2))
    layer.c.patch(layer.feature_url(b["id"]), json={"properties": {"edited": True}})
    before = layer.features()
    r = layer.batch({"op": "update", "id": a["id"], "version": 1, "properties": {"x": 1}},
                    {"op": "update", "id": b["id"], "version": 1, "properties": {"x": 2}})
    err = _error(r, 412, "version_mismatch")
    assert err["details"]["index"] == 1 and err["details"]["id"] == b["id"]
    assert err["details"]["current"]["version"] == 2
    assert err["details"]["current"]["properties"] == {"edited": True}
    assert layer.features() == before


@pytest.mark.parametrize("body", [{}, {"operations": []}, {"operations": {"op": "add"}},
                                  {"operations": ["add"]},
                                  {"operations": [{"op": "update", "id": "x", "version": "1"}]}])
def test_batch_shape_errors(layer: Layer, body: dict) -> None:
    _error(layer.c.post(layer.url + "/batch", json=body), 422)


# ---- history --------------------------------------------------------------------------
@WITH_PGBOUNCER
def test_history_lists_who_when_what_newest_first(layer: Layer, editor: ApiClient) -> None:
    f = layer.add(pt(1, 1), {"n": 1})
    r = editor.patch(layer.feature_url(f["id"]), json={"properties": {"n": 2}})
    assert r.status_code == 200
    assert editor.delete(layer.feature_url(f["id"])).status_code == 204
    h = layer.history()
    assert [x["op"] for x in h[:3]] == ["feature.delete", "feature.update", "feature.create"]
    delete, update, create = h[:3]
    assert delete["layer_version"] > update["layer_version"] > create["layer_version"]
    assert [x["id"] for x in h] == sorted((x["id"] for x in h), reverse=True)
    assert {x["feature_id"] for x in h[:3]} == {f["id"]}
    assert create["user"]["display_name"] == "Olive Owner"
    assert update["user"]["display_name"] == delete["user"]["display_name"] == "Eddie Editor"
    assert create["before"] is None and create["after"]["properties"] == {"n": 1}
    assert update["before"]["properties"] == {"n": 1} and update["after"]["properties"] == {"n": 2}
    assert delete["before"]["properties"] == {"n": 2} and delete["after"] is None
    assert create["after"]["geometry"] == pt(1, 1)
    assert all(x["at"] and x["at"].endswith("+00:00") for x in h)
    assert delete["at"] >= update["at"] >= create["at"]
    # paging: `before` is the id of the last change seen
    assert layer.history(limit=1) == h[:1]
    assert layer.history(limit=2, before=h[0]["id"]) == h[1:3]


def test_readers_see_history_but_cannot_revert(db_clients, layer: Layer) -> None:  # type: ignore[no-untyped-def]
    layer.c.patch(f"/api/v1/maps/{layer.map_id}", json={"visibility": "public"})
    layer.add(pt(1, 1))
    anon = db_clients()
    assert anon.get(layer.url + "/history").status_code == 200
    _error(anon.post(layer.url + "/revert", json={"version": 1}), 401)
    assert layer.info()["feature_count"] == 1


# ---- revert ---------------------------------------------------------------------------
@WITH_PGBOUNCER
def test_revert_restores_features_and_can_be_reverted(layer: Layer) -> None:
    a = layer.add(pt(1, 1), {"name": "A"})
    b = layer.add(pt(2, 2), {"name": "B"})
    v_target = layer.info()["version"]
    target = layer.features()
    layer.c.patch(layer.feature_url(a["id"]), json={"properties": {"name": "A2"},
                                                    "geometry": pt(1.5, 1.5)})
    assert layer.c.delete(layer.feature_url(b["id"])).status_code == 204
    c = layer.add(pt(120, 60), {"name": "C (far away)"})
    v_before_revert = layer.info()["version"]
    state_before_revert = layer.features()
    assert layer.info()["bbox"] == [1.5, 1.5, 120, 60]

    r = layer.revert(v_target)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == v_before_revert + 1  # a new version, not a rewind
    now = layer.features()
    assert set(now) == {a["id"], b["id"]}  # B is back, C is gone
    for fid in now:
        assert now[fid]["geometry"] == target[fid]["geometry"]
        assert now[fid]["properties"] == target[fid]["properties"]
    info = layer.info()
    assert info["feature_count"] == 2 and info["bbox"] == [1, 1, 2, 2]  # shrank without C
    assert layer.history(limit=1)[0]["op"] == "layer.revert"
    assert layer.history(limit=1)[0]["after"] == {"to_version": v_target}
    assert any(h["op"] == "feature.create" for h in layer.history()[:5])  # history is kept

    # revert the revert: back to how it was just before
    r = layer.revert(v_before_revert)
    assert r.status_code == 200 and r.json()["version"] == v_before_revert + 2
    again = layer.features()
    assert set(again) == set(state_before_revert) == {a["id"], c["id"]}
    for fid in again:
        assert again[fid]["geometry"] == state_before_revert[fid]["geometry"]
        assert again[fid]["properties"] == state_before_revert[fid]["properties"]
    info = layer.info()
    assert info["feature_count"] == 2 and info["bbox"] == [1.5, 1.5, 120, 60]
    # edits go on normally after reverts (versions in If-Match still work)
    cur = layer.c.get(layer.feature_url(a["id"]))
    r = layer.c.patch(layer.feature_url(a["id"]), json={"properties": {"name": "A3"}},
                      headers={"If-Match": cur.headers["etag"]})
    assert r.status_code == 200, r.text


def test_revert_to_the_first_version_empties_the_layer(layer: Layer) -> None:
    layer.add(pt(1, 1))
    layer.batch({"op": "add", "geometry": pt(2, 2)}, {"op": "add", "geometry": pt(3, 3)})
    assert layer.revert(1).status_code == 200
    info = layer.info()
    assert info["feature_count"] == 0 and layer.features() == {} and info["bbox"] is None


def test_revert_restores_layer_name_and_style(layer: Layer) -> None:
    v = layer.info()["version"]
    original = layer.info()
    r = layer.c.patch(layer.url, json={"name": "Renamed", "style": {"color": "#ff0000"}})
    assert r.status_code == 200, r.text
    assert layer.revert(v).status_code == 200
    info = layer.info()
    assert info["name"] == original["name"] and info["style"] == original["style"]


@pytest.mark.parametrize("version", [0, -1, "1", None, 1.0, True, 10_000])
def test_revert_version_must_be_a_known_version(layer: Layer, version: Any) -> None:
    layer.add(pt(1, 1))
    before = layer.state()
    err = _error(layer.c.post(layer.url + "/revert", json={"version": version}), 422)
    assert err["details"]["field"] == "version"
    assert layer.state() == before


# ---- count and bbox --------------------------------------------------------------------
def test_count_and_bbox_follow_edits(layer: Layer) -> None:
    info = layer.info()
    assert info["feature_count"] == 0 and info["bbox"] is None
    a = layer.add(pt(0, 0))
    assert layer.info()["bbox"] == [0, 0, 0, 0]
    far = layer.add(pt(100, 50))
    line = layer.add({"type": "LineString", "coordinates": [[-10, -5], [5, 5]]})
    info = layer.info()
    assert info["feature_count"] == 3 and info["bbox"] == [-10, -5, 100, 50]
    # deleting the extreme feature shrinks the bbox
    assert layer.c.delete(layer.feature_url(far["id"])).status_code == 204
    info = layer.info()
    assert info["feature_count"] == 2 and info["bbox"] == [-10, -5, 5, 5]
    # moving the extreme feature inwards shrinks it too
    r = layer.c.patch(layer.feature_url(line["id"]),
                      json={"geometry": {"type": "LineString", "coordinates": [[-1, -1], [1, 1]]}})
    assert r.status_code == 200
    assert layer.info()["bbox"] == [-1, -1, 1, 1]
    # a batch delete of everything empties it
    r = layer.batch({"op": "delete", "id": a["id"]}, {"op": "delete", "id": line["id"]})
    assert r.status_code == 200, r.text
    info = layer.info()
    assert info["feature_count"] == 0 and info["bbox"] is None


@WITH_PGBOUNCER
def test_features_bbox_query_and_paging(layer: Layer) -> None:
    ids = [layer.add(pt(i, i))["id"] for i in range(5)]
    r = layer.c.get(layer.url + "/features", params={"bbox": "0.5,0.5,3.5,3.5"})
    assert [f["id"] for f in r.json()["features"]] == ids[1:4]
    page = layer.c.get(layer.url + "/features", params={"limit": 2}).json()
    assert [f["id"] for f in page["features"]] == ids[:2] and page["next"] == ids[1]
    page = layer.c.get(layer.url + "/features", params={"limit": 2, "after": page["next"]}).json()
    assert [f["id"] for f in page["features"]] == ids[2:4]
    _error(layer.c.get(layer.url + "/features", params={"bbox": "1,2,3"}), 422)


# ---- concurrency -----------------------------------------------------------------------
THREADS = 8
EDITS = 10


def _workers(db_clients, owner: ApiClient) -> list[ApiClient]:  # type: ignore[no-untyped-def]
    """THREADS clients, each its own TestClient (its own event loop thread), authenticated by
    a bearer token. Not cookies: Litestar's MemoryStore guards its dict with an anyio.Lock,
    and several TestClients are several event loops, which must not contend for one lock
    (in a server there is one loop per worker process)."""
    r = owner.post("/api/v1/tokens", json={"name": "workers", "scope": "write"})
    assert r.status_code == 201, r.text
    workers = []
    for _ in range(THREADS):
        c = db_clients()
        c.token = r.json()["token"]
        workers.append(c)
    return workers


@WITH_PGBOUNCER
def test_concurrent_edits_from_threads(db_clients, owner: ApiClient, layer: Layer) -> None:  # type: ignore[no-untyped-def]
    """8 clients × 10 sequential patches, each client on its own feature, all at once.

    Every edit must succeed and get a layer version of its own: the layer version rises by
    exactly the number of edits (no lost update of the layer row), counts stay right."""
    r = layer.batch(*({"op": "add", "geometry": pt(i, i), "properties": {"n": 0}}
                      for i in range(THREADS)))
    assert r.status_code == 200, r.text
    fids = [x["id"] for x in r.json()["results"]]
    v0 = layer.info()["version"]
    workers = _workers(db_clients, owner)
    failures: list[str] = []
    layer_versions: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def work(c: ApiClient, fid: str) -> None:
        url = layer.feature_url(fid)
        barrier.wait()
        for n in range(1, EDITS + 1):
            r = c.patch(url, json={"properties": {"n": n}}, headers={"If-Match": f'"{n}"'})
            with lock:
                if r.status_code != 200:
                    failures.append(f"{fid} edit {n}: {r.status_code} {r.text[:200]}")
                    return
                layer_versions.append(int(r.headers["x-layer-version"]))

    threads = [threading.Thread(target=work, args=(c, fid)) for c, fid in zip(workers, fids, strict=False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert not failures, failures
    total = THREADS * EDITS
    info = layer.info()
    assert info["version"] == v0 + total
    assert info["feature_count"] == THREADS
    assert sorted(layer_versions) == list(range(v0 + 1, v0 + total + 1))  # each edit its own
    features = layer.features()
    assert all(features[fid]["version"] == EDITS + 1 for fid in fids)
    assert all(features[fid]["properties"] == {"n": EDITS} for fid in fids)
    updates = [h for h in layer.history(limit=500) if h["op"] == "feature.update"]
    assert len(updates) == total
    assert len({h["layer_version"] for h in updates}) == total


@WITH_PGBOUNCER
def test_concurrent_adds_keep_the_count(db_clients, owner: ApiClient, layer: Layer) -> None:  # type: ignore[no-untyped-def]
    """Adds from many clients at once: the feature count and bbox are not lost updates."""
    workers = _workers(db_clients, owner)
    barrier = threading.Barrier(THREADS)
    statuses: list[int] = []

    def work(i: int, c: ApiClient) -> None:
        barrier.wait()
        for j in range(5):
            r = c.post(layer.url + "/features", json={"geometry": pt(i * 10 + j, j)})
            statuses.append(r.status_code)

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert statuses == [201] * (THREADS * 5)
    info = layer.info()
    assert info["feature_count"] == THREADS * 5 == len(layer.features())
    assert info["bbox"] == [0, 0, (THREADS - 1) * 10 + 4, 4]


def test_an_edit_behind_another_process_write_waits_without_stalling_the_server(clients, app,  # type: ignore[no-untyped-def]
                                                                               tmp_path):
    """Single-feature edits run on the event loop when the SQLite write lock is free. When
    another process holds it, the edit must wait for it in a worker thread and succeed, while
    the same event loop goes on answering other requests. The other process holds the lock
    until the test lets go: no timing assumption."""
    import multiprocessing

    from tests.servers import hold_write_gate
    from waymark.observability.request_observer import IN_FLIGHT

    c = clients()
    c.signup("locks@example.com")
    m = c.create_map("Locks")
    layer = Layer(c, m["id"], m["layers"][0]["id"])
    f = layer.add(pt(1, 2))
    gate = app.state.services.db.engine.url.database + "-writegate"
    marker = tmp_path / "released"
    ctx = multiprocessing.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=hold_write_gate, args=(gate, held, release, str(marker)))
    holder.start()
    try:
        assert held.wait(60)
        result: dict[str, Any] = {}

        def edit() -> None:
            r = c.patch(layer.feature_url(f["id"]), json={"properties": {"n": 1}},
                        headers={"If-Match": f'"{f["version"]}"'})
            result.update(status=r.status_code, body=r.json(), after_release=marker.exists())

        editing = threading.Thread(target=edit)
        editing.start()
        deadline = time.monotonic() + 60
        while IN_FLIGHT.count < 1:  # the edit has reached the app (and can only wait there)
            assert time.monotonic() < deadline and "status" not in result, result
            time.sleep(0.01)
        # same client, same app, same event loop: answered while the edit waits
        reads: dict[str, int] = {}
        reader = threading.Thread(target=lambda: reads.update(
            health=c.get("/healthz").status_code, layer=c.get(layer.url).status_code))
        reader.start()
        reader.join(60)
        assert reads == {"health": 200, "layer": 200}, "the event loop was blocked by a waiting edit"
        assert "status" not in result  # the edit is still waiting
    finally:
        release.set()
        holder.join(60)
    editing.join(60)
    assert result["status"] == 200, result
    assert result["body"]["properties"] == {"n": 1} and result["body"]["version"] == f["version"] + 1
    assert result["after_release"] is True  # it did wait for the other process's write
