"""Live collaboration in a real browser: others' edits appear without a reload, and the
presence indicator shows who is on the map (embedded backends: one server process)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.test_editor import map_with_point, signup_api
from tests.e2e.test_journey import wait_map_ready


def test_others_edits_appear_live_and_presence_shows_who_is_here(
        page: Page, browser, console, base_url: str) -> None:  # type: ignore[no-untyped-def]
    csrf = signup_api(page, "Alice Live")
    h = {"X-CSRF-Token": csrf}
    map_id, layer, first = map_with_point(page, csrf, "Live map")
    assert page.request.patch(f"/api/v1/maps/{map_id}", headers=h,
                              data={"visibility": "public"}).status == 200
    page.goto(f"/m/{map_id}")
    wait_map_ready(page)

    visitor_context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base_url)
    try:
        viewer = console.attach(visitor_context.new_page())
        viewer.goto(f"/m/{map_id}")
        wait_map_ready(viewer)
        # presence, both ways
        expect(page.get_by_test_id("presence")).to_contain_text("1 visitor")
        expect(viewer.get_by_test_id("presence")).to_contain_text("Alice Live")
        assert viewer.evaluate("document.body.dataset.realtime") == "ok"

        features = f"/api/v1/maps/{map_id}/layers/{layer}/features"
        added = page.request.post(features, headers=h, data={
            "geometry": {"type": "Point", "coordinates": [-3.2, 55.96]},
            "properties": {"name": "Arrived live"}}).json()
        viewer.wait_for_function("id => !!window.waymark.findFeature(id)", arg=added["id"],
                                 timeout=10_000)
        r = page.request.patch(f"{features}/{first['id']}", data={"properties": {"name": "Renamed"}},
                               headers={**h, "If-Match": f'"{first["version"]}"'})
        assert r.status == 200, r.text()
        viewer.wait_for_function(
            "id => window.waymark.findFeature(id).feature.properties.name === 'Renamed'",
            arg=first["id"], timeout=10_000)
        r = page.request.delete(f"{features}/{added['id']}",
                                headers={**h, "If-Match": f'"{added["version"]}"'})
        assert r.status == 204, r.text()
        viewer.wait_for_function("id => !window.waymark.findFeature(id)", arg=added["id"],
                                 timeout=10_000)
        # the owner's own page got its echoes without duplicating anything
        assert page.evaluate("window.waymark.layers.values().next().value.group"
                             ".getLayers().length") == 1
    finally:
        visitor_context.close()
    # the visitor left: the indicator updates
    expect(page.get_by_test_id("presence")).not_to_contain_text("visitor", timeout=10_000)
