"""Editing tools in a real browser: undo/redo of one's own edits (with someone else editing
the same feature), per-change revert from the history, measuring, rectangles and circles,
snapping, multi-select (across layers, lasso)."""

from __future__ import annotations

import itertools
import math
import re

from playwright.sync_api import Page, expect

from tests.e2e.test_editor import map_with_point, open_feature, signup_api
from tests.e2e.test_journey import PASSWORD, click_map, wait_map_ready
from tests.servers import wait_until


def features(page: Page, map_id: str, layer: str) -> list[dict]:
    r = page.request.get(f"/api/v1/maps/{map_id}/layers/{layer}/features")
    assert r.ok, r.text()
    return r.json()["features"]


def server_name(page: Page, map_id: str, layer: str, fid: str) -> str | None:
    r = page.request.get(f"/api/v1/maps/{map_id}/layers/{layer}/features/{fid}")
    return r.json()["properties"].get("name") if r.ok else None


def add_editor(page: Page, csrf: str, map_id: str, name: str):  # type: ignore[no-untyped-def]
    """A second person, an editor of the map, in a browser context of their own."""
    other = page.context.browser.new_context(base_url=page.url.split("/m/")[0])
    email = f"{name.split()[0].lower()}-{id(page)}@example.com"
    r = other.request.post("/api/v1/auth/signup", data={
        "email": email, "password": PASSWORD, "display_name": name})
    assert r.status == 201, r.text()
    assert page.request.post(f"/api/v1/maps/{map_id}/members", headers={"X-CSRF-Token": csrf},
                             data={"email": email, "role": "editor"}).ok
    return other, r.json()["csrf_token"]


def rename(page: Page, name: str) -> None:
    form = page.locator("#feature-form")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_role("button", name="Save properties").click()
    expect(page.locator(".notice-ok", has_text="Properties saved").last).to_be_visible()


def open_fitted(page: Page, map_id: str) -> None:
    """The map's page, zoomed to its data and settled."""
    page.goto(f"/m/{map_id}")
    wait_map_ready(page)
    page.get_by_role("button", name="Fit to data").click()
    page.wait_for_function("() => !window.waymark.map._animatingZoom && !window.waymark.map._panAnim?._inProgress")


def keys(page: Page, combo: str) -> None:
    """A shortcut pressed on the map (not in a text field, where typing has its own undo)."""
    page.locator("#map").focus()
    page.keyboard.press(combo)


def test_undo_redo_own_edits_and_refuse_over_someone_else(page: Page, console, screenshot) -> None:  # type: ignore[no-untyped-def]
    console.allow("412")  # the undo over someone else's edit is refused on purpose
    csrf = signup_api(page, "Uma Undo")
    map_id, layer, feature = map_with_point(page, csrf, "Undo map")
    fid = feature["id"]
    page.goto(f"/m/{map_id}")
    wait_map_ready(page)
    toolbar = page.get_by_role("toolbar", name="Drawing tools")
    undo, redo = toolbar.get_by_role("button", name="Undo"), toolbar.get_by_role("button", name="Redo")
    expect(undo).to_be_disabled()

    open_feature(page)
    rename(page, "New name")
    expect(undo).to_be_enabled()
    expect(undo).to_have_attribute("title", "Undo: edit of “Old name” (Ctrl+Z)")
    keys(page, "Control+z")
    wait_until(lambda: server_name(page, map_id, layer, fid) == "Old name", "the rename undone")
    expect(redo).to_be_enabled()
    keys(page, "Control+Shift+z")
    wait_until(lambda: server_name(page, map_id, layer, fid) == "New name", "the rename redone")
    # each undo and redo was an ordinary edit: a new version each time, all in the history
    ops = [c["op"] for c in page.request.get(
        f"/api/v1/maps/{map_id}/layers/{layer}/history").json()]
    assert ops == ["feature.update"] * 3 + ["feature.create"]

    # a new point: undo deletes it, redo brings it back with the same id
    toolbar.get_by_role("button", name="Point").click()
    click_map(page, 0.3, 0.3)
    expect(page.locator("#feature-form")).to_be_visible()
    wait_until(lambda: len(features(page, map_id, layer)) == 2, "the new point saved")
    new_id = next(f["id"] for f in features(page, map_id, layer) if f["id"] != fid)
    undo.click()
    wait_until(lambda: len(features(page, map_id, layer)) == 1, "the new point undone")
    expect(page.locator(".wm-pin")).to_have_count(1)
    redo.click()
    wait_until(lambda: [f["id"] for f in features(page, map_id, layer)].count(new_id) == 1,
               "the point back with its id")
    expect(page.locator(".wm-pin")).to_have_count(2)
    undo.click()  # gone again; next on the stack is the rename
    wait_until(lambda: len(features(page, map_id, layer)) == 1, "the new point undone again")

    # someone else renames the feature; undoing our rename would overwrite theirs: refused
    other, other_csrf = add_editor(page, csrf, map_id, "Bea Other")
    version = page.request.get(f"/api/v1/maps/{map_id}/layers/{layer}/features/{fid}").json()["version"]
    r = other.request.patch(f"/api/v1/maps/{map_id}/layers/{layer}/features/{fid}",
                            headers={"X-CSRF-Token": other_csrf, "If-Match": f'"{version}"'},
                            data={"properties": {"name": "Bea's name"}})
    assert r.status == 200, r.text()
    other.close()
    keys(page, "Control+z")
    expect(page.locator(".notice-error", has_text="Bea Other changed “Bea's name” since")).to_be_visible()
    conflict = page.locator("#conflict")
    expect(conflict).to_contain_text("changed by Bea Other")
    expect(conflict).to_contain_text("Bea's name")
    screenshot(page, "30-undo-refused")
    assert server_name(page, map_id, layer, fid) == "Bea's name"  # nothing overwritten
    expect(undo).to_be_enabled()  # the step stays: undo it later if that is still wanted


def test_undo_redo_layer_settings_and_refuse_over_someone_else(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    csrf = signup_api(page, "Lea Layer")
    map_id, layer, _ = map_with_point(page, csrf, "Layer undo map")
    url = f"/api/v1/maps/{map_id}/layers/{layer}"
    old = page.request.get(url).json()
    page.goto(f"/m/{map_id}")
    wait_map_ready(page)
    toolbar = page.get_by_role("toolbar", name="Drawing tools")
    undo, redo = toolbar.get_by_role("button", name="Undo"), toolbar.get_by_role("button", name="Redo")
    item = page.locator(f"[data-layer-id='{layer}']")
    item.get_by_text("Name, style and popup").click()
    item.get_by_label("Name", exact=True).fill("Parks")
    item.get_by_label("Line colour").fill("#2f9e44")
    item.get_by_role("button", name="Save layer").click()
    expect(page.locator(".notice-ok", has_text="saved").last).to_be_visible()
    expect(undo).to_have_attribute("title", "Undo: settings of layer “Parks” (Ctrl+Z)")

    keys(page, "Control+z")
    wait_until(lambda: page.request.get(url).json()["name"] == old["name"], "the layer settings undone")
    assert page.request.get(url).json()["style"] == old["style"]
    expect(page.locator(f"[data-layer-id='{layer}'] .layer-name")).to_have_text(old["name"])
    keys(page, "Control+Shift+z")
    wait_until(lambda: page.request.get(url).json()["name"] == "Parks", "the layer settings redone")
    assert page.request.get(url).json()["style"]["color"] == "#2f9e44"
    ops = [c["op"] for c in page.request.get(f"{url}/history").json()[:3]]
    assert ops == ["layer.update"] * 3  # each an ordinary, versioned edit

    # someone else restyles the layer; undoing ours would overwrite it: refused, theirs shown
    other, other_csrf = add_editor(page, csrf, map_id, "Bea Other")
    theirs = {**page.request.get(url).json()["style"], "color": "#e03131"}
    assert other.request.patch(url, headers={"X-CSRF-Token": other_csrf}, data={"style": theirs}).ok
    other.close()
    keys(page, "Control+z")
    expect(page.locator(".notice-error", has_text="Bea Other changed the layer's settings since")).to_be_visible()
    conflict = page.locator(f"[data-layer-id='{layer}'] .conflict")
    expect(conflict).to_contain_text("changed by Bea Other")
    expect(page.locator(f"[data-layer-id='{layer}']").get_by_label("Line colour")).to_have_value("#e03131")
    screenshot(page, "33-layer-undo-refused")
    assert page.request.get(url).json()["style"]["color"] == "#e03131"  # nothing overwritten
    expect(undo).to_be_enabled()  # the step stays
    conflict.get_by_role("button", name="Undo anyway").click()
    wait_until(lambda: page.request.get(url).json()["name"] == old["name"], "undone anyway")
    expect(page.locator(f"[data-layer-id='{layer}'] .conflict")).to_have_count(0)
    expect(redo).to_be_enabled()


def test_history_shows_old_and_new_and_reverts_one_change(page: Page, console, screenshot) -> None:  # type: ignore[no-untyped-def]
    console.allow("409")  # the second revert is refused on purpose
    csrf = signup_api(page, "Rita Revert")
    map_id, layer, feature = map_with_point(page, csrf, "History map")
    h = {"X-CSRF-Token": csrf}
    base = f"/api/v1/maps/{map_id}/layers/{layer}"
    assert page.request.patch(f"{base}/features/{feature['id']}", headers={**h, "If-Match": '"1"'},
                              data={"properties": {"name": "New name", "marker-color": "#e03131"}}).ok
    later = page.request.post(f"{base}/features", headers=h, data={
        "geometry": {"type": "Point", "coordinates": [-3.2, 55.96]}, "properties": {"name": "Later"}}).json()
    style = page.request.get(base).json()["style"]
    assert page.request.patch(base, headers=h, data={"style": {**style, "fillOpacity": 0.6}}).ok
    page.goto(f"/m/{map_id}")
    wait_map_ready(page)
    page.get_by_role("tab", name="History").click()
    rename = page.locator(".history-item", has_text="edited a feature")
    expect(rename).to_contain_text("name: “Old name” → “New name”")
    expect(rename).to_contain_text("marker-color: (none) → “#e03131”")
    # the layer change as the server's diff says it, in the layer form's words
    expect(page.locator(".history-item", has_text="changed the layer")).to_contain_text(
        f"fill opacity: {style['fillOpacity']} → 0.6")
    screenshot(page, "31-history-old-new")
    rename.get_by_role("button", name="Revert this change only").click()
    expect(page.locator(".notice-ok", has_text="later changes are kept")).to_be_visible()
    expect(page.locator(".history-item").first).to_contain_text("reverted one change of version 3")
    assert server_name(page, map_id, layer, feature["id"]) == "Old name"
    assert later["id"] in [f["id"] for f in features(page, map_id, layer)]  # the later change survives
    # the rename again: the revert is a later change to the same feature, so it is refused
    page.locator(".history-item", has_text="“Old name” → “New name”").get_by_role(
        "button", name="Revert this change only").click()
    expect(page.locator(".notice-error", has_text="would overwrite 1 later change")).to_contain_text("Rita Revert")
    screenshot(page, "32-revert-refused")
    assert server_name(page, map_id, layer, feature["id"]) == "Old name"


def click_at(page: Page, lon: float, lat: float) -> None:
    """A real mouse click on the map at a geographic position."""
    box = page.locator("#map").bounding_box()
    assert box
    x, y = page.evaluate("([lon, lat]) => { const p = window.waymark.map.latLngToContainerPoint([lat, lon]);"
                         " return [p.x, p.y]; }", [lon, lat])
    page.mouse.click(box["x"] + x, box["y"] + y)


def haversine_km(points: list[tuple[float, float]]) -> float:
    total = 0.0
    for (lon1, lat1), (lon2, lat2) in itertools.pairwise(points):
        p1, p2 = math.radians(lat1), math.radians(lat2)
        a = (math.sin((p2 - p1) / 2) ** 2
             + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
        total += 2 * 6371.0088 * math.asin(math.sqrt(a))
    return total


def test_measure_a_path_and_the_size_of_a_selected_feature(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    csrf = signup_api(page, "Mo Measure")
    map_id, layer, _ = map_with_point(page, csrf, "Measure map")
    h = {"X-CSRF-Token": csrf}
    base = f"/api/v1/maps/{map_id}/layers/{layer}/features"
    assert page.request.post(base, headers=h, data={
        "geometry": {"type": "LineString", "coordinates": [[-3.0, 55.0], [-3.0, 56.0]]},
        "properties": {"name": "One degree north"}}).ok
    assert page.request.post(base, headers=h, data={
        "geometry": {"type": "Polygon", "coordinates": [[[-2, 55], [-1, 55], [-1, 56], [-2, 56], [-2, 55]]]},
        "properties": {"name": "One degree square"}}).ok
    page.goto(f"/m/{map_id}")
    wait_map_ready(page)
    page.get_by_role("button", name="Fit to data").click()

    # a selected line shows its length, an area its area and perimeter (metric and imperial)
    click_at(page, -3.0, 55.5)
    expect(page.locator("#feature-size")).to_have_text("Length 111.2 km (69.09 mi)")  # 1° of latitude
    click_at(page, -1.5, 55.5)
    size = page.locator("#feature-size")
    expect(size).to_contain_text("km²")
    km2 = float(size.inner_text().split("Area ")[1].split(" km²")[0].replace(",", ""))
    assert 6950 < km2 < 7050, km2  # 1° × 1° at 55.5° N: about 7,000 km² on the ellipsoid too

    # the Measure tool: a path measured live while drawing and labelled when finished, not saved
    toolbar = page.get_by_role("toolbar", name="Drawing tools")
    toolbar.get_by_role("button", name="Measure").click()
    expect(toolbar.get_by_role("button", name="Measure")).to_have_attribute("aria-pressed", "true")
    clicks = [(0.25, 0.3), (0.5, 0.6), (0.75, 0.35)]
    for fx, fy in clicks:
        click_map(page, fx, fy)
    readout = page.locator("#measure-readout")
    expect(readout).to_contain_text("Length")
    toolbar.get_by_role("button", name="Finish").click()
    expect(page.locator(".wm-measure-label")).to_be_visible()
    screenshot(page, "33-measure")
    box = page.locator("#map").bounding_box()
    points = page.evaluate("""([pts, w, h]) => pts.map(([fx, fy]) => {
        const ll = window.waymark.map.containerPointToLatLng([w * fx, h * fy]);
        return [ll.lng, ll.lat];
    })""", [clicks, box["width"], box["height"]])
    expected = haversine_km([tuple(p) for p in points])
    shown = float(page.locator(".wm-measure-label").inner_text().split("Length ")[1].split(" km")[0].replace(",", ""))
    assert abs(shown - expected) <= 0.01 * expected, (shown, expected)
    assert len(features(page, map_id, layer)) == 3  # measuring saved nothing
    toolbar.get_by_role("button", name="Measure").click()
    expect(page.locator(".wm-measure-label")).to_have_count(0)
    expect(readout).to_be_hidden()


def new_features(page: Page, map_id: str, layer: str, known: set[str]) -> list[dict]:
    return [f for f in features(page, map_id, layer) if f["id"] not in known]


def test_draw_rectangle_and_circle_and_snap_to_a_vertex(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    csrf = signup_api(page, "Dora Draw")
    map_id, layer, point = map_with_point(page, csrf, "Shapes map")
    base = f"/api/v1/maps/{map_id}/layers/{layer}/features"
    road = page.request.post(base, headers={"X-CSRF-Token": csrf}, data={
        "geometry": {"type": "LineString", "coordinates": [[-3.4, 55.8], [-3.1, 55.9], [-2.9, 55.7]]},
        "properties": {"name": "Road"}}).json()
    known = {point["id"], road["id"]}
    open_fitted(page, map_id)
    toolbar = page.get_by_role("toolbar", name="Drawing tools")

    # a rectangle: two clicks, saved as a four-cornered polygon
    toolbar.get_by_role("button", name="Rectangle").click()
    click_map(page, 0.15, 0.15)
    click_map(page, 0.35, 0.3)
    wait_until(lambda: len(new_features(page, map_id, layer, known)) == 1, "the rectangle saved")
    rect = new_features(page, map_id, layer, known)[0]
    ring = rect["geometry"]["coordinates"][0]
    assert rect["geometry"]["type"] == "Polygon" and len(ring) == 5
    assert len({round(lon, 6) for lon, _ in ring}) == 2 and len({round(lat, 6) for _, lat in ring}) == 2
    known.add(rect["id"])
    expect(page.locator("#feature-size")).to_contain_text("Area")

    # a circle: centre, then a point on its edge; stored as a polygon with its radius
    toolbar.get_by_role("button", name="Circle").click()
    box = page.locator("#map").bounding_box()
    assert box
    click_map(page, 0.7, 0.25)
    page.mouse.move(box["x"] + box["width"] * 0.78, box["y"] + box["height"] * 0.25, steps=5)
    expect(page.locator("#measure-readout")).to_contain_text("Radius")  # live while drawing
    click_map(page, 0.78, 0.25)
    wait_until(lambda: len(new_features(page, map_id, layer, known)) == 1, "the circle saved")
    circle = new_features(page, map_id, layer, known)[0]
    known.add(circle["id"])
    radius = circle["properties"]["radius"]
    ring = circle["geometry"]["coordinates"][0]
    assert circle["geometry"]["type"] == "Polygon" and len(ring) == 65 and radius > 0
    north, south = ring[0], ring[32]  # bearings 0° and 180°: the centre is halfway between
    assert abs(north[0] - south[0]) < 1e-6
    centre = (north[0], (north[1] + south[1]) / 2)
    for vertex in ring[::4]:  # every vertex at the radius from the centre (great circle)
        assert abs(haversine_km([centre, tuple(vertex)]) * 1000 - radius) < 0.005 * radius
    screenshot(page, "34-rectangle-circle")

    # moved, it stays a circle of the same radius; a vertex dragged off it, it is no longer a
    # circle and loses its radius (both saved as ordinary edits)
    def circle_now() -> dict:
        return next(f for f in features(page, map_id, layer) if f["id"] == circle["id"])

    def pixel(lon: float, lat: float) -> tuple[float, float]:
        x, y = page.evaluate("([lon, lat]) => { const p = window.waymark.map.latLngToContainerPoint([lat, lon]);"
                             " return [p.x, p.y]; }", [lon, lat])
        return box["x"] + x, box["y"] + y

    toolbar.get_by_role("button", name="Move").click()
    cx, cy = pixel(*centre)
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 60, cy, steps=6)
    page.mouse.up()
    wait_until(lambda: circle_now()["geometry"] != circle["geometry"], "the circle moved")
    assert circle_now()["properties"]["radius"] == radius
    moved = circle_now()["geometry"]["coordinates"][0]
    toolbar.get_by_role("button", name="Edit").click()
    vx, vy = pixel(*moved[16])  # at the east vertex (bearing 90°), dragged further east
    page.mouse.move(vx, vy)
    page.mouse.down()
    page.mouse.move(vx + 40, vy + 10, steps=6)
    page.mouse.up()
    wait_until(lambda: "radius" not in circle_now()["properties"], "the radius dropped")
    assert circle_now()["geometry"]["coordinates"][0] != moved  # reshaped, not just moved
    expect(page.locator(".leaflet-popup", has_text="radius")).to_have_count(0)  # an open popup follows
    toolbar.get_by_role("button", name="Cancel").click()

    # a new line started a few pixels off the road's middle vertex snaps onto it exactly
    vertex = (-3.1, 55.9)
    vx, vy = page.evaluate("([lon, lat]) => { const p = window.waymark.map.latLngToContainerPoint([lat, lon]);"
                           " return [p.x, p.y]; }", list(vertex))
    toolbar.get_by_role("button", name="Line").click()
    page.mouse.move(box["x"] + vx + 30, box["y"] + vy + 30)
    page.mouse.move(box["x"] + vx + 6, box["y"] + vy + 5, steps=6)
    page.mouse.click(box["x"] + vx + 6, box["y"] + vy + 5)
    click_map(page, 0.55, 0.85)
    toolbar.get_by_role("button", name="Finish").click()
    wait_until(lambda: len(new_features(page, map_id, layer, known)) == 1, "the snapped line saved")
    start = new_features(page, map_id, layer, known)[0]["geometry"]["coordinates"][0]
    assert abs(start[0] - vertex[0]) < 1e-9 and abs(start[1] - vertex[1]) < 1e-9, start


def test_multi_select_colour_move_delete_as_one_version_each(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    csrf = signup_api(page, "Sam Select")
    map_id, layer, first = map_with_point(page, csrf, "Select map")
    base = f"/api/v1/maps/{map_id}/layers/{layer}"
    h = {"X-CSRF-Token": csrf}
    for i, lon in enumerate((-3.1, -3.0)):
        assert page.request.post(f"{base}/features", headers=h, data={
            "geometry": {"type": "Point", "coordinates": [lon, 55.95 - 0.02 * i]},
            "properties": {"name": f"P{i}"}}).ok
    assert page.request.post(f"{base}/features", headers=h, data={
        "geometry": {"type": "Polygon", "coordinates": [[[-3.15, 55.9], [-3.05, 55.9], [-3.05, 55.92], [-3.15, 55.9]]]},
        "properties": {"name": "Field"}}).ok
    open_fitted(page, map_id)
    bar = page.get_by_role("toolbar", name="Selected features")
    expect(bar).to_be_hidden()

    # shift-click two pins, colour both: one batch, one version, one undo step
    pins = page.locator(".wm-pin")
    pins.nth(0).click(modifiers=["Shift"])
    pins.nth(1).click(modifiers=["Shift"])
    expect(bar).to_contain_text("2 selected")
    expect(page.locator(".wm-selected")).to_have_count(2)
    version = page.request.get(base).json()["version"]
    bar.get_by_label("Colour for the selected features").fill("#2f9e44")
    bar.get_by_role("button", name="Colour").click()
    wait_until(lambda: sum(f["properties"].get("marker-color") == "#2f9e44"
                           for f in features(page, map_id, layer)) == 2, "two points coloured")
    assert page.request.get(base).json()["version"] == version + 1
    undo = page.get_by_role("toolbar", name="Drawing tools").get_by_role("button", name="Undo")
    expect(undo).to_have_attribute("title", "Undo: colour of 2 features (Ctrl+Z)")
    undo.click()
    wait_until(lambda: not any("marker-color" in f["properties"] for f in features(page, map_id, layer)),
               "the colour undone for both")

    # shift-drag a box around everything, delete all four at once
    box = page.locator("#map").bounding_box()
    assert box
    page.keyboard.down("Shift")
    page.mouse.move(box["x"] + 5, box["y"] + 60)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 5, box["y"] + box["height"] - 90, steps=8)
    page.mouse.up()
    page.keyboard.up("Shift")
    expect(bar).to_contain_text("4 selected")
    screenshot(page, "35-multi-select")
    version = page.request.get(base).json()["version"]
    page.once("dialog", lambda d: d.accept())
    bar.get_by_role("button", name="Delete").click()
    wait_until(lambda: features(page, map_id, layer) == [], "all four deleted")
    history = page.request.get(f"{base}/history").json()
    assert [c["layer_version"] for c in history[:4]] == [version + 1] * 4  # one version
    expect(pins).to_have_count(0)
    page.keyboard.press("Control+z")
    wait_until(lambda: len(features(page, map_id, layer)) == 4, "all four back with one undo")
    assert first["id"] in [f["id"] for f in features(page, map_id, layer)]

    # move: select one pin, press Move, drag on the map; it moves by the drag
    pins.first.click(modifiers=["Shift"])
    expect(bar).to_contain_text("1 selected")
    before = {f["id"]: f["geometry"] for f in features(page, map_id, layer)}
    bar.get_by_role("button", name="Move").click()
    cx, cy = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 80, cy + 40, steps=6)
    page.mouse.up()
    wait_until(lambda: sum(f["geometry"] != before[f["id"]] for f in features(page, map_id, layer)) == 1,
               "one feature moved")
    moved = next(f for f in features(page, map_id, layer) if f["geometry"] != before[f["id"]])
    old = before[moved["id"]]["coordinates"]
    assert moved["geometry"]["coordinates"][0] > old[0] and moved["geometry"]["coordinates"][1] < old[1]  # east, south


def test_multi_select_across_two_layers_is_one_request_and_one_undo_step(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    csrf = signup_api(page, "Max Multi")
    map_id, layer, first = map_with_point(page, csrf, "Two layers map")
    h = {"X-CSRF-Token": csrf}
    second = page.request.post(f"/api/v1/maps/{map_id}/layers", headers=h, data={"name": "Second"}).json()["id"]
    other = page.request.post(f"/api/v1/maps/{map_id}/layers/{second}/features", headers=h, data={
        "geometry": {"type": "Point", "coordinates": [-3.1, 55.93]}, "properties": {"name": "Other"}}).json()
    open_fitted(page, map_id)
    versions = {lid: page.request.get(f"/api/v1/maps/{map_id}/layers/{lid}").json()["version"] for lid in (layer, second)}
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if r.method == "POST" and "/batch" in r.url else None)

    page.locator(".wm-pin[title='Old name']").click(modifiers=["Shift"])
    page.locator(".wm-pin[title='Other']").click(modifiers=["Shift"])
    bar = page.get_by_role("toolbar", name="Selected features")
    expect(bar).to_contain_text("2 selected")
    bar.get_by_label("Colour for the selected features").fill("#7048e8")
    bar.get_by_role("button", name="Colour").click()

    def colours() -> list:
        return [features(page, map_id, lid)[0]["properties"].get("marker-color") for lid in (layer, second)]

    wait_until(lambda: colours() == ["#7048e8"] * 2, "both layers' points coloured")
    assert [r.split("/api/v1/maps/")[1] for r in requests] == [f"{map_id}/batch"]  # one request
    for lid in (layer, second):  # one new version of each layer
        assert page.request.get(f"/api/v1/maps/{map_id}/layers/{lid}").json()["version"] == versions[lid] + 1
    screenshot(page, "36-multi-select-two-layers")
    undo = page.get_by_role("toolbar", name="Drawing tools").get_by_role("button", name="Undo")
    expect(undo).to_have_attribute("title", "Undo: colour of 2 features (Ctrl+Z)")
    undo.click()
    wait_until(lambda: colours() == [None, None], "both undone with one step")
    assert len(requests) == 2 and requests[1].endswith(f"/maps/{map_id}/batch")
    expect(undo).to_be_disabled()  # it was one step
    assert {f["id"] for f in features(page, map_id, second)} == {other["id"]}
    assert first["id"] in {f["id"] for f in features(page, map_id, layer)}


def test_lasso_selects_what_is_inside_a_free_hand_outline(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    csrf = signup_api(page, "Lou Lasso")
    map_id, layer, _ = map_with_point(page, csrf, "Lasso map")
    base = f"/api/v1/maps/{map_id}/layers/{layer}/features"
    for name, lon, lat in (("Inside", -3.15, 55.94), ("Outside", -3.0, 55.9)):
        assert page.request.post(base, headers={"X-CSRF-Token": csrf}, data={
            "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": {"name": name}}).ok
    open_fitted(page, map_id)
    toolbar = page.get_by_role("toolbar", name="Drawing tools")
    toolbar.get_by_role("button", name="Lasso").click()
    expect(toolbar.get_by_role("button", name="Lasso")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#draw-hint")).to_have_text("Drag around features to select them.")

    # a free-hand loop around "Old name" and "Inside" (their pins' tips), not "Outside"
    tips = []
    for name in ("Old name", "Inside"):
        b = page.locator(f".wm-pin[title='{name}']").bounding_box()
        assert b
        tips.append((b["x"] + b["width"] / 2, b["y"] + b["height"]))
    (x1, y1), (x2, y2) = tips
    left, right = min(x1, x2) - 40, max(x1, x2) + 40
    top, bottom = min(y1, y2) - 40, max(y1, y2) + 40
    loop = [(left, top), ((left + right) / 2, top - 15), (right, top), (right + 10, (top + bottom) / 2),
            (right, bottom), ((left + right) / 2, bottom + 15), (left, bottom), (left - 10, (top + bottom) / 2), (left, top + 5)]
    page.mouse.move(*loop[0])
    page.mouse.down()
    for x, y in loop[1:]:
        page.mouse.move(x, y, steps=4)
    screenshot(page, "37-lasso")
    page.mouse.up()
    bar = page.get_by_role("toolbar", name="Selected features")
    expect(bar).to_contain_text("2 selected")
    expect(page.locator(".wm-pin.wm-selected")).to_have_count(2)
    expect(page.locator(".wm-pin[title='Outside']")).not_to_have_class(re.compile("wm-selected"))
    page.keyboard.press("Escape")  # the lasso tool off, then the selection cleared
    expect(toolbar.get_by_role("button", name="Lasso")).to_have_attribute("aria-pressed", "false")
