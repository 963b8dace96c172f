"""One atomic edit across several layers of a map (`POST /maps/{map}/batch`): every layer
changes, one new version each, or nothing does — the failure names the layer. On SQLite and
PostgreSQL (`db_clients`)."""

from __future__ import annotations

from tests.api.test_editing import Layer, _error, editor, layer, owner, pt  # noqa: F401 - fixtures


def second_layer(layer: Layer) -> Layer:  # noqa: F811 - fixture
    r = layer.c.post(f"/api/v1/maps/{layer.map_id}/layers", json={"name": "Second"})
    assert r.status_code == 201, r.text
    return Layer(layer.c, layer.map_id, r.json()["id"])


def map_batch(layer: Layer, *groups: tuple[Layer, list[dict]]):  # type: ignore[no-untyped-def]  # noqa: F811 - fixture
    body = {"layers": [{"layer": lay.url.rsplit("/", 1)[1], "operations": ops} for lay, ops in groups]}
    return layer.c.post(f"/api/v1/maps/{layer.map_id}/batch", json=body)


def test_edits_in_two_layers_are_one_request_one_version_per_layer(layer: Layer) -> None:  # noqa: F811 - fixture
    other = second_layer(layer)
    a = layer.add(pt(1, 1), {"name": "A"})
    b = other.add(pt(2, 2), {"name": "B"})
    c = other.add(pt(3, 3), {"name": "C"})
    v1, v2 = layer.info()["version"], other.info()["version"]
    r = map_batch(layer,
                  (other, [{"op": "update", "id": b["id"], "version": 1, "properties": {"name": "B", "marker-color": "#2f9e44"}},
                           {"op": "delete", "id": c["id"], "version": 1}]),
                  (layer, [{"op": "update", "id": a["id"], "version": 1, "properties": {"name": "A", "marker-color": "#2f9e44"}}]))
    assert r.status_code == 200, r.text
    out = r.json()["layers"]
    assert [g["layer_version"] for g in out] == [v2 + 1, v1 + 1]  # in the order asked
    assert out[0]["results"] == [{"op": "update", "id": b["id"], "version": 2}, {"op": "delete", "id": c["id"]}]
    assert layer.features()[a["id"]]["properties"]["marker-color"] == "#2f9e44"
    assert set(other.features()) == {b["id"]}
    assert [h["layer_version"] for h in other.history(limit=2)] == [v2 + 1, v2 + 1]


def test_one_stale_feature_in_any_layer_changes_nothing_and_is_named(layer: Layer, editor) -> None:  # type: ignore[no-untyped-def]  # noqa: F811 - fixture
    other = second_layer(layer)
    a = layer.add(pt(1, 1), {"name": "A"})
    b = other.add(pt(2, 2), {"name": "B"})
    assert editor.patch(other.feature_url(b["id"]), json={"properties": {"name": "B by Eddie"}}).status_code == 200
    before = (layer.state(), other.state())
    r = map_batch(layer, (layer, [{"op": "delete", "id": a["id"], "version": 1}]),
                  (other, [{"op": "update", "id": b["id"], "version": 1, "properties": {"name": "mine"}}]))
    err = _error(r, 412)
    layer_id = other.url.rsplit("/", 1)[1]
    assert err["details"]["layer"] == layer_id and err["details"]["layer_index"] == 1
    assert err["details"]["index"] == 0 and layer_id in err["message"]
    assert (layer.state(), other.state()) == before  # the first layer's delete rolled back too
    assert a["id"] in layer.features()


def test_bad_requests_name_the_problem(layer: Layer) -> None:  # noqa: F811 - fixture
    lid = layer.url.rsplit("/", 1)[1]
    url = f"/api/v1/maps/{layer.map_id}/batch"
    assert _error(layer.c.post(url, json={}), 422, "invalid")["details"] == {"field": "layers"}
    err = _error(layer.c.post(url, json={"layers": [{"operations": []}]}), 422, "invalid")
    assert err["details"] == {"field": "layer", "layer_index": 0}
    err = _error(layer.c.post(url, json={"layers": [{"layer": lid, "operations": []}] * 2}), 422, "invalid")
    assert "listed twice" in err["message"] and err["details"]["layer_index"] == 1
    err = _error(layer.c.post(url, json={"layers": [{"layer": "nope", "operations": [{"op": "delete", "id": "x"}]}]}), 404)
    assert err["details"]["layer"] == "nope"
