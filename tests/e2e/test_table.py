"""The feature table: open it from the map, filter by text, sort, page, select a feature
(from the keyboard; its popup opens on the map), and edit a value as an ordinary
versioned edit."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect

from tests.conftest import GEO_DATA
from tests.e2e.test_popups import start, upload


def test_filter_sort_page_select_and_edit(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    map_id, csrf = start(page)
    result = upload(page, map_id, csrf, "fells_loop.gpx", (GEO_DATA / "gpx/openlayers/fells_loop.gpx").read_bytes(),
                    "application/gpx+xml")
    layer = next(lay for lay in result["layers"] if lay["feature_count"] > 50)
    page.goto(f"/m/{map_id}")
    expect(page.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)
    name = page.locator(".layer-name", has_text="fells_loop")
    box = name.bounding_box()
    assert box and box["height"] < 2 * float(name.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")), box  # one line
    page.get_by_role("button", name="Feature table").click()
    drawer = page.get_by_role("region", name="Feature table")
    expect(drawer).to_be_visible()
    drawer.get_by_label("Layer shown in the table").select_option(label=layer["name"])
    count = drawer.locator(".table-count")
    expect(count).to_have_text(f"1–50 of {layer['feature_count']}")
    rows = drawer.locator("tbody tr")
    expect(rows).to_have_count(50)
    headers = [h.inner_text() for h in drawer.locator("thead th").all()]
    assert headers[0] == "name" and "gpx_type" not in headers and "sym" not in headers

    drawer.get_by_role("button", name="Next page").click()
    expect(count).to_have_text(re.compile(r"^51–\d+ of "))

    drawer.get_by_label("Filter rows by text").fill("intersection")
    expect(count).to_have_text(re.compile(r"^1–\d+ of \d+$"))
    expect(rows.first).to_contain_text("Intersection")
    total = int(count.inner_text().split(" of ")[1])
    assert 0 < total < layer["feature_count"]
    for row in rows.all():
        expect(row).to_contain_text("Intersection")

    drawer.get_by_role("button", name="Sort by name").click()
    expect(drawer.locator("th[aria-sort='ascending']")).to_have_text(re.compile("name"))
    names = [r.locator("td").first.inner_text() for r in rows.all()]
    assert names == sorted(names)
    screenshot(page, "feature-table")

    # keyboard: focus the first row, Enter selects its feature on the map
    rows.first.focus()
    page.keyboard.press("Enter")
    expect(rows.first).to_have_attribute("aria-selected", "true")
    expect(page.locator(".leaflet-popup-content h3")).to_have_text(names[0], timeout=10000)

    # editing a value is a versioned edit of that feature
    drawer.get_by_text("Edit values").click()
    cell = drawer.get_by_label(f"type of {names[0]}")
    cell.fill("Junction")
    cell.press("Enter")
    expect(page.locator(".save-status")).to_contain_text("Value saved")
    table = page.request.get(f"/api/v1/maps/{map_id}/layers/{layer['id']}/table",
                             params={"q": "Junction"}).json()
    assert table["total"] == 1
    assert table["rows"][0]["properties"]["name"] == names[0] and table["rows"][0]["version"] == 2
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()


def test_a_big_import_is_drawn_as_dots_at_once_and_the_view_goes_there(page: Page) -> None:
    map_id, csrf = start(page)
    layer_id = page.request.get(f"/api/v1/maps/{map_id}").json()["layers"][0]["id"]
    page.request.post(f"/api/v1/maps/{map_id}/layers/{layer_id}/features", headers={"X-CSRF-Token": csrf},
                      data={"geometry": {"type": "Point", "coordinates": [-3.19, 55.95]}, "properties": {"name": "Far away"}})
    points = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.80 + (i % 40) * 0.002, 45.74 + (i // 40) * 0.001]},
         "properties": {"name": f"Stop {i}"}} for i in range(1535)]}
    page.goto(f"/m/{map_id}")
    expect(page.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)
    page.get_by_role("tab", name="Import").click()
    page.locator("#import-target").select_option(layer_id)  # into the existing layer
    page.locator("#import-file").set_input_files(files=[{"name": "stops.geojson", "mimeType": "application/geo+json",
                                                         "buffer": json.dumps(points).encode()}])
    expect(page.locator("#import-status")).to_contain_text("Imported 1535 feature(s)", timeout=30000)
    # canvas dots, not 1,536 DOM pins; and the view moved to the imported stops
    assert page.locator(".leaflet-marker-icon").count() < 10
    assert page.locator("#map canvas.leaflet-zoom-animated").count() >= 1
    page.wait_for_function("""() => { const b = window.waymark.map.getBounds();
        return b.contains([45.75, 4.84]) && !b.contains([55.95, -3.19]); }""", timeout=15000)
