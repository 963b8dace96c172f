"""Map settings through the API: controls on the page and in the embed (defaults, partial
updates, validation naming the field), recorded in history and kept by bundles; a layer's
popup template is validated with the style; the map page renders the description as text
with links."""

from __future__ import annotations

import pytest

from tests.conftest import ApiClient
from waymark.maps.state import DEFAULT_CONTROLS


def test_controls_default_then_partial_updates(alice: ApiClient) -> None:
    m = alice.create_map("Settings")
    assert m["controls"] == DEFAULT_CONTROLS
    base = f"/api/v1/maps/{m['id']}"
    r = alice.patch(base, json={"controls": {"embed": {"search": False}}})
    assert r.status_code == 200
    assert r.json()["controls"]["embed"] == {**DEFAULT_CONTROLS["embed"], "search": False}
    r = alice.patch(base, json={"controls": {"page": {"legend": True}}})
    controls = r.json()["controls"]
    assert controls["page"]["legend"] is True and controls["embed"]["search"] is False  # kept
    history = alice.get(f"{base}/history").json()
    assert history[0]["op"] == "map.update" and history[0]["after"]["controls"]["page"] == {"legend": True}
    bundle = alice.get(f"{base}/export", params={"format": "bundle"}).json()
    assert bundle["map"]["controls"]["embed"] == {"search": False}


@pytest.mark.parametrize(("controls", "field"), [
    ("all", "controls"), ({"sidebar": {}}, "controls"), ({"page": {"search": "yes"}}, "controls.page"),
    ({"embed": {"minimap": True}}, "controls.embed"),
])
def test_bad_controls_are_refused(alice: ApiClient, controls: object, field: str) -> None:
    m = alice.create_map("Settings")
    r = alice.patch(f"/api/v1/maps/{m['id']}", json={"controls": controls, "title": "Changed"})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["field"] == field
    assert alice.get(f"/api/v1/maps/{m['id']}").json()["title"] == "Settings"  # nothing changed


@pytest.mark.parametrize(("popup", "field"), [
    ([], "style.popup"), ({"fields": "name"}, "style.popup.fields"),
    ({"fields": [{"label": "x"}]}, "style.popup.fields[0]"), ({"fields": [], "others": "yes"}, "style.popup.others"),
    ({"fields": [], "colour": 1}, "style.popup.colour"),
])
def test_popup_template_is_validated(alice: ApiClient, popup: object, field: str) -> None:
    m = alice.create_map("Popups")
    url = f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}"
    r = alice.patch(url, json={"style": {"color": "#ff0000", "popup": popup}})
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field
    ok = alice.patch(url, json={"style": {"popup": {"fields": [{"key": "ele", "label": "Height"}], "others": True}}})
    assert ok.status_code == 200
    assert ok.json()["style"]["popup"] == {"fields": [{"key": "ele", "label": "Height"}], "others": True}


def test_description_is_text_with_links_on_the_page(alice: ApiClient) -> None:
    m = alice.create_map("Links", description='See https://example.org/a?b=1 & <script>alert(1)</script> "quoted"')
    html = alice.get(f"/m/{m['id']}").text
    assert '<a href="https://example.org/a?b=1" target="_blank" rel="noopener noreferrer nofollow">' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "&amp;" in html
