"""IDOR sweep: an attacker who owns a map of her own swaps in another user's object ids.

For every endpoint of the authorization matrix's SPEC (so a new endpoint is swept as soon
as it is in the matrix), each id in the path other than the map (layer, feature, member,
snapshot) is replaced by the victim's while the others stay the attacker's, so the map-level
check passes and only the object's own ownership check can stop the request. Then the
victim's map id itself, and the endpoints outside maps (jobs, tokens). Every request must be
404/403, must not echo the victim's data, and must leave the victim's data unchanged.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.api.test_authz_matrix import GEOJSON, SPEC, WS, Endpoint
from tests.conftest import ApiClient, _client_factory, make_settings
from waymark.app import create_app

SECRET = "victor-secret-7d1c"
SLOTS = ("layer_id", "feature_id", "user_id", "sha", "change_id")


@dataclass
class Objects:
    map_id: str
    layer_id: str
    feature_id: str
    user_id: int  # a member of this map who is not a member of the other one
    sha: str
    change_id: int  # the history entry of the feature's creation


@dataclass
class Sweep:
    clients: dict[str, ApiClient]
    mallory: Objects
    victor: Objects
    victor_job: str
    victor_token_id: int


def _objects(c: ApiClient, member: ApiClient, title: str, secret: str) -> Objects:
    m = c.create_map(title, visibility="private")
    base = f"/api/v1/maps/{m['id']}"
    layer = c.get(base + "/layers").json()[0]
    r = c.patch(f"{base}/layers/{layer['id']}", json={"name": f"layer {secret}"})
    assert r.status_code == 200, r.text
    f = c.post(f"{base}/layers/{layer['id']}/features",
               json={"geometry": {"type": "Point", "coordinates": [1, 2]},
                     "properties": {"note": secret}})
    assert f.status_code == 201, f.text
    r = c.post(base + "/members", json={"email": member.user["email"], "role": "viewer"})
    assert r.status_code == 201, r.text
    data = c.get(f"{base}/layers/{layer['id']}/data")
    assert data.status_code in (200, 302, 307), data.text
    sha = _published_sha(c, base, layer["id"])
    history = c.get(f"{base}/layers/{layer['id']}/history").json()
    [change_id] = [h["id"] for h in history if h["feature_id"] == f.json()["id"]]
    return Objects(m["id"], layer["id"], f.json()["id"], member.user["id"], sha, change_id)


def _published_sha(c: ApiClient, base: str, layer_id: str) -> str:
    """The content hash of the layer's published snapshot (from the /data redirect or the
    layer's JSON), polled briefly because publishing runs in the background."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        layer = c.get(f"{base}/layers/{layer_id}").json()
        text = json.dumps(layer)
        m = re.search(r"snapshots/([0-9a-f]{16,})", text)
        if m:
            return m.group(1)
        r = c.client.get(f"{base}/layers/{layer_id}/data", follow_redirects=False)
        m = re.search(r"snapshots/([0-9a-f]{16,})", r.headers.get("location", "") + r.text[:2000])
        if m:
            return m.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no published snapshot for {base}/layers/{layer_id}")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Sweep]:
    tmp = tmp_path_factory.mktemp("idor")
    shutil.copyfile(sqlite_template, tmp / "waymark.db")
    app = create_app(make_settings(tmp, f"sqlite:///{tmp / 'waymark.db'}", import_job_bytes=64,
                                   snapshot_delay_ms=10))
    factory = _client_factory(app)  # opens TestClients; closes them when resumed
    client = next(factory)

    clients = {}
    for name in ("mallory", "victor", "walter", "wendy"):
        clients[name] = client()
        clients[name].signup(f"{name}@example.com", name=name.title())
    try:
        victor = _objects(clients["victor"], clients["walter"], f"Victor {SECRET}", SECRET)
        mallory = _objects(clients["mallory"], clients["wendy"], "Mallory's map", "mallory")
        r = clients["victor"].post(f"/api/v1/maps/{victor.map_id}/import?filename=big.geojson",
                                   content=GEOJSON, headers={"Content-Type": "application/geo+json"})
        assert r.status_code == 202, r.text
        job = r.json()["job"]["id"]
        r = clients["victor"].post("/api/v1/tokens", json={"name": f"token {SECRET}",
                                                           "scope": "write"})
        assert r.status_code == 201, r.text
        victor_token_id = r.json()["id"]
        clients["mallory_token"] = client()
        r = clients["mallory"].post("/api/v1/tokens", json={"name": "m", "scope": "write"})
        clients["mallory_token"].token = r.json()["token"]
        yield Sweep(clients, mallory, victor, job, victor_token_id)
    finally:
        next(factory, None)
        app.state.services.db.dispose()


def _ids(o: Objects, victim: Objects, slot: str | None) -> dict[str, Any]:
    """The attacker's own ids, with the victim's in `slot` (all of them for "map_id")."""
    ids: dict[str, Any] = {s: getattr(o, s) for s in ("map_id", *SLOTS)}
    if slot == "map_id":
        ids = {s: getattr(victim, s) for s in ("map_id", *SLOTS)}
    elif slot:
        ids[slot] = getattr(victim, slot)
    return ids


def _url(ep: Endpoint, o: Objects, victim: Objects, slot: str | None) -> str:
    ids = _ids(o, victim, slot)
    ids["sha"] = f"{ids['sha']}.geojson"
    return ep.path.format(**ids) + ep.query


def _body(ep: Endpoint, o: Objects, victim: Objects, slot: str | None) -> Any:
    """A body that names ids (the map-wide batch names its layers) names the same ones."""
    return ep.json(SimpleNamespace(**_ids(o, victim, slot))) if callable(ep.json) else ep.json


def _cases() -> list[tuple[Endpoint, str]]:
    out = []
    for ep in SPEC:
        if ep.method == WS or ep.trashed:
            continue  # websockets and the trash: covered by the authorization matrix
        out.append((ep, "map_id"))
        out += [(ep, s) for s in SLOTS if "{" + s + "}" in ep.path]
        if callable(ep.json) and "{layer_id}" not in ep.path:
            out.append((ep, "layer_id"))  # the attacker's map, the victim's layer in the body
    return out


def _send(c: ApiClient, ep: Endpoint, url: str, body: Any = None):  # type: ignore[no-untyped-def]
    kwargs: dict[str, Any] = {}
    if ep.json is not None:
        kwargs["json"] = body
    if ep.content is not None:
        kwargs["content"] = ep.content
        kwargs["headers"] = {"Content-Type": "application/geo+json"}
    return c.request(ep.method, url, **kwargs)


def _victor_state(s: Sweep) -> str:
    v, c = s.victor, s.clients["victor"]
    base = f"/api/v1/maps/{v.map_id}"
    parts = [c.get(base).json(), c.get(base + "/members").json(),
             c.get(f"{base}/layers/{v.layer_id}").json(),
             c.get(f"{base}/layers/{v.layer_id}/features/{v.feature_id}").json()]
    for p in parts:  # drop volatile view counters if any
        if isinstance(p, dict):
            p.pop("updated_at", None)
    return json.dumps(parts, sort_keys=True)


@pytest.mark.parametrize("who", ["mallory", "mallory_token"])
def test_other_users_object_ids_are_never_served(sweep: Sweep, who: str) -> None:
    before = _victor_state(sweep)
    attacker = sweep.clients[who]
    leaks = []
    for ep, slot in _cases():
        url = _url(ep, sweep.mallory, sweep.victor, slot)
        r = _send(attacker, ep, url, _body(ep, sweep.mallory, sweep.victor, slot))
        if r.status_code not in (403, 404) or SECRET in r.text:
            leaks.append(f"{ep.method} {url} [{slot}]: {r.status_code} {r.text[:160]}")
    assert not leaks, "object ids of another user were accepted:\n" + "\n".join(leaks)
    assert _victor_state(sweep) == before


def test_the_sweep_reaches_each_object_kind() -> None:
    swept = {slot for _ep, slot in _cases()}
    assert swept == {"map_id", *SLOTS}
    assert {ep.path for ep, slot in _cases() if slot == "sha"} == {
        "/api/v1/maps/{map_id}/layers/{layer_id}/snapshots/{sha}"}


def test_own_ids_work_so_the_sweep_is_meaningful(sweep: Sweep) -> None:
    """The same requests with the attacker's own ids succeed (reads), so the refusals above
    are about ownership, not broken URLs."""
    c = sweep.clients["mallory"]
    for ep, _slot in _cases():
        if ep.method == "GET":
            r = _send(c, ep, _url(ep, sweep.mallory, sweep.victor, None),
                      _body(ep, sweep.mallory, sweep.victor, None))
            assert r.status_code == ep.ok, f"{ep.method} {ep.path}: {r.status_code} {r.text[:200]}"


@pytest.mark.parametrize("who", ["mallory", "mallory_token"])
def test_jobs_and_tokens_of_another_user(sweep: Sweep, who: str) -> None:
    c = sweep.clients[who]
    r = c.get(f"/api/v1/jobs/{sweep.victor_job}")
    assert r.status_code == 404 and SECRET not in r.text, r.text
    assert sweep.clients["victor"].get(f"/api/v1/jobs/{sweep.victor_job}").status_code == 200
    r = c.delete(f"/api/v1/tokens/{sweep.victor_token_id}")
    assert r.status_code in (403, 404), r.text
    tokens = sweep.clients["victor"].get("/api/v1/tokens").json()
    assert [t["id"] for t in tokens] == [sweep.victor_token_id]
    assert all(SECRET not in json.dumps(t) for t in c.get("/api/v1/tokens").json())
