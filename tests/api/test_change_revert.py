"""Per-change revert: invert exactly one change, keep later ones, refuse (409, naming them)
when a later change touched the same thing. On SQLite and PostgreSQL (`db_clients`)."""

from __future__ import annotations

from typing import Any

from tests.api.test_editing import Layer, _error, editor, layer, owner, pt  # noqa: F401 - fixtures
from tests.conftest import ApiClient


def change_of(layer: Layer, op: str, feature_id: str | None = None) -> dict[str, Any]:  # noqa: F811 - fixture
    """The newest change of this kind (of this feature)."""
    return next(c for c in layer.history()
                if c["op"] == op and (feature_id is None or c["feature_id"] == feature_id))


def revert_change(layer: Layer, change_id: int, client: ApiClient | None = None, **kw: Any):  # type: ignore[no-untyped-def]  # noqa: F811 - fixture
    return (client or layer.c).post(f"{layer.url}/changes/{change_id}/revert", **kw)


def test_revert_one_rename_keeps_a_later_restyle_of_the_layer(layer: Layer, editor: ApiClient) -> None:  # noqa: F811 - fixture
    a = layer.add(pt(1, 1), {"name": "Old name"})
    b = layer.add(pt(2, 2), {"name": "Other"})
    r = layer.c.patch(layer.feature_url(a["id"]), json={"properties": {"name": "New name"}},
                      headers={"If-Match": '"1"'})
    assert r.status_code == 200
    rename = change_of(layer, "feature.update", a["id"])
    # later, unrelated: the layer is restyled, another feature edited (by someone else)
    style = {**layer.info()["style"], "color": "#e03131"}
    assert layer.c.patch(layer.url, json={"style": style}).status_code == 200
    assert editor.patch(layer.feature_url(b["id"]), json={"properties": {"name": "Other 2"}}).status_code == 200
    version = layer.info()["version"]

    r = revert_change(layer, rename["id"])
    assert r.status_code == 200, r.text
    assert r.json()["version"] == version + 1  # one new version
    now = layer.features()
    assert now[a["id"]]["properties"] == {"name": "Old name"}
    assert now[a["id"]]["version"] == 3  # an ordinary edit of the feature
    assert now[b["id"]]["properties"] == {"name": "Other 2"}  # the later changes survive
    assert layer.info()["style"]["color"] == "#e03131"
    ops = [c["op"] for c in layer.history(limit=2)]
    assert ops == ["change.revert", "feature.update"]
    assert layer.history(limit=1)[0]["after"] == {"change": rename["id"], "op": "feature.update",
                                                   "layer_version": rename["layer_version"]}


def test_later_change_to_the_same_feature_is_named_and_nothing_changes(layer: Layer, editor: ApiClient) -> None:  # noqa: F811 - fixture
    a = layer.add(pt(1, 1), {"name": "One"})
    assert layer.c.patch(layer.feature_url(a["id"]), json={"properties": {"name": "Two"}}).status_code == 200
    first = change_of(layer, "feature.update", a["id"])
    assert editor.patch(layer.feature_url(a["id"]), json={"properties": {"name": "Three"}}).status_code == 200
    before = layer.state()

    err = _error(revert_change(layer, first["id"]), 409, "later_changes")
    assert "Eddie Editor edited" in err["message"] and "1 later change" in err["message"]
    assert [c["user"] for c in err["details"]["later"]] == ["Eddie Editor"]
    assert layer.state() == before and layer.features()[a["id"]]["properties"] == {"name": "Three"}
    # the latest change can be reverted; then the first one is no longer alone either
    latest = change_of(layer, "feature.update", a["id"])
    assert revert_change(layer, latest["id"]).status_code == 200
    assert layer.features()[a["id"]]["properties"] == {"name": "Two"}


def test_revert_an_add_and_a_delete(layer: Layer) -> None:  # noqa: F811 - fixture
    a = layer.add(pt(1, 1), {"name": "Added"})
    b = layer.add(pt(3, 4), {"name": "Deleted"})
    assert layer.c.delete(layer.feature_url(b["id"])).status_code == 204
    assert revert_change(layer, change_of(layer, "feature.create", a["id"])["id"]).status_code == 200
    assert revert_change(layer, change_of(layer, "feature.delete", b["id"])["id"]).status_code == 200
    now = layer.features()
    assert set(now) == {b["id"]}  # same id, same shape and properties
    assert now[b["id"]]["geometry"] == pt(3, 4) and now[b["id"]]["properties"] == {"name": "Deleted"}
    assert layer.info()["feature_count"] == 1
    # reverting the same change twice: the revert itself is the later change
    err = _error(revert_change(layer, change_of(layer, "feature.delete", b["id"])["id"]), 409,
                 "later_changes")
    assert "Olive Owner added" in err["message"]


def test_revert_a_layer_settings_change_keeps_other_settings(layer: Layer) -> None:  # noqa: F811 - fixture
    assert layer.c.patch(layer.url, json={"name": "Renamed"}).status_code == 200
    rename = change_of(layer, "layer.update")
    style = {**layer.info()["style"], "color": "#2f9e44"}
    assert layer.c.patch(layer.url, json={"style": style}).status_code == 200
    assert revert_change(layer, rename["id"]).status_code == 200
    info = layer.info()
    assert info["name"] == "Layer 1" and info["style"]["color"] == "#2f9e44"
    restyle = change_of(layer, "layer.update")  # the revert's own record is newest
    assert restyle["after"]["name"] == "Layer 1"
    # a later change of the same setting blocks it
    assert layer.c.patch(layer.url, json={"name": "Again"}).status_code == 200
    _error(revert_change(layer, rename["id"]), 409, "later_changes")


def test_revert_an_import_unless_its_features_changed_since(layer: Layer) -> None:  # noqa: F811 - fixture
    keep = layer.add(pt(0, 0), {"name": "Mine"})
    data = b'{"type":"FeatureCollection","features":[' + b",".join(
        b'{"type":"Feature","geometry":{"type":"Point","coordinates":[%d,1]},"properties":{"n":%d}}'
        % (i, i) for i in range(3)) + b"]}"
    r = layer.c.post(layer.url + "/import", content=data, params={"format": "geojson"},
                     headers={"Content-Type": "application/geo+json"})
    assert r.status_code == 201, r.text
    imported = change_of(layer, "layer.import")
    assert len(layer.features()) == 4
    assert revert_change(layer, imported["id"]).status_code == 200
    assert set(layer.features()) == {keep["id"]}
    assert layer.info()["feature_count"] == 1


def test_import_revert_refused_after_an_imported_feature_was_edited(layer: Layer) -> None:  # noqa: F811 - fixture
    data = b'{"type":"FeatureCollection","features":[{"type":"Feature","geometry":' \
           b'{"type":"Point","coordinates":[1,2]},"properties":{"a":1}}]}'
    r = layer.c.post(layer.url + "/import", content=data, params={"format": "geojson"},
                     headers={"Content-Type": "application/geo+json"})
    assert r.status_code == 201, r.text
    imported = change_of(layer, "layer.import")
    fid = next(iter(layer.features()))
    assert layer.c.patch(layer.feature_url(fid), json={"properties": {"a": 2}}).status_code == 200
    err = _error(revert_change(layer, imported["id"]), 409, "later_changes")
    assert "imported features" in err["message"]
    assert layer.features()[fid]["properties"] == {"a": 2}


def test_errors_and_authorization(db_clients, layer: Layer) -> None:  # type: ignore[no-untyped-def]  # noqa: F811 - fixture
    a = layer.add(pt(1, 1), {"name": "x"})
    created = change_of(layer, "feature.create", a["id"])
    _error(revert_change(layer, 999_999), 404)
    # If-Match: the layer version the client saw
    stale = layer.info()["version"] - 1
    err = _error(revert_change(layer, created["id"], headers={"If-Match": f'"{stale}"'}), 412)
    assert err["details"]["current_version"] == stale + 1
    # a reader of a public map and a stranger cannot revert; anonymous needs to log in
    assert layer.c.patch(f"/api/v1/maps/{layer.map_id}", json={"visibility": "public"}).status_code == 200
    stranger = db_clients()
    stranger.signup("stranger@example.com")
    _error(revert_change(layer, created["id"], client=stranger), 403)
    _error(revert_change(layer, created["id"], client=db_clients()), 401)
    assert a["id"] in layer.features()
    # a whole-layer revert is not one change: it is undone by another layer revert
    assert layer.revert(layer.info()["version"]).status_code == 200
    err = _error(revert_change(layer, change_of(layer, "layer.revert")["id"]), 422, "not_revertible")
    assert "layer.revert" in err["message"]


def test_history_says_old_and_new_per_property_and_style_key(layer: Layer) -> None:  # noqa: F811 - fixture
    a = layer.add(pt(1, 1), {"name": "Old", "kind": "mill", "marker-color": "#111111"})
    r = layer.c.patch(layer.feature_url(a["id"]), json={
        "geometry": pt(2, 2), "properties": {"name": "New", "kind": "mill", "stroke": "#e03131"}})
    assert r.status_code == 200, r.text
    edit = change_of(layer, "feature.update", a["id"])
    assert edit["diff"] == [
        {"what": "geometry", "key": None},
        {"what": "property", "key": "name", "old": "Old", "new": "New"},
        {"what": "property", "key": "marker-color", "old": "#111111", "new": None},
        {"what": "property", "key": "stroke", "old": None, "new": "#e03131"},
    ]  # the unchanged "kind" is not listed
    assert edit["before"]["properties"]["name"] == "Old"  # before/after stay for older clients

    info = layer.info()
    style = {**info["style"], "color": "#2f9e44", "label": {"text": "{name}", "show": "always"}}
    assert layer.c.patch(layer.url, json={"name": "Mills", "style": style}).status_code == 200
    restyle = change_of(layer, "layer.update")
    assert restyle["diff"] == [
        {"what": "layer", "key": "name", "old": info["name"], "new": "Mills"},
        {"what": "style", "key": "color", "old": info["style"]["color"], "new": "#2f9e44"},
        {"what": "style", "key": "label", "old": None, "new": {"text": "{name}", "show": "always"}},
    ]
    assert change_of(layer, "feature.create", a["id"])["diff"] == []
