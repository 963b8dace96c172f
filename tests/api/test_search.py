"""Place search (GET /api/v1/geocode) with the offline gazetteer and with Nominatim- and
Photon-compatible services (loopback stand-ins speaking their protocols): results, bad
input, the cache of provider answers, the pace towards the provider; and feature search
(GET /api/v1/maps/{id}/search) with the layers' access rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from tests.conftest import ApiClient, make_settings
from tests.stand_ins import OutsideServices, outside_services
from waymark.app import create_app
from waymark.geocode.service import GeocoderBusy, Pacer


def test_builtin_gazetteer_finds_cities_countries_and_areas(anon: ApiClient) -> None:
    r = anon.get("/api/v1/geocode", params={"q": "lyon"})
    assert r.status_code == 200
    body = r.json()
    assert body["provider"] == "builtin"
    first = body["results"][0]
    assert first["name"] == "Lyon" and first["label"].endswith("France") and first["kind"] == "city"
    assert abs(first["lat"] - 45.76) < 0.05 and abs(first["lon"] - 4.83) < 0.05
    assert anon.get("/api/v1/geocode", params={"q": "zurich"}).json()["results"][0]["name"] == "Zürich"
    france = anon.get("/api/v1/geocode", params={"q": "France"}).json()["results"][0]
    assert france["kind"] == "country"
    west, south, east, north = france["bbox"]
    assert west < 2.35 < east and south < 48.85 < north  # Paris is inside
    ny = anon.get("/api/v1/geocode", params={"q": "new york", "limit": 3}).json()["results"]
    assert ny[0]["kind"] == "city" and any(p["kind"] == "region" and p["bbox"] for p in ny)
    narrowed = anon.get("/api/v1/geocode", params={"q": "Paris, France"}).json()["results"]
    assert narrowed and all("France" in p["label"] for p in narrowed)
    assert anon.get("/api/v1/geocode", params={"q": "qqqxyzzy"}).json()["results"] == []


@pytest.mark.parametrize(("params", "message"), [({}, "q is required"), ({"q": "  "}, "q is required"),
                                                  ({"q": "x" * 201}, "at most 200")])
def test_bad_queries_are_refused(anon: ApiClient, params: dict, message: str) -> None:
    for url in ("/api/v1/geocode", "/api/v1/maps/nope/search"):
        r = anon.get(url, params=params)
        assert r.status_code == 422
        assert message in r.json()["error"]["message"] and r.json()["error"]["details"]["field"] == "q"


@pytest.fixture
def services() -> Iterator[OutsideServices]:
    with outside_services() as running:
        yield running


def _client(tmp_path: Path, sqlite_url: str, **settings):  # type: ignore[no-untyped-def]
    app = create_app(make_settings(tmp_path, sqlite_url, **settings))
    return app, TestClient(app)


@pytest.mark.parametrize("kind", ["nominatim", "photon"])
def test_remote_geocoders_are_asked_once_per_query(tmp_path: Path, sqlite_url: str, services: OutsideServices,
                                                    kind: str) -> None:
    app, client = _client(tmp_path, sqlite_url, geocoder=kind, geocoder_url=services.url,
                          geocoder_rate_per_second=100)
    path = "/search" if kind == "nominatim" else "/api"
    with client:
        r = client.get("/api/v1/geocode", params={"q": "Lyon"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["provider"] == kind
        place = body["results"][0]
        assert place["name"] == "Lyon" and place["label"].startswith("Lyon") and "France" in place["label"]
        assert place["bbox"] == [4.77, 45.70, 4.90, 45.81]
        assert place["source"] == kind
        asked = services.requests[-1]
        assert asked[1]["q"] == "Lyon" and "Waymark" in asked[2]["User-Agent"]
        if kind == "nominatim":
            assert asked[1]["format"] == "jsonv2"
        # the same search (any case) is answered from the cache
        assert client.get("/api/v1/geocode", params={"q": "lyon "}).json()["results"] == body["results"]
        assert services.count(path) == 1
        assert client.get("/api/v1/geocode", params={"q": "nowhere"}).json()["results"] == []
        assert services.count(path) == 2
    app.state.services.db.dispose()


def test_a_provider_that_is_down_is_a_clear_502(tmp_path: Path, sqlite_url: str, services: OutsideServices) -> None:
    services.fail = True
    app, client = _client(tmp_path, sqlite_url, geocoder="photon", geocoder_url=services.url)
    with client:
        r = client.get("/api/v1/geocode", params={"q": "Lyon"})
        assert r.status_code == 502
        assert r.json()["error"]["code"] == "geocoder_unavailable"
        assert "HTTP 503" in r.json()["error"]["message"]
    app.state.services.db.dispose()


def test_pacer_spaces_calls_and_refuses_a_long_wait() -> None:
    now = [100.0]
    pacer = Pacer(rate=1, clock=lambda: now[0])
    assert [pacer.reserve() for _ in range(3)] == [0.0, 1.0, 2.0]
    with pytest.raises(GeocoderBusy) as busy:
        pacer.reserve()
    assert busy.value.status_code == 429 and busy.value.headers["Retry-After"] == "4"
    now[0] += 10  # later, the queue has drained
    assert pacer.reserve() == 0.0


def test_search_rate_limit_applies_to_everyone(tmp_path: Path, sqlite_url: str) -> None:
    app, client = _client(tmp_path, sqlite_url, rate_limits="search=3/minute")
    with client:
        codes = [client.get("/api/v1/geocode", params={"q": "Lyon"}).status_code for _ in range(4)]
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
    app.state.services.db.dispose()


def _feature(name: str, lon: float, lat: float, **props) -> dict:  # type: ignore[no-untyped-def]
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"name": name, **props}}


def test_map_search_finds_features_by_name_and_text(alice: ApiClient, anon: ApiClient, clients) -> None:  # type: ignore[no-untyped-def]
    m = alice.create_map("Walks", visibility="private")
    layer = m["layers"][0]["id"]
    base = f"/api/v1/maps/{m['id']}"
    for f in (_feature("Zürich lake", 8.54, 47.36), _feature("Old mill", 4.84, 45.76, notes="Great café nearby"),
              _feature("Bridge", 4.85, 45.75, _style="{'mill': 1}", coordinateProperties="mill")):
        assert alice.post(f"{base}/layers/{layer}/features", json=f).status_code == 201
    hits = alice.get(f"{base}/search", params={"q": "mill"}).json()["results"]
    assert [h["name"] for h in hits] == ["Old mill"]  # not the internal fields of "Bridge"
    assert hits[0]["layer_id"] == layer and hits[0]["bbox"] == [4.84, 45.76, 4.84, 45.76]
    cafe = alice.get(f"{base}/search", params={"q": "CAFE"}).json()["results"]
    assert cafe[0]["name"] == "Old mill" and cafe[0]["match"] == {"field": "notes", "text": "Great café nearby"}
    assert alice.get(f"{base}/search", params={"q": "zurich"}).json()["results"][0]["name"] == "Zürich lake"
    # the layers' access rules: a private map is not found by others
    assert anon.get(f"{base}/search", params={"q": "mill"}).status_code == 404
    bob = clients()
    bob.signup("bob@example.com")
    assert bob.get(f"{base}/search", params={"q": "mill"}).status_code == 404
    assert alice.post(f"{base}/members", json={"email": "bob@example.com", "role": "viewer"}).status_code == 201
    assert bob.get(f"{base}/search", params={"q": "mill"}).json()["results"][0]["name"] == "Old mill"
