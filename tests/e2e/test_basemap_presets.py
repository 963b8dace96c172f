"""Basemap presets in the browser: a visitor switches basemap with the layer control, the
map's own basemap is shown on its page and in the embed, and every tile comes from the
loopback tile stand-ins (XYZ and WMTS), allowed by the CSP (a blocked tile would be a
console error and fail the test)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer, ensure_assets, start_server
from tests.servers import stop_process
from tests.stand_ins import OutsideServices, outside_services

PASSWORD = "correct horse battery staple"
_makers = itertools.count()


@pytest.fixture(scope="module")
def services() -> Iterator[OutsideServices]:
    with outside_services() as running:
        yield running


@pytest.fixture(scope="module")
def preset_server(tmp_path_factory: pytest.TempPathFactory, services: OutsideServices) -> Iterator[LiveServer]:
    ensure_assets()
    presets = [
        {"name": "street", "title": "Streets (test XYZ)", "type": "xyz", "url": services.url + "/xyz/{z}/{x}/{y}.png",
         "attribution": "Test streets", "max_zoom": 18},
        {"name": "aerial", "title": "Aerial (test WMTS)", "type": "wmts", "url": services.url + "/wmts",
         "layer": "ortho", "attribution": "Test aerial", "max_zoom": 17},
    ]
    server = start_server(tmp_path_factory.mktemp("presets") / "var", WAYMARK_BASEMAPS=json.dumps(presets))
    yield server
    stop_process(server.process)


def make_map(page: Page, server: LiveServer, **fields) -> str:  # type: ignore[no-untyped-def]
    r = page.request.post(server.url + "/api/v1/auth/signup", data={
        "email": f"maker{next(_makers)}@example.com", "password": PASSWORD, "display_name": "Maker"})
    assert r.ok, r.text()
    csrf = r.json()["csrf_token"]
    r = page.request.post(server.url + "/api/v1/maps", data={"title": "Preset map", "visibility": "public", **fields},
                          headers={"X-CSRF-Token": csrf})
    assert r.ok, r.text()
    return r.json()["id"]


def tiles_from(services: OutsideServices, path_prefix: str) -> int:
    return sum(1 for path, _, _ in services.requests if path.startswith(path_prefix))


def test_visitor_switches_basemap_with_the_layer_control(page: Page, preset_server: LiveServer,
                                                          services: OutsideServices, screenshot) -> None:  # type: ignore[no-untyped-def]
    map_id = make_map(page, preset_server)
    page.context.clear_cookies()
    page.goto(f"{preset_server.url}/m/{map_id}#5/46/5")
    expect(page.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)
    assert page.locator("#map").get_attribute("data-basemap-shown") == "natural-earth"
    before = tiles_from(services, "/xyz/")
    control = page.locator(".leaflet-control-layers")
    control.hover()
    control.get_by_label("Streets (test XYZ)").check()
    expect(page.locator("#map")).to_have_attribute("data-basemap-shown", "street")
    page.wait_for_function("() => document.querySelectorAll('#map img.leaflet-tile-loaded').length >= 4")
    assert tiles_from(services, "/xyz/") > before
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("Test streets")
    expect(page.locator(".leaflet-control-attribution")).not_to_contain_text("Natural Earth")
    screenshot(page, "basemap-switched-xyz")
    # with the keyboard: the control opens on focus, arrows pick another radio
    control.get_by_label("Aerial (test WMTS)").focus()
    page.keyboard.press("Space")
    expect(page.locator("#map")).to_have_attribute("data-basemap-shown", "aerial")
    page.wait_for_function("() => document.querySelectorAll('#map img.leaflet-tile-loaded').length >= 4")
    assert tiles_from(services, "/wmts") > 0


def test_the_maps_basemap_is_shown_on_its_page_and_in_the_embed(page: Page, preset_server: LiveServer,
                                                                 services: OutsideServices, screenshot) -> None:  # type: ignore[no-untyped-def]
    map_id = make_map(page, preset_server, basemap="aerial", default_view={"lat": 45.76, "lon": 4.84, "zoom": 9})
    for path in (f"/m/{map_id}", f"/m/{map_id}/embed"):
        before = tiles_from(services, "/wmts")
        page.goto(preset_server.url + path)
        expect(page.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)
        expect(page.locator("#map")).to_have_attribute("data-basemap-shown", "aerial")
        page.wait_for_function("() => document.querySelectorAll('#map img.leaflet-tile-loaded').length >= 4")
        assert tiles_from(services, "/wmts") > before
        assert page.evaluate("window.waymark.map.getZoom()") == 9
        center = page.evaluate("window.waymark.map.getCenter()")
        assert abs(center["lat"] - 45.76) < 0.01 and abs(center["lng"] - 4.84) < 0.01
    screenshot(page, "basemap-embed-aerial")


def test_owner_sets_view_basemap_and_controls_and_the_embed_follows(page: Page, preset_server: LiveServer,
                                                                   services: OutsideServices, screenshot) -> None:  # type: ignore[no-untyped-def]
    map_id = make_map(page, preset_server)
    page.goto(f"{preset_server.url}/m/{map_id}")
    expect(page.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)
    search = page.get_by_role("combobox", name="Search places and features of this map")
    search.fill("Lyon")
    search.press("Enter")
    page.wait_for_function("() => Math.abs(window.waymark.map.getCenter().lat - 45.76) < 0.05", timeout=15000)
    page.get_by_role("button", name="Settings").click()
    dialog = page.get_by_role("dialog", name="Map settings")
    dialog.get_by_label("Title").fill("Lyon walks")
    dialog.get_by_label("Description").fill("Walks by the rivers. More at https://example.org/lyon\n<b>not bold</b>")
    dialog.get_by_role("button", name="Use the current view").click()
    expect(dialog.locator("#settings-view")).to_contain_text("45.7")
    dialog.get_by_label("Basemap", exact=True).select_option(label="Aerial (test WMTS)")
    dialog.get_by_label("Search box in the embed").uncheck()
    dialog.get_by_label("Legend in the embed").check()
    screenshot(page, "map-settings")
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".map-title")).to_have_text("Lyon walks")
    description = page.locator("#map-description")
    expect(description.get_by_role("link", name="https://example.org/lyon")).to_have_attribute("href", "https://example.org/lyon")
    expect(description).to_contain_text("<b>not bold</b>")  # plain text stays plain
    expect(page.locator("#map")).to_have_attribute("data-basemap-shown", "aerial")
    saved = page.request.get(f"{preset_server.url}/api/v1/maps/{map_id}").json()
    assert saved["basemap"] == "aerial" and abs(saved["default_view"]["lat"] - 45.76) < 0.05
    assert saved["controls"]["embed"]["search"] is False

    # the reloaded page shows the same, the description's link rendered by the server
    page.goto(f"{preset_server.url}/m/{map_id}")
    expect(page.locator("#map-description a[href='https://example.org/lyon']")).to_be_visible()
    expect(page.locator("#map")).to_have_attribute("data-basemap-shown", "aerial")

    embed = page.context.new_page()
    embed.goto(f"{preset_server.url}/m/{map_id}/embed")
    expect(embed.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)
    expect(embed.locator("#map")).to_have_attribute("data-basemap-shown", "aerial")
    assert abs(embed.evaluate("window.waymark.map.getCenter().lat") - 45.76) < 0.05
    assert embed.evaluate("window.waymark.map.getZoom()") == saved["default_view"]["zoom"]
    expect(embed.get_by_role("combobox", name="Search places and features of this map")).to_be_hidden()
    expect(embed.get_by_role("region", name="Legend")).to_be_visible()
    embed.wait_for_function("() => document.querySelectorAll('#map img.leaflet-tile-loaded').length >= 4")
    screenshot(embed, "embed-after-settings")
    embed.close()
