"""Filling a Waymark database through its API, and reading back everything the API shows,
for the database copy and the rehearsed SQLite -> PostgreSQL move.

``populate`` makes users, maps (private, public, trashed), members, layers, features with
awkward values (Unicode, float edge cases, nulls), edits, a revert, an API token and an
import job. ``api_state`` reads every map, layer, feature, version, history entry and ETag
a user can see, so two databases can be compared through the API, not only row by row.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

PASSWORD = "correct horse battery staple"
Get = Callable[..., Any]  # (url, params=...) -> response with .status_code/.json()/.headers

AWKWARD = [
    {"geometry": {"type": "Point", "coordinates": [2.2945, 48.8584]},
     "properties": {"name": "Zürich – 東京 🚲", "note": None, "n": 0.1 + 0.2}},
    {"geometry": {"type": "Point", "coordinates": [-179.9999999, -89.9999999]},
     "properties": {"tiny": 1e-300, "big": 1.7976931348623157e308, "neg": -0.0, "ok": True}},
    {"geometry": {"type": "LineString", "coordinates": [[0, 0], [1.5, 1.25], [3, -2]]},
     "properties": {"quote": "it's \"quoted\"\nnew line\ttab \\ backslash", "list": [1, "2", None]}},
    {"geometry": {"type": "Polygon",
                  "coordinates": [[[10, 10], [11, 10], [11, 11], [10, 11], [10, 10]]]},
     "properties": {"nested": {"a": {"b": [True, False]}}, "empty": ""}},
    {"geometry": None, "properties": {"only": "properties"}},
]


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    return response.json() if response.content else None


def populate(alice: Any, bob: Any, *, import_bytes: int = 0) -> dict[str, Any]:
    """Fill through the API with two logged-in ApiClients; returns ids and the API token.

    ``import_bytes``: when > 0, one import is bigger than that and becomes a job."""
    private = alice.create_map("Private trails", description="ünïcödé ✓")
    public = alice.create_map("Public map", visibility="public")
    trashed = alice.create_map("Old map")
    m, layer = private["id"], private["layers"][0]["id"]
    base = f"/api/v1/maps/{m}/layers/{layer}"
    created = [_ok(alice.post(f"{base}/features", json=f), 201) for f in AWKWARD]
    _ok(alice.patch(f"{base}/features/{created[0]['id']}",
                    json={"properties": {"name": "renamed", "v": 2}},
                    headers={"If-Match": f'"{created[0]["version"]}"'}))
    _ok(alice.delete(f"{base}/features/{created[4]['id']}"), 204)
    _ok(alice.post(f"{base}/batch", json={"operations": [
        {"op": "add", "geometry": {"type": "Point", "coordinates": [n, n / 3]},
         "properties": {"n": n}} for n in range(20)]}))
    _ok(alice.post(f"{base}/revert", json={"version": 3}))
    second = _ok(alice.post(f"/api/v1/maps/{m}/layers",
                            json={"name": "Second", "style": {"color": "#ff0000"}}), 201)
    _ok(alice.post(f"/api/v1/maps/{m}/members", json={"email": bob.user["email"], "role": "editor"}), 201)
    _ok(bob.post(f"/api/v1/maps/{m}/layers/{second['id']}/features",
                 json={"geometry": {"type": "Point", "coordinates": [5, 5]},
                       "properties": {"by": "bob"}}), 201)
    pub_layer = public["layers"][0]["id"]
    _ok(alice.post(f"/api/v1/maps/{public['id']}/layers/{pub_layer}/features",
                   json={"geometry": {"type": "Point", "coordinates": [1, 2]},
                         "properties": {"public": True}}), 201)
    _ok(alice.delete(f"/api/v1/maps/{trashed['id']}"), 204)
    job = None
    if import_bytes:
        features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [i / 10, 1]},
                     "properties": {"i": i, "pad": "x" * 40}} for i in range(import_bytes // 60 + 10)]
        body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
        r = alice.post(f"/api/v1/maps/{public['id']}/import?filename=big.geojson", content=body)
        job = _ok(r, 202)["job"]["id"]
    token = _ok(alice.post("/api/v1/tokens", json={"name": "move", "scope": "write"}), 201)
    return {"maps": [m, public["id"], trashed["id"]], "token": token["token"], "job": job}


def _pages(get: Get, url: str, key: str | None, cursor: str, limit: int) -> list[Any]:
    """Every item of a paged list (features by `after`, history by `before`)."""
    out: list[Any] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        body = _ok(get(url, params=params))
        items = body[key] if key else body
        out += items
        if key:  # features: the response names the next cursor
            if not body["next"]:
                return out
            params["after"] = body["next"]
        else:  # history: newest first, page back from the last id
            if len(items) < limit:
                return out
            params["before"] = items[-1]["id"]


def api_state(get: Get, map_ids: list[str], *, job: str | None = None,
              feature_etags: int = 50) -> dict[str, Any]:
    """Everything the API shows one user about these maps (and their account).

    Whole layers are compared through their features (every one, every version) and the
    ETag of the current GeoJSON (the SHA-256 of its content); single-feature ETags are read
    for the first ``feature_etags`` features of each layer."""
    for m in map_ids:  # reading /data publishes a layer that is behind: do that first
        map_ = _ok(get(f"/api/v1/maps/{m}"))
        for layer in [] if map_["deleted_at"] else map_["layers"]:
            _ok(get(f"/api/v1/maps/{m}/layers/{layer['id']}/data"))
    state: dict[str, Any] = {"me": _ok(get("/api/v1/auth/me")),
                             "tokens": _ok(get("/api/v1/tokens"))}
    for scope in ("mine", "shared", "trash", "public"):
        state[f"maps:{scope}"] = _ok(get("/api/v1/maps", params={"scope": scope, "limit": 200}))
    if job:
        state["job"] = _ok(get(f"/api/v1/jobs/{job}"))
    for m in map_ids:
        base = f"/api/v1/maps/{m}"
        map_ = _ok(get(base))
        if map_["deleted_at"]:  # in the trash: the map itself is all the API shows
            state[m] = {"map": map_}
            continue
        members = _ok(get(f"{base}/members")) if map_["role"] else None  # members only
        state[m] = {"map": map_, "members": members,
                    "history": _pages(get, f"{base}/history", None, "before", 500)}
        for layer in map_["layers"]:
            lbase = f"{base}/layers/{layer['id']}"
            r = get(lbase)
            features = _pages(get, f"{lbase}/features", "features", "after", 10_000)
            data = get(f"{lbase}/data")
            etags = [get(f"{lbase}/features/{f['id']}").headers["etag"]
                     for f in features[:feature_etags]]
            state[m][layer["id"]] = {
                "layer": _ok(r), "etag": r.headers["etag"], "features": features,
                "feature_etags": etags,
                "history": _pages(get, f"{lbase}/history", None, "before", 500),
                "data_etag": data.headers["etag"], "data_status": data.status_code,
                "data_sha256": hashlib.sha256(data.content).hexdigest()}
    return state


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two API states differ (empty when identical), for readable failures."""
    if type(a) is not type(b):
        return [f"{path}: {a!r:.200} != {b!r:.200}"]
    if isinstance(a, dict):
        out = [f"{path}/{k}: only on one side" for k in set(a) ^ set(b)]
        for k in sorted(set(a) & set(b), key=str):
            out += diff(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=False)) for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r:.200} != {b!r:.200}"]


def table_lines(out: str) -> dict[str, tuple[int, int, str]]:
    """{table: (source rows, target rows, ok|MISMATCH)} from the verification table."""
    found = {}
    for m in re.finditer(r"^(\w+)\s+([\d,]+)\s+([\d,]+)\s+[0-9a-f]{16}\s+[0-9a-f]{16}\s+(ok|MISMATCH)$",
                         out, re.MULTILINE):
        found[m.group(1)] = (int(m.group(2).replace(",", "")), int(m.group(3).replace(",", "")),
                             m.group(4))
    return found
