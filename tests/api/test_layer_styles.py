"""The layer style document through the API: validated on every write (422 naming the field,
nothing changed), published as JSON Schema in the OpenAPI document (which agrees with the
server about what is valid), and carried exactly through a map bundle (SQLite and
PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from tests.api.test_import_api import upload
from tests.conftest import ApiClient

FULL_STYLE: dict[str, Any] = {
    "color": "#225ea8", "weight": 2, "opacity": 0.9, "fill": True, "fillColor": "#41b6c4",
    "fillOpacity": 0.6, "markerColor": "#e31a1c", "markerSymbol": "park", "markerSize": "large",
    "label": {"text": "{name} ({pop_est})", "show": "hover"},
    "popup": {"fields": [{"key": "name", "label": "Country"}], "others": True},
    "rule": {"type": "graduated", "property": "pop_est", "method": "jenks", "classes": 6,
             "ramp": "ylgnbu", "reverse": True, "noDataColor": "#eeeeee",
             "noDataLabel": "Unknown"},
    "display": {"mode": "cluster", "clusterMaxZoom": 12},
}
CATEGORIZED = {"type": "categorized", "property": "continent", "categories": [
    {"value": "Africa", "color": "#e69f00", "symbol": "circle", "label": "Africa"},
    {"value": "Europe", "color": "#56b4e9"}], "otherColor": "#999999"}
PROPORTIONAL = {"type": "proportional", "property": "pop_est", "minRadius": 3, "maxRadius": 40,
                "color": "#d95f02"}
MANUAL = {"type": "graduated", "property": "gdp_md", "method": "manual", "classes": 3,
          "breaks": [1000, 100000], "ramp": "viridis"}

# (style, the field the 422 names)
INVALID = [
    ({"colour": "red"}, "style.colour"),
    ({"color": "url(javascript:alert(1))"}, "style.color"),
    ({"weight": 99}, "style.weight"),
    ({"fillOpacity": 1.5}, "style.fillOpacity"),
    ({"markerSymbol": "../../etc/passwd"}, "style.markerSymbol"),
    ({"markerSize": "huge"}, "style.markerSize"),
    ({"label": {"show": "always"}}, "style.label"),
    ({"rule": {"type": "graduated", "property": "p", "method": "median"}}, "style.rule.method"),
    ({"rule": {"type": "graduated", "property": "p", "classes": 12}}, "style.rule.classes"),
    ({"rule": {"type": "graduated", "property": "p", "ramp": "rainbow"}}, "style.rule.ramp"),
    ({"rule": {**MANUAL, "breaks": [5, 1]}}, "style.rule.breaks"),
    ({"rule": {**CATEGORIZED, "categories": [{"value": "x", "color": "#12345z"}]}},
     "style.rule.categories[0].color"),
    ({"rule": {"type": "heatmap", "property": "p"}}, "style.rule.type"),
    ({"rule": {**PROPORTIONAL, "minRadius": 50, "maxRadius": 10}}, "style.rule"),
    ({"display": {"mode": "cluster", "clusterMaxZoom": 40}}, "style.display.clusterMaxZoom"),
    ({"display": {"mode": "3d"}}, "style.display.mode"),
    ({"popup": {"fields": [], "colour": 1}}, "style.popup.colour"),
]


@pytest.fixture
def owner(db_clients) -> ApiClient:  # type: ignore[no-untyped-def]
    c = db_clients()
    c.signup("stylist@example.com", name="Stylist")
    return c


def _within(stored: Any, sent: Any) -> bool:
    """Everything sent is stored as sent (the stored document may add defaults)."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(k in stored and _within(stored[k], v)
                                                for k, v in sent.items())
    return stored == sent


def _layer_url(m: dict[str, Any]) -> str:
    return f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}"


@pytest.mark.parametrize("rule", [FULL_STYLE["rule"], CATEGORIZED, PROPORTIONAL, MANUAL])
def test_valid_styles_are_stored_and_come_back_unchanged(owner: ApiClient, rule: dict) -> None:
    m = owner.create_map("Styles")
    r = owner.patch(_layer_url(m), json={"style": {**FULL_STYLE, "rule": rule}})
    assert r.status_code == 200, r.text
    stored = r.json()["style"]
    assert _within(stored, {**FULL_STYLE, "rule": rule})
    assert stored["display"]["heatRadius"] == 25  # a default, written out
    # the members left out get their defaults written, once: saving it again changes nothing
    again = owner.patch(_layer_url(m), json={"style": stored}).json()["style"]
    assert again == stored
    assert owner.get(_layer_url(m)).json()["style"] == stored


@pytest.mark.parametrize(("style", "field"), INVALID)
def test_invalid_style_is_refused_naming_the_field(owner: ApiClient, style: dict, field: str) -> None:
    m = owner.create_map("Styles")
    before = owner.get(_layer_url(m)).json()
    r = owner.patch(_layer_url(m), json={"style": style, "name": "Renamed"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid" and error["details"]["field"] == field
    assert field in error["message"]
    assert owner.get(_layer_url(m)).json() == before  # nothing changed, not even the name
    r = owner.post(f"/api/v1/maps/{m['id']}/layers", json={"name": "New", "style": style})
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field


def test_openapi_publishes_the_style_schema_and_it_agrees_with_the_server(anon: ApiClient) -> None:
    doc = anon.get("/api/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name in ("LayerStyle", "Categorized", "Graduated", "Proportional", "Display", "Popup"):
        assert name in schemas
    for path, method in (("/api/v1/maps/{map_id}/layers", "post"),
                         ("/api/v1/maps/{map_id}/layers/{layer_id}", "patch")):
        body = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert body["properties"]["style"] == {"$ref": "#/components/schemas/LayerStyle"}
    # handlers returning a Response document no body shape, not an object: the layer list is an array
    listed = doc["paths"]["/api/v1/maps/{map_id}/layers"]["get"]["responses"]["200"]
    assert listed["content"]["application/json"]["schema"] != {"type": "object"}
    schema = {**schemas["LayerStyle"], "components": {"schemas": schemas}}
    validator = jsonschema.Draft202012Validator(schema)
    for rule in (FULL_STYLE["rule"], CATEGORIZED, PROPORTIONAL, MANUAL):
        validator.validate({**FULL_STYLE, "rule": rule})
    # what the schema alone can say (the rest, e.g. ascending breaks, is the server's check)
    schema_only = [s for s, _ in INVALID if "breaks" not in json.dumps(s)
                   and "minRadius\": 50" not in json.dumps(s)]
    for style in schema_only:
        assert not validator.is_valid(style), style


def test_bundle_carries_layer_styles_exactly(owner: ApiClient) -> None:
    m = owner.create_map("Bundled")
    styles = [{**FULL_STYLE, "rule": rule} for rule in (CATEGORIZED, PROPORTIONAL, MANUAL)]
    layer_ids = [m["layers"][0]["id"]]
    for i in range(1, len(styles)):
        r = owner.post(f"/api/v1/maps/{m['id']}/layers", json={"name": f"Layer {i}"})
        assert r.status_code == 201, r.text
        layer_ids.append(r.json()["id"])
    for layer_id, style in zip(layer_ids, styles, strict=False):
        r = owner.patch(f"/api/v1/maps/{m['id']}/layers/{layer_id}", json={"style": style})
        assert r.status_code == 200, r.text
    r = owner.post(f"/api/v1/maps/{m['id']}/layers/{layer_ids[0]}/features", json={
        "geometry": {"type": "Point", "coordinates": [2.35, 48.85]},
        "properties": {"name": "Paris", "marker-color": "#ff0000", "marker-symbol": "museum",
                       "label-text": "{name}", "label-show": "always"}})
    assert r.status_code == 201, r.text
    original = owner.get(f"/api/v1/maps/{m['id']}").json()["layers"]

    bundle = owner.get(f"/api/v1/maps/{m['id']}/export", params={"format": "bundle"})
    assert bundle.status_code == 200
    r = upload(owner, "/api/v1/maps/import-bundle", "styles.waymark.json", bundle.content)
    assert r.status_code == 201, r.text
    copy = owner.get(f"/api/v1/maps/{r.json()['id']}").json()["layers"]
    assert [layer["style"] for layer in copy] == [layer["style"] for layer in original]
    features = owner.get(f"/api/v1/maps/{r.json()['id']}/layers/{copy[0]['id']}/features").json()
    assert features["features"][0]["properties"]["marker-symbol"] == "museum"


def test_bundle_with_an_invalid_style_names_the_layer_and_field(owner: ApiClient) -> None:
    m = owner.create_map("Bad bundle")
    doc = owner.get(f"/api/v1/maps/{m['id']}/export", params={"format": "bundle"}).json()
    doc["layers"][0]["style"] = {"rule": {"type": "graduated", "property": "x", "ramp": "jet"}}
    r = upload(owner, "/api/v1/maps/import-bundle", "bad.waymark.json", json.dumps(doc).encode())
    assert r.status_code == 422
    assert r.json()["error"]["details"] == {"layer_index": 0, "field": "style.rule.ramp"}


@pytest.mark.parametrize(("body", "field"), [({"position": {}}, "position"),
                                             ({"position": "2"}, "position"),
                                             ({"position": True}, "position"),
                                             ({"visible": "no"}, "visible")])
def test_new_layer_with_a_bad_field_is_refused_and_not_made(owner: ApiClient, body: dict,
                                                           field: str) -> None:
    """Found by schemathesis: `"position": {}` on create was a 500."""
    m = owner.create_map("Layers")
    r = owner.post(f"/api/v1/maps/{m['id']}/layers", json={"name": "New", **body})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["field"] == field and field in r.json()["error"]["message"]
    assert len(owner.get(f"/api/v1/maps/{m['id']}/layers").json()) == len(m["layers"])
