"""The search box: a visitor searches a city and lands there (Enter goes to the first
result), finds one of the map's own features (and its popup opens), all from the keyboard."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.test_basemap import demo_map, offline  # noqa: F401 - fixture


def center(page: Page) -> dict:
    return page.evaluate("(() => { const c = window.waymark.map.getCenter(); return {lat: c.lat, lng: c.lng, zoom: window.waymark.map.getZoom()}; })()")


def test_search_a_city_and_land_there(page: Page, demo_map: str, screenshot) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    offsite = offline(page)
    page.goto(f"/m/{demo_map}")
    expect(page.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)
    box = page.get_by_role("combobox", name="Search places and features of this map")
    box.focus()
    page.keyboard.type("Lyon")
    page.keyboard.press("Enter")
    page.wait_for_function("""() => { const c = window.waymark.map.getCenter();
        return Math.abs(c.lat - 45.76) < 0.05 && Math.abs(c.lng - 4.83) < 0.05 && window.waymark.map.getZoom() >= 10; }""",
                           timeout=15000)
    page.wait_for_function("() => window.waymark.basemap.names.has('Lyon')", timeout=15000)
    screenshot(page, "search-lyon")
    assert offsite == []


def test_search_lists_map_features_and_places_and_keyboard_picks(page: Page, demo_map: str, screenshot) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    page.goto(f"/m/{demo_map}")
    expect(page.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)
    name = page.evaluate("[...window.waymark.layers.values()][0].group.getLayers().map((l) => l.feature.properties.name).filter(Boolean)[0]")
    box = page.get_by_role("combobox", name="Search places and features of this map")
    box.fill(name.split()[0])
    results = page.get_by_role("listbox", name="Search results")
    expect(results).to_be_visible()
    expect(results.get_by_text("On this map")).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    screenshot(page, "search-results")
    box.press("ArrowDown")
    expect(results.get_by_role("option").first).to_have_attribute("aria-selected", "true")
    box.press("Enter")
    expect(results).to_be_hidden()
    expect(page.locator(".leaflet-popup-content h3")).to_have_text(name, timeout=10000)
    box.fill("Timbuktu")
    expect(results.get_by_role("option", name="Timbuktu Mali")).to_be_visible()
    expect(results.get_by_role("option", name="Timbuktu Region · Mali")).to_be_visible()
    box.press("Escape")
    expect(results).to_be_hidden()
