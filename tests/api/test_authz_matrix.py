"""Authorization matrix: every /api/v1 endpoint that takes a map × actor × visibility.

The expected outcome of each cell is derived from a small declarative spec per endpoint
(`need`: view | edit | own | member) and the house rules:

* a map you may not see (private and you are not a member, or trashed and you are not the
  owner) → 404, its existence is not leaked;
* a visible map but a role too low → 403 (anonymous → 401, so clients know to log in);
* a read-scope API token writing → 403 insufficient_scope;
* otherwise → the endpoint's success status.

The route table is read from the running app, so an endpoint added under
/api/v1/maps/{map_id} without a row in SPEC fails `test_every_map_endpoint_is_in_the_matrix`.

Runs on SQLite only, on one module-scoped app (users are created once: argon2 is slow);
every mutating request gets a freshly built map, layer and feature of its own.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from sqlalchemy import select

from tests.conftest import ApiClient, _client_factory, make_settings
from waymark.app import create_app
from waymark.db.models import Change, Member
from waymark.maps import layers as layer_ops
from waymark.maps import service
from waymark.maps.editing import LayerEditor
from waymark.maps.snapshots import publish

MAP_PREFIX = "/api/v1/maps/{map_id}"
VISIBILITIES = ("private", "unlisted", "public")
ACTORS = ("anonymous", "outsider", "viewer", "editor", "owner", "owner_read_token",
          "editor_write_token")
ROLE = {"anonymous": None, "outsider": None, "viewer": "viewer", "editor": "editor",
        "owner": "owner", "owner_read_token": "owner", "editor_write_token": "editor"}
RANK = {None: 0, "viewer": 1, "editor": 2, "owner": 3}
NEED_RANK = {"view": 0, "member": 1, "edit": 2, "own": 3}
POINT = {"type": "Point", "coordinates": [-3.19, 55.95]}
GEOJSON = json.dumps({"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1.5, 2.5]},
     "properties": {"name": "imported"}}]}).encode()


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # template without converters: {map_id}, {layer_id}, {feature_id}, {user_id}, {sha}
    need: str  # view | edit | own | member
    ok: int  # status when allowed
    json: Any = None
    content: bytes | None = None
    query: str = ""
    trashed: bool = False  # the request is about a map in the trash (restore)

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def mutates(self) -> bool:
        return self.method not in ("GET", WS)


L = MAP_PREFIX + "/layers/{layer_id}"
WS = "WebSocketRoute"  # a websocket "request": connect, read the first message
SPEC: list[Endpoint] = [
    # maps
    Endpoint("GET", MAP_PREFIX, "view", 200),
    Endpoint("PATCH", MAP_PREFIX, "edit", 200, json={"title": "Renamed by matrix"}),
    Endpoint("DELETE", MAP_PREFIX, "own", 204),
    Endpoint("POST", MAP_PREFIX + "/restore", "own", 200, trashed=True),
    Endpoint("GET", MAP_PREFIX + "/history", "view", 200),
    Endpoint("GET", MAP_PREFIX + "/search", "view", 200, query="?q=point"),
    # members
    Endpoint("GET", MAP_PREFIX + "/members", "member", 200),
    Endpoint("POST", MAP_PREFIX + "/members", "own", 201,
             json={"email": "newcomer@example.com", "role": "viewer"}),
    Endpoint("PATCH", MAP_PREFIX + "/members/{user_id}", "own", 200, json={"role": "editor"}),
    Endpoint("DELETE", MAP_PREFIX + "/members/{user_id}", "own", 204),
    # layers
    Endpoint("GET", MAP_PREFIX + "/layers", "view", 200),
    Endpoint("POST", MAP_PREFIX + "/layers", "edit", 201, json={"name": "Matrix layer"}),
    Endpoint("GET", L, "view", 200),
    Endpoint("PATCH", L, "edit", 200, json={"name": "Renamed layer"}),
    Endpoint("DELETE", L, "edit", 204),
    Endpoint("GET", L + "/history", "view", 200),
    Endpoint("POST", L + "/batch", "edit", 200,
             json={"operations": [{"op": "add", "geometry": POINT, "properties": {}}]}),
    Endpoint("POST", MAP_PREFIX + "/batch", "edit", 200, json=lambda w: {"layers": [
        {"layer": w.layer_id, "operations": [{"op": "add", "geometry": POINT, "properties": {}}]}]}),
    Endpoint("POST", L + "/revert", "edit", 200, json={"version": 1}),
    Endpoint("POST", L + "/changes/{change_id}/revert", "edit", 200),
    Endpoint("GET", L + "/data", "view", 200),
    Endpoint("GET", L + "/snapshots/{sha}", "view", 200),
    # features
    Endpoint("GET", L + "/features", "view", 200),
    Endpoint("GET", L + "/table", "view", 200),
    Endpoint("POST", L + "/features", "edit", 201, json={"geometry": POINT, "properties": {}}),
    Endpoint("GET", L + "/features/{feature_id}", "view", 200),
    Endpoint("PUT", L + "/features/{feature_id}", "edit", 200,
             json={"geometry": POINT, "properties": {"name": "put"}}),
    Endpoint("PATCH", L + "/features/{feature_id}", "edit", 200,
             json={"properties": {"name": "patched"}}),
    Endpoint("DELETE", L + "/features/{feature_id}", "edit", 204),
    # import / export
    Endpoint("POST", L + "/import", "edit", 201, content=GEOJSON, query="?filename=a.geojson"),
    Endpoint("POST", MAP_PREFIX + "/import", "edit", 201, content=GEOJSON,
             query="?filename=a.geojson"),
    Endpoint("POST", MAP_PREFIX + "/import/preview", "edit", 200, content=GEOJSON,
             query="?filename=a.geojson"),
    Endpoint("GET", L + "/export", "view", 200, query="?format=geojson"),
    Endpoint("GET", MAP_PREFIX + "/export", "view", 200),
    # real time and live data
    Endpoint(WS, MAP_PREFIX + "/ws", "view", 101),
    Endpoint("GET", MAP_PREFIX + "/live/{layer_id}", "view", 200),
    Endpoint("POST", MAP_PREFIX + "/live/{layer_id}/positions", "edit", 202,
             json={"device": "matrix", "lat": 55.95, "lon": -3.19}),
]


def expected_status(ep: Endpoint, actor: str, visibility: str) -> int:
    role = ROLE[actor]
    if ep.trashed and role != "owner":
        return 404  # the trash is the owner's alone
    if role is None and visibility == "private":
        return 404
    if RANK[role] < NEED_RANK[ep.need]:
        return 401 if actor == "anonymous" else 403
    if ep.mutates and actor == "owner_read_token":
        return 403
    return ep.ok


def expected_code(ep: Endpoint, actor: str, status: int) -> str | None:
    """The error code where the rules pin it down."""
    if status == 404:
        return "not_found"
    if status == 401:
        return "login_required"
    if status == 403 and actor == "owner_read_token":
        return "insufficient_scope"
    if status == 403:
        return {"own": "owner_required", "edit": "editor_required",
                "member": "member_required"}[ep.need]
    return None


# ---- a module-scoped app with its cast of users --------------------------------------
@dataclass
class World:
    map_id: str
    layer_id: str
    feature_id: str
    user_id: int  # the viewer: target of the member endpoints
    title: str = ""
    sha: str = ""
    map_pk: int = 0
    layer_pk: int = 0
    change_id: int = 0  # the seed feature's creation


@dataclass
class Cast:
    app: Litestar
    clients: dict[str, ApiClient]
    ids: dict[str, int]
    _n: Iterator[int] = field(default_factory=itertools.count)

    def world(self, visibility: str, *, trashed: bool = False, published: bool = False) -> World:
        """A fresh map owned by `owner` with `editor` and `viewer` members, one layer, one feature."""
        db = self.app.state.services.db
        with db.write() as s:
            map_ = service.create_map(s, self.ids["owner"],
                                      {"title": f"Matrix {next(self._n)}.", "visibility": visibility})
            s.add_all([Member(map_id=map_.id, user_id=self.ids["editor"], role="editor"),
                       Member(map_id=map_.id, user_id=self.ids["viewer"], role="viewer")])
            layer = layer_ops.list_layers(s, map_)[0]
            editor = LayerEditor(s, map_, layer, self.ids["owner"])
            feature = editor.add(POINT, {"name": "seed"})
            editor.finish()
            s.flush()
            change_id = s.scalar(select(Change.id).where(Change.feature_uuid == feature.uuid))
            if trashed:
                service.trash_map(s, map_, self.ids["owner"])
            world = World(map_.public_id, layer.public_id, feature.uuid, self.ids["viewer"],
                          title=map_.title, map_pk=map_.id, layer_pk=layer.id,
                          change_id=change_id)
        if published:
            world.sha = publish(db, self.app.state.services.store, world.layer_pk)[0]
        return world


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Cast]:
    import shutil

    tmp = tmp_path_factory.mktemp("authz")
    shutil.copyfile(sqlite_template, tmp / "waymark.db")
    app = create_app(make_settings(tmp, f"sqlite:///{tmp / 'waymark.db'}"))
    factory = _client_factory(app)  # opens TestClients; closes them when resumed
    client = next(factory)

    clients: dict[str, ApiClient] = {"anonymous": client()}
    ids: dict[str, int] = {}
    for name in ("outsider", "viewer", "editor", "owner", "newcomer"):
        c = client()
        ids[name] = c.signup(f"{name}@example.com", name=name.title())["id"]
        clients[name] = c
    for actor, user, scope in (("owner_read_token", "owner", "read"),
                               ("editor_write_token", "editor", "write")):
        r = clients[user].post("/api/v1/tokens", json={"name": actor, "scope": scope})
        assert r.status_code == 201, r.text
        c = client()
        c.token = r.json()["token"]
        clients[actor] = c
    try:
        yield Cast(app, clients, ids)
    finally:
        next(factory, None)
        app.state.services.db.dispose()


def _url(ep: Endpoint, w: World) -> str:
    return ep.path.format(map_id=w.map_id, layer_id=w.layer_id, feature_id=w.feature_id,
                          user_id=w.user_id, sha=w.sha + ".geojson",
                          change_id=w.change_id) + ep.query


class _WsResult:
    """A websocket connection attempt, shaped like an HTTP response for the matrix."""

    def __init__(self, first: dict[str, Any]) -> None:
        self._first = first
        self.text = json.dumps(first)
        if first.get("type") == "hello":
            self.status_code = 101
        else:
            code = first["error"]["code"]
            self.status_code = {"not_found": 404, "login_required": 401,
                                "invalid_token": 401}.get(code, 403)

    def json(self) -> dict[str, Any]:
        return {"error": self._first["error"]}


def _send(cast: Cast, actor: str, ep: Endpoint, w: World):  # type: ignore[no-untyped-def]
    if ep.method == WS:
        client = cast.clients[actor]
        headers = {"Authorization": f"Bearer {client.token}"} if client.token else {}
        with client.client.websocket_connect(_url(ep, w), headers=headers) as ws:
            return _WsResult(ws.receive_json())
    kwargs: dict[str, Any] = {}
    if ep.json is not None:
        kwargs["json"] = ep.json(w) if callable(ep.json) else ep.json  # a body naming the world's ids
    if ep.content is not None:
        kwargs["content"] = ep.content
        kwargs["headers"] = {"Content-Type": "application/geo+json"}
    return cast.clients[actor].request(ep.method, _url(ep, w), **kwargs)


# ---- the route table is complete -----------------------------------------------------
def _normalise(path: str) -> str:
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)


def test_every_map_endpoint_is_in_the_matrix(cast: Cast) -> None:
    served: set[tuple[str, str]] = set()
    for route in cast.app.routes:
        path = _normalise(route.path)
        if not path.startswith(MAP_PREFIX):
            continue
        if isinstance(route, HTTPRoute):
            served |= {(m, path) for m in route.methods if m not in ("OPTIONS", "HEAD")}
        else:  # websockets and anything else that takes a map must be in the table too
            served.add((type(route).__name__, path))
    spec = {ep.key for ep in SPEC}
    assert len(spec) == len(SPEC), "duplicate rows in SPEC"
    missing = sorted(served - spec)
    assert not missing, f"endpoints that take a map but have no authorization row: {missing}"
    stale = sorted(spec - served)
    assert not stale, f"SPEC rows for endpoints the app does not serve: {stale}"
    # the OpenAPI schema agrees (it is what clients are generated from)
    schema = cast.clients["anonymous"].get("/api/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in schema["paths"].items() if p.startswith(MAP_PREFIX)
                  for m in ops if m in ("get", "post", "put", "patch", "delete")}
    assert documented <= spec, sorted(documented - spec)


def test_expected_table_is_not_degenerate() -> None:
    """Guard the oracle itself: each outcome class must occur, so a bug in it cannot hide."""
    outcomes = {expected_status(ep, a, v) for ep in SPEC for a in ACTORS for v in VISIBILITIES}
    assert {200, 201, 204, 401, 403, 404} <= outcomes
    patch_map = SPEC[1]
    assert expected_status(patch_map, "viewer", "private") == 403
    assert expected_status(patch_map, "anonymous", "public") == 401
    assert expected_status(patch_map, "outsider", "private") == 404
    assert expected_status(patch_map, "owner_read_token", "public") == 403
    assert expected_status(patch_map, "editor_write_token", "private") == 200


# ---- the matrix ------------------------------------------------------------------------
@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("ep", SPEC, ids=lambda ep: f"{ep.method} {ep.path[len(MAP_PREFIX):] or '/'}")
def test_matrix(cast: Cast, ep: Endpoint, visibility: str) -> None:
    shared = None if ep.mutates else cast.world(visibility, published=True)
    wrong = []
    for actor in ACTORS:
        world = shared or cast.world(visibility, trashed=ep.trashed)
        r = _send(cast, actor, ep, world)
        want = expected_status(ep, actor, visibility)
        if r.status_code != want:
            wrong.append(f"{actor}: got {r.status_code}, want {want}: {r.text[:200]}")
            continue
        if r.status_code >= 400:
            body = r.json()
            assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, \
                f"{actor}: {body}"
            code = expected_code(ep, actor, r.status_code)
            if code and body["error"]["code"] != code:
                wrong.append(f"{actor}: error code {body['error']['code']!r}, want {code!r}")
    assert not wrong, f"{ep.method} {ep.path} on a {visibility} map:\n" + "\n".join(wrong)


def test_denied_writes_change_nothing(cast: Cast) -> None:
    """A refused edit must not leave a trace: same layer version, same feature, no history."""
    w = cast.world("public")
    base = f"/api/v1/maps/{w.map_id}/layers/{w.layer_id}"
    def state() -> dict:  # the snapshot URL is set by the background publisher, at its pace
        return {k: v for k, v in cast.clients["owner"].get(base).json().items()
                if k != "snapshot_url"}

    before = state()
    history = cast.clients["owner"].get(base + "/history").json()
    for actor in ("anonymous", "outsider", "viewer", "owner_read_token"):
        r = cast.clients[actor].patch(f"{base}/features/{w.feature_id}",
                                      json={"properties": {"name": actor}})
        assert r.status_code in (401, 403), r.text
        r = cast.clients[actor].delete(base)
        assert r.status_code in (401, 403), r.text
    assert state() == before
    assert cast.clients["owner"].get(base + "/history").json() == history
    f = cast.clients["owner"].get(f"{base}/features/{w.feature_id}").json()
    assert f["properties"] == {"name": "seed"} and f["version"] == 1


def test_cookie_write_without_csrf_is_refused_even_for_the_owner(cast: Cast) -> None:
    w = cast.world("private")
    raw = cast.clients["owner"].client  # the TestClient underneath: same cookie, no CSRF header
    r = raw.patch(f"/api/v1/maps/{w.map_id}", json={"title": "no csrf"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    assert cast.clients["owner"].get(f"/api/v1/maps/{w.map_id}").json()["title"] != "no csrf"


def test_layer_of_another_map_is_not_reachable(cast: Cast) -> None:
    """Access is checked on the map in the URL, so a layer id from a private map must not be
    reachable through a public map the caller can see."""
    public, private = cast.world("public"), cast.world("private")
    for actor in ("outsider", "anonymous"):
        c = cast.clients[actor]
        r = c.get(f"/api/v1/maps/{public.map_id}/layers/{private.layer_id}/features")
        assert r.status_code == 404, r.text
        r = c.get(f"/api/v1/maps/{public.map_id}/layers/{public.layer_id}/features/"
                  f"{private.feature_id}")
        assert r.status_code == 404, r.text
    r = cast.clients["editor_write_token"].patch(
        f"/api/v1/maps/{public.map_id}/layers/{public.layer_id}/features/{private.feature_id}",
        json={"properties": {"x": 1}})
    assert r.status_code == 404, r.text


# ---- listings and search ---------------------------------------------------------------
@pytest.fixture(scope="module")
def listed(cast: Cast) -> dict[str, str]:
    """One map of each visibility (plus a trashed public one) sharing a searchable word."""
    out = {}
    for vis in VISIBILITIES:
        r = cast.clients["owner"].post("/api/v1/maps", json={"title": f"Zanzibar {vis}",
                                                              "visibility": vis})
        assert r.status_code == 201, r.text
        out[vis] = r.json()["id"]
    r = cast.clients["owner"].post("/api/v1/maps", json={"title": "Zanzibar trashed",
                                                          "visibility": "public"})
    out["trashed"] = r.json()["id"]
    assert cast.clients["owner"].delete(f"/api/v1/maps/{out['trashed']}").status_code == 204
    return out


def _ids(r) -> set[str]:  # type: ignore[no-untyped-def]
    assert r.status_code == 200, r.text
    return {m["id"] for m in r.json()}


@pytest.mark.parametrize("scope", ["", "public", "mine", "shared", "trash"])
@pytest.mark.parametrize("actor", ["outsider", "newcomer", "editor_write_token"])
def test_listing_never_shows_private_maps_to_outsiders(cast: Cast, listed: dict[str, str],
                                                       actor: str, scope: str) -> None:
    c = cast.clients[actor]
    seen = _ids(c.get("/api/v1/maps" + (f"?scope={scope}" if scope else "")))
    if actor == "editor_write_token":  # a member of the matrix maps, not of these
        assert not seen & {listed["private"], listed["unlisted"], listed["trashed"]}
    else:
        assert listed["private"] not in seen and listed["trashed"] not in seen
        assert listed["unlisted"] not in seen
    if scope == "public":
        assert listed["public"] in seen


def test_anonymous_listing(cast: Cast, listed: dict[str, str]) -> None:
    anon = cast.clients["anonymous"]
    seen = _ids(anon.get("/api/v1/maps"))
    assert listed["public"] in seen
    assert not seen & {listed["private"], listed["unlisted"], listed["trashed"]}
    for scope in ("mine", "shared", "trash"):
        r = anon.get(f"/api/v1/maps?scope={scope}")
        assert r.status_code == 401 and r.json()["error"]["code"] == "login_required"
    r = anon.get("/api/v1/maps?scope=everything")
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "scope"


@pytest.mark.parametrize("actor", ["anonymous", "outsider", "owner", "viewer"])
def test_public_search_finds_only_public_maps(cast: Cast, listed: dict[str, str], actor: str) -> None:
    found = _ids(cast.clients[actor].get("/api/v1/maps?scope=public&q=zanzibar"))
    assert found == {listed["public"]}  # not unlisted, private or trashed; case-insensitive
    assert _ids(cast.clients[actor].get("/api/v1/maps?scope=public&q=zanzibar%20private")) == set()


def test_owner_sees_own_maps_by_scope(cast: Cast, listed: dict[str, str]) -> None:
    owner = cast.clients["owner"]
    mine = _ids(owner.get("/api/v1/maps?scope=mine&q=zanzibar&limit=200"))
    assert mine == {listed["private"], listed["unlisted"], listed["public"]}
    assert _ids(owner.get("/api/v1/maps?scope=trash&q=zanzibar")) == {listed["trashed"]}
    # the read token of the owner lists the same (listing is a read)
    assert _ids(cast.clients["owner_read_token"].get(
        "/api/v1/maps?scope=mine&q=zanzibar&limit=200")) == mine


def test_shared_scope_lists_maps_shared_with_the_member(cast: Cast) -> None:
    w = cast.world("private")
    q = f"?q={w.title.replace(' ', '%20')}"
    assert _ids(cast.clients["viewer"].get(f"/api/v1/maps{q}&scope=shared")) == {w.map_id}
    assert _ids(cast.clients["editor_write_token"].get(f"/api/v1/maps{q}&scope=shared")) == {w.map_id}
    for scope in ("shared", "public", "mine"):
        assert _ids(cast.clients["outsider"].get(f"/api/v1/maps{q}&scope={scope}")) == set()
    # the owner's own maps are "mine", not "shared"
    assert _ids(cast.clients["owner"].get(f"/api/v1/maps{q}&scope=shared")) == set()
    assert _ids(cast.clients["owner"].get(f"/api/v1/maps{q}&scope=mine")) == {w.map_id}
