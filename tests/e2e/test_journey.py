"""A new user's journey through the map editor, in a real browser.

sign up -> create a map -> draw a marker, a line and a polygon -> set properties and a
style -> reload: all persisted -> import a GPX by drag-and-drop -> export GeoJSON and import
it back -> share as unlisted -> an anonymous browser sees the map without editing tools
-> and does not see a private map.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.conftest import GEO_DATA
from tests.e2e.conftest import REPO, SCREENSHOTS
from tests.servers import wait_until

GPX = GEO_DATA / "gpx" / "openlayers" / "fells_loop.gpx"
PASSWORD = "correct horse battery staple"


def click_map(page: Page, fx: float, fy: float) -> None:
    """Click the map at a fraction of its width and height."""
    box = page.locator("#map").bounding_box()
    assert box
    page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)


def wait_map_ready(page: Page) -> None:
    expect(page.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)


def feature_names(page: Page) -> list[str]:
    return page.evaluate("""() => {
        const out = [];
        for (const e of window.waymark.layers.values())
            for (const l of e.group.getLayers()) out.push(l.feature.properties.name || '');
        return out.sort();
    }""")


def api_get(page: Page, url: str):  # type: ignore[no-untyped-def]
    response = page.request.get(url)
    assert response.ok, response.text()
    return response.json()


def fill_feature(page: Page, name: str, description: str = "", extra: tuple[str, str] | None = None) -> None:
    form = page.locator("#feature-form")
    expect(form).to_be_visible()
    expect(form.locator("#feature-version")).to_have_text("1")  # the new feature's form
    form.get_by_label("Name", exact=True).fill(name)
    if description:
        form.get_by_label("Description").fill(description)
    if extra:
        form.get_by_role("button", name="Add property").click()
        form.locator(".prop-row .prop-key").last.fill(extra[0])
        form.locator(".prop-row .prop-value").last.fill(extra[1])
    form.get_by_role("button", name="Save properties").click()
    expect(page.locator(".notice-ok", has_text="Properties saved")).to_be_visible()
    page.locator(".notice-ok .notice-close").first.click()


def sign_up(page: Page, email: str, name: str) -> None:
    page.goto("/")
    page.get_by_role("link", name="Sign up").first.click()
    page.get_by_label("Your name").fill(name)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/dashboard")


def drop_file(page: Page, selector: str, path: Path, mime: str) -> None:
    data = base64.b64encode(path.read_bytes()).decode()
    transfer = page.evaluate_handle("""([name, b64, mime]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, { type: mime }));
        return dt;
    }""", [path.name, data, mime])
    page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_new_user_journey(page: Page, browser, console, screenshot, base_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/")
    expect(page.get_by_role("heading", name="Public maps")).to_be_visible()
    screenshot(page, "01-home")

    sign_up(page, "newcomer@example.com", "Nova Newcomer")
    screenshot(page, "02-dashboard-empty")

    # ---- create a map ----------------------------------------------------------------
    page.get_by_label("Title of the new map").fill("Weekend in the hills")
    page.get_by_role("button", name="Create map").click()
    page.wait_for_url("**/m/*")
    map_id = page.url.split("/m/")[1].split("#")[0]
    wait_map_ready(page)
    expect(page.get_by_role("toolbar", name="Drawing tools")).to_be_visible()

    # ---- draw a marker, a line and a polygon -----------------------------------------
    toolbar = page.get_by_role("toolbar", name="Drawing tools")
    toolbar.get_by_role("button", name="Point").click()
    click_map(page, 0.30, 0.40)
    fill_feature(page, "Café Aurora", "Good coffee, better view", ("rating", "5"))

    toolbar.get_by_role("button", name="Line").click()
    click_map(page, 0.40, 0.60)
    click_map(page, 0.50, 0.50)
    click_map(page, 0.60, 0.62)
    toolbar.get_by_role("button", name="Finish").click()
    fill_feature(page, "Ridge walk")

    toolbar.get_by_role("button", name="Polygon").click()
    click_map(page, 0.65, 0.25)
    click_map(page, 0.80, 0.25)
    click_map(page, 0.80, 0.45)
    click_map(page, 0.65, 0.45)
    toolbar.get_by_role("button", name="Finish").click()
    fill_feature(page, "Picnic meadow", "Shade under the oaks")

    # ---- style the layer ---------------------------------------------------------------
    page.get_by_role("tab", name="Layers").click()
    layer_item = page.locator(".layer-item").first
    layer_item.get_by_text("Name, style and popup").click()
    layer_item.get_by_label("Name", exact=True).fill("Our places")
    layer_item.get_by_label("Line colour").fill("#d6336c")
    layer_item.get_by_label("Line weight").fill("5")
    layer_item.get_by_label("Marker colour").fill("#2b8a3e")
    layer_item.get_by_label("Fill colour").fill("#f59f00")
    layer_item.get_by_role("button", name="Save layer").click()
    expect(page.locator(".notice-ok", has_text="Our places")).to_be_visible()

    # ---- reload: everything persisted ---------------------------------------------------
    page.reload()
    wait_map_ready(page)
    page.locator(".leaflet-control-container button[aria-label='Fit to data']").click()
    wait_until(lambda: feature_names(page) == ["Café Aurora", "Picnic meadow", "Ridge walk"],
               "the three features drawn after the reload")
    info = api_get(page, f"/api/v1/maps/{map_id}")
    layer = info["layers"][0]
    assert layer["name"] == "Our places"
    assert layer["style"]["color"] == "#d6336c" and layer["style"]["weight"] == 5
    assert layer["style"]["markerColor"] == "#2b8a3e"
    features = api_get(page, f"/api/v1/maps/{map_id}/layers/{layer['id']}/features")["features"]
    by_name = {f["properties"].get("name"): f for f in features}
    assert by_name["Café Aurora"]["geometry"]["type"] == "Point"
    assert by_name["Café Aurora"]["properties"]["rating"] == "5"
    assert by_name["Café Aurora"]["properties"]["description"] == "Good coffee, better view"
    assert by_name["Ridge walk"]["geometry"]["type"] == "LineString"
    assert len(by_name["Ridge walk"]["geometry"]["coordinates"]) == 3
    assert by_name["Picnic meadow"]["geometry"]["type"] == "Polygon"
    pin = page.locator("img.wm-pin").first
    expect(pin).to_have_attribute("src", re.compile("2b8a3e"))

    # popups show name, description and properties
    page.locator(".wm-pin").first.click()
    popup = page.locator(".leaflet-popup")
    expect(popup).to_be_visible()
    expect(popup).to_contain_text("Café Aurora")
    expect(popup).to_contain_text("Good coffee")
    expect(popup).to_contain_text("rating")
    # the editor screenshot shown in the README
    page.locator(".layer-item details").first.evaluate("d => d.open = true")
    page.wait_for_timeout(400)
    shot = screenshot(page, "04-editor")
    shutil.copyfile(shot, REPO / "docs" / "screenshot.png")
    page.locator(".leaflet-popup-close-button").click()

    # ---- import a GPX by drag-and-drop ----------------------------------------------------
    page.get_by_role("tab", name="Import").click()
    drop_file(page, "#drop-zone", GPX, "application/gpx+xml")
    expect(page.locator("#import-status")).to_contain_text("Imported", timeout=20000)
    wait_for_layers = page.evaluate("() => window.waymark.layers.size")
    assert wait_for_layers >= 2
    screenshot(page, "03-editor-after-gpx-import")

    # ---- export GeoJSON and import it back ----------------------------------------------
    page.locator("#export-menu summary").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="GeoJSON").click()
    exported = tmp_path / "export.geojson"
    download_info.value.save_as(exported)
    collection = json.loads(exported.read_text())
    total = len(collection["features"])
    assert total >= 4
    count_before = page.evaluate("() => [...window.waymark.layers.values()].reduce((n, e) => n + e.group.getLayers().length, 0)")
    page.get_by_role("tab", name="Import").click()
    page.set_input_files("#import-file", str(exported))
    expect(page.locator("#import-status")).to_contain_text(f"Imported {total} feature", timeout=20000)
    # the status line comes first; the new layer's features are drawn just after it
    page.wait_for_function(
        "want => [...window.waymark.layers.values()].reduce((n, e) => n + e.group.getLayers().length, 0) === want",
        arg=count_before + total, timeout=10000)
    count_after = count_before + total

    # ---- share as unlisted ------------------------------------------------------------------
    page.get_by_role("button", name="Share").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Unlisted").check()
    expect(page.locator("#visibility-badge")).to_have_text("unlisted")
    link = dialog.get_by_label("Link to this map").input_value()
    assert link.endswith(f"/m/{map_id}")
    expect(dialog.get_by_label("Embed code", exact=True)).to_have_value(f'<iframe src="{link}/embed" width="100%" height="450" style="border:0" loading="lazy" title="Weekend in the hills"></iframe>')
    screenshot(page, "05-share-dialog")
    dialog.get_by_role("button", name="Close").click()

    # a second, private map
    private = page.evaluate("""async () => {
        const r = await fetch('/api/v1/maps', {method: 'POST', headers: {'Content-Type': 'application/json',
            'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content},
            body: JSON.stringify({title: 'Secret garden'})});
        return (await r.json()).id;
    }""")

    # ---- an anonymous visitor ---------------------------------------------------------------
    anon_context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base_url)
    anon = console.attach(anon_context.new_page())
    anon.goto(link)
    wait_map_ready(anon)
    expect(anon.locator(".wm-pin").first).to_be_visible()
    assert len(feature_names(anon)) == count_after
    expect(anon.get_by_role("toolbar", name="Drawing tools")).to_have_count(0)
    expect(anon.get_by_role("tab", name="Import")).to_have_count(0)
    expect(anon.get_by_role("tab", name="Feature")).to_have_count(0)
    assert anon.evaluate("() => window.waymark.canEdit") is False
    screenshot(anon, "06-anonymous-view")

    anon.goto(f"{link}/embed")
    wait_map_ready(anon)
    expect(anon.locator(".topbar")).to_have_count(0)
    expect(anon.locator(".wm-pin").first).to_be_visible()
    screenshot(anon, "07-embed")

    console.allow("404")
    response = anon.goto(link.replace(map_id, private))
    assert response is not None and response.status == 404
    expect(anon.get_by_role("heading", name="Not found")).to_be_visible()
    response = anon.goto(link.replace(map_id, private) + "/embed")
    assert response is not None and response.status == 404
    anon.goto("/")
    expect(anon.get_by_text("Secret garden")).to_have_count(0)
    anon_context.close()
    assert SCREENSHOTS.joinpath("04-editor.png").is_file()
