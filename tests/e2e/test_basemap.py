"""The built-in basemap in a real browser: a visitor opens the demo map and sees land, sea
and named places, with every request answered by the Waymark server on loopback (the
archive read with range requests) and nothing fetched from anywhere else."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer
from waymark.db.engine import Database
from waymark.demo.seed import seed_demo

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]"}


@pytest.fixture(scope="module")
def demo_map(live_server: LiveServer) -> str:
    db = Database(f"sqlite:///{live_server.data_dir / 'waymark.db'}")
    try:
        map_id, _ = seed_demo(db)
    finally:
        db.dispose()
    return map_id


def offline(page: Page) -> list[str]:
    """Abort (and record) every request that would leave the machine."""
    offsite: list[str] = []

    def route(r):  # type: ignore[no-untyped-def]
        url = r.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in {"127.0.0.1", "localhost", "::1"}:
            r.continue_()
        else:
            offsite.append(url)
            r.abort()

    page.route("**/*", route)
    return offsite


def show(page: Page, lat: float, lon: float, zoom: int) -> None:
    """Jump there (no animation) and wait until every basemap tile on screen is drawn."""
    page.evaluate("([lat, lon, zoom]) => window.waymark.map.setView([lat, lon], zoom, {animate: false})",
                  [lat, lon, zoom])
    page.wait_for_function("""() => {
        const tiles = [...document.querySelectorAll('#map .leaflet-tile-container canvas')];
        return tiles.length > 0 && tiles.every((t) => t.classList.contains('leaflet-tile-loaded')
            && (t.style.opacity === '' || Number(t.style.opacity) >= 1));  // faded in
    }""", timeout=20000)


def wait_for_labels(page: Page, *names: str) -> None:
    page.wait_for_function("(names) => names.every((n) => window.waymark && window.waymark.basemap.names.has(n))",
                           arg=list(names), timeout=20000)


COLOUR_COUNTS = """() => {
    const count = {water: 0, land: 0, other: 0};
    for (const canvas of document.querySelectorAll('#map canvas.leaflet-tile')) {
        if (!canvas.width) continue;
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        for (let i = 0; i < data.length; i += 64) {
            const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
            if (Math.abs(r - 0xb9) < 6 && Math.abs(g - 0xd3) < 6 && Math.abs(b - 0xe6) < 6) count.water++;
            else if (Math.abs(r - 0xf4) < 6 && Math.abs(g - 0xf2) < 6 && Math.abs(b - 0xec) < 6) count.land++;
            else count.other++;
        }
    }
    return count;
}"""


def test_demo_map_shows_named_places_with_no_network(page: Page, demo_map: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    offsite = offline(page)
    ranges: list[str | None] = []
    statuses: list[int] = []
    page.on("request", lambda r: ".pmtiles" in r.url and ranges.append(r.headers.get("range")))
    page.on("response", lambda r: ".pmtiles" in r.url and statuses.append(r.status))
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"/m/{demo_map}")
    expect(page.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)
    wait_for_labels(page, "Edinburgh")
    assert page.locator("#map").get_attribute("data-basemap-shown") == "natural-earth"
    expect(page.locator("#map-description")).to_contain_text("A few places")
    assert "`" not in page.locator("#map-description").inner_text()  # no raw markup in the demo

    show(page, 30, 10, 2)
    wait_for_labels(page, "Tokyo", "Paris", "Cairo", "New York")
    counts = page.evaluate(COLOUR_COUNTS)
    assert counts["water"] > counts["land"] * 0.5 > 0, counts  # oceans and continents both drawn
    screenshot(page, "basemap-world")

    show(page, 56.5, -4, 6)
    wait_for_labels(page, "Glasgow", "Aberdeen", "Inverness")
    screenshot(page, "basemap-scotland")

    assert offsite == [], f"requests left the machine: {offsite}"
    assert ranges and all(r and r.startswith("bytes=") for r in ranges), ranges
    assert set(statuses) == {206}, statuses
    attribution = page.locator(".leaflet-control-attribution")
    expect(attribution).to_contain_text("Natural Earth")


COLOURS_AT = """([lat, lon]) => {  // the colours drawn within 4 px of a place (a label may cover the place)
    const map = window.waymark.map;
    const box = map.getContainer().getBoundingClientRect();
    const point = map.latLngToContainerPoint([lat, lon]);
    const [x, y] = [box.left + point.x, box.top + point.y];
    const levels = [...document.querySelectorAll('#map .leaflet-tile-container')];
    const top = levels.reduce((a, b) => (Number(b.style.zIndex) > Number(a.style.zIndex) ? b : a));  // this zoom
    for (const canvas of top.querySelectorAll('canvas.leaflet-tile')) {
        const r = canvas.getBoundingClientRect();
        if (x < r.left + 4 || x >= r.right - 4 || y < r.top + 4 || y >= r.bottom - 4) continue;
        const scale = canvas.width / r.width;
        const [px, py] = [Math.floor((x - r.left - 4) * scale), Math.floor((y - r.top - 4) * scale)];
        const data = canvas.getContext('2d').getImageData(px, py, Math.ceil(9 * scale), Math.ceil(9 * scale)).data;
        const colours = new Set();
        for (let i = 0; i < data.length; i += 4) {
            colours.add('#' + [data[i], data[i + 1], data[i + 2]].map((v) => v.toString(16).padStart(2, '0')).join(''));
        }
        return [...colours];
    }
    return null;
}"""
WATER, LAND = "#b9d3e6", "#f4f2ec"  # frontend/basemap.js


def test_lakes_first_level_areas_and_rivers_are_drawn_with_names(page: Page, demo_map: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    offsite = offline(page)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"/m/{demo_map}")
    expect(page.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)

    show(page, 31, -98, 7)  # Texas: a first-level area and the rivers across it, named
    wait_for_labels(page, "Texas")
    page.wait_for_function("() => ['Brazos', 'Rio Grande'].some((n) => window.waymark.basemap.names.has(n))",
                           timeout=20000)
    screenshot(page, "basemap-texas")

    show(page, -28, 135, 4)  # Australia: its states and territories
    wait_for_labels(page, "Queensland", "New South Wales", "Western Australia")
    screenshot(page, "basemap-australia")

    show(page, 48, 10, 5)  # Europe: its countries' first-level areas, the cities first
    wait_for_labels(page, "Paris", "Munich", "Niedersachsen")
    screenshot(page, "basemap-europe")

    show(page, 27, 95, 4)  # India and China: states and provinces named beside their cities
    wait_for_labels(page, "Delhi", "Chengdu", "Qinghai", "Xinjiang")
    screenshot(page, "basemap-india-china")

    show(page, 45, -84, 6)  # the Great Lakes are water, not land
    for lake in ([43.8, -87.0], [47.6, -87.5], [44.8, -82.4]):  # Michigan, Superior, Huron
        assert WATER in page.evaluate(COLOURS_AT, lake), lake
    assert WATER not in page.evaluate(COLOURS_AT, [43.0, -85.0])  # Michigan's land between them
    screenshot(page, "basemap-great-lakes")
    assert offsite == [], f"requests left the machine: {offsite}"
