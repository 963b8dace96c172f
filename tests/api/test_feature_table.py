"""The feature table API on SQLite and PostgreSQL: a layer of 100,000 features is paged,
sorted by a property (numbers as numbers, missing values last) and filtered by text in the
database, one page per request; columns come from the properties, internals left out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from tests.conftest import ApiClient, _client_factory, make_settings
from waymark import jsonutil
from waymark.app import create_app
from waymark.db.models import Feature, Layer

N = 100_000


@pytest.fixture
def owner(tmp_path: Path, database_url: str) -> Iterator[ApiClient]:
    app = create_app(make_settings(tmp_path, database_url))
    factory = _client_factory(app)
    make = next(factory)
    client = make()
    client.signup("table@example.com", name="Tabler")
    client.app = app  # type: ignore[attr-defined]
    yield client
    next(factory, None)
    app.state.services.db.dispose()


def _fill(app, layer_public_id: str) -> None:  # type: ignore[no-untyped-def]
    """N features straight into the database (what an import leaves behind)."""
    db = app.state.services.db
    with db.write() as s:
        layer = s.scalar(select(Layer).where(Layer.public_id == layer_public_id))
        rows = []
        for i in range(N):
            props = {"name": f"Place {i:06d}", "rank": (i * 7919) % 1000, "kind": ["cafe", "park", "shop"][i % 3],
                     "_style": "{}", "coordinateProperties": {"times": []}}
            if i % 10_000 == 5:
                props["note"] = "Great café by the mill"
            if i % 1000 == 0:
                del props["rank"]
            lon, lat = -3.3 + (i % 1000) * 0.0003, 55.9 + (i // 1000) * 0.0003
            rows.append({"uuid": str(uuid.uuid4()), "layer_id": layer.id, "properties": jsonutil.dumps(props),
                         "geometry": jsonutil.dumps({"type": "Point", "coordinates": [lon, lat]}),
                         "minx": lon, "miny": lat, "maxx": lon, "maxy": lat})
        for start in range(0, N, 10_000):
            s.execute(insert(Feature), rows[start:start + 10_000])
        s.execute(update(Layer).where(Layer.id == layer.id).values(feature_count=N))


def test_table_pages_sorts_and_filters_100k_features(owner: ApiClient) -> None:
    m = owner.create_map("Big")
    layer = m["layers"][0]["id"]
    _fill(owner.app, layer)  # type: ignore[attr-defined]
    url = f"/api/v1/maps/{m['id']}/layers/{layer}/table"

    first = owner.get(url, params={"limit": 50}).json()
    assert first["total"] == N and len(first["rows"]) == 50
    assert first["columns"][0] == "name" and set(first["columns"]) >= {"rank", "kind"}
    assert not any(c.startswith("_") or c == "coordinateProperties" for c in first["columns"])
    assert first["rows"][0]["properties"]["name"] == "Place 000000"
    assert first["rows"][0]["geometry_type"] == "Point" and len(first["rows"][0]["bbox"]) == 4

    last = owner.get(url, params={"limit": 50, "offset": N - 20}).json()
    assert len(last["rows"]) == 20 and last["rows"][-1]["properties"]["name"] == "Place 099999"

    by_rank = owner.get(url, params={"sort": "rank", "order": "desc", "limit": 5}).json()["rows"]
    assert [r["properties"]["rank"] for r in by_rank] == [999] * 5  # numbers sort as numbers
    tail = owner.get(url, params={"sort": "rank", "offset": N - 100, "limit": 100}).json()["rows"]
    assert all("rank" not in r["properties"] for r in tail)  # features without the column last
    by_name = owner.get(url, params={"sort": "name", "order": "desc", "limit": 1}).json()["rows"]
    assert by_name[0]["properties"]["name"] == "Place 099999"

    cafes = owner.get(url, params={"q": "café BY", "limit": 50}).json()
    assert cafes["total"] == 10 and all("mill" in r["properties"]["note"] for r in cafes["rows"])
    parks = owner.get(url, params={"q": "park", "limit": 1}).json()
    assert parks["total"] == N // 3
    assert owner.get(url, params={"q": "times"}).json()["total"] == 0  # internals are not searched


@pytest.mark.parametrize(("params", "field"), [({"limit": 0}, "limit"), ({"limit": 501}, "limit"),
                                               ({"offset": -1}, "offset"), ({"order": "up"}, "order"),
                                               ({"limit": "x"}, "limit")])
def test_bad_table_parameters(alice: ApiClient, params: dict, field: str) -> None:
    m = alice.create_map("T")
    r = alice.get(f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}/table", params=params)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field


def test_table_follows_the_layers_access_rules(alice: ApiClient, anon: ApiClient) -> None:
    m = alice.create_map("Private")
    assert anon.get(f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}/table").status_code == 404
