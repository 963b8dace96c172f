"""Editor details in a real browser: conflicts, history and revert, trash, phone-sized screens."""

from __future__ import annotations

import itertools

from playwright.sync_api import Page, expect

from tests.e2e.test_journey import PASSWORD, wait_map_ready

_n = itertools.count()


def signup_api(page: Page, name: str = "Tester") -> str:
    """Sign up through the API in this page's context; returns the CSRF token."""
    page.goto("/")
    r = page.request.post("/api/v1/auth/signup", data={
        "email": f"user{next(_n)}-{id(page)}@example.com", "password": PASSWORD, "display_name": name})
    assert r.status == 201, r.text()
    return r.json()["csrf_token"]


def map_with_point(page: Page, csrf: str, title: str = "Test map") -> tuple[str, str, dict]:
    h = {"X-CSRF-Token": csrf}
    m = page.request.post("/api/v1/maps", data={"title": title}, headers=h).json()
    layer = m["layers"][0]["id"]
    f = page.request.post(f"/api/v1/maps/{m['id']}/layers/{layer}/features", headers=h, data={
        "geometry": {"type": "Point", "coordinates": [-3.19, 55.95]},
        "properties": {"name": "Old name"}}).json()
    return m["id"], layer, f


def open_feature(page: Page) -> None:
    page.locator(".wm-pin").first.click()
    expect(page.locator("#feature-form")).to_be_visible()


def test_conflict_keeps_what_was_typed(page: Page, console) -> None:  # type: ignore[no-untyped-def]
    console.allow("412")  # the stale save is refused on purpose; the browser logs that
    csrf = signup_api(page)
    map_id, layer, feature = map_with_point(page, csrf)
    page.goto(f"/m/{map_id}")
    wait_map_ready(page)
    open_feature(page)
    form = page.locator("#feature-form")
    form.get_by_label("Name", exact=True).fill("My careful name")
    form.get_by_label("Description").fill("Typed while someone else edited")

    # someone else (an editor of the map, in their own browser) saves first
    other = page.context.browser.new_context(base_url=page.url.split("/m/")[0])
    r = other.request.post("/api/v1/auth/signup", data={
        "email": f"bea-{id(page)}@example.com", "password": PASSWORD, "display_name": "Bea Other"})
    other_csrf = r.json()["csrf_token"]
    assert page.request.post(f"/api/v1/maps/{map_id}/members", headers={"X-CSRF-Token": csrf},
                             data={"email": f"bea-{id(page)}@example.com", "role": "editor"}).ok
    r = other.request.patch(f"/api/v1/maps/{map_id}/layers/{layer}/features/{feature['id']}",
                            headers={"X-CSRF-Token": other_csrf, "If-Match": '"1"'},
                            data={"properties": {"name": "Their name"}})
    assert r.status == 200
    other.close()

    form.get_by_role("button", name="Save properties").click()
    conflict = page.locator("#conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text("changed by Bea Other")  # the name, not "someone else"
    expect(conflict).to_contain_text("Their name")
    expect(form.get_by_label("Name", exact=True)).to_have_value("My careful name")
    expect(form.get_by_label("Description")).to_have_value("Typed while someone else edited")

    conflict.get_by_role("button", name="Save my version").click()
    expect(conflict).to_be_hidden()
    expect(page.locator("#feature-version")).to_have_text("3")
    current = page.request.get(f"/api/v1/maps/{map_id}/layers/{layer}/features/{feature['id']}").json()
    assert current["properties"] == {"name": "My careful name",
                                     "description": "Typed while someone else edited"}


def test_history_lists_changes_and_reverts(page: Page) -> None:
    csrf = signup_api(page, "Hana Historian")
    map_id, layer, feature = map_with_point(page, csrf)
    page.goto(f"/m/{map_id}")
    wait_map_ready(page)
    open_feature(page)
    page.locator("#feature-form").get_by_label("Name", exact=True).fill("New name")
    page.locator("#feature-form").get_by_role("button", name="Save properties").click()
    expect(page.locator("#feature-version")).to_have_text("2")

    page.get_by_role("tab", name="History").click()
    items = page.locator(".history-item")
    expect(items.first).to_contain_text("Hana Historian")
    expect(items.first).to_contain_text("edited a feature “New name”")
    expect(items.nth(1)).to_contain_text("added a feature")
    page.once("dialog", lambda d: d.accept())
    items.first.get_by_role("button", name="Revert to before this").click()
    expect(page.locator(".notice-ok", has_text="reverted")).to_be_visible()
    expect(items.first).to_contain_text("reverted the layer")
    current = page.request.get(f"/api/v1/maps/{map_id}/layers/{layer}/features/{feature['id']}").json()
    assert current["properties"]["name"] == "Old name"


def test_dashboard_trash_and_restore(page: Page) -> None:
    csrf = signup_api(page)
    page.request.post("/api/v1/maps", data={"title": "Bin me"}, headers={"X-CSRF-Token": csrf})
    page.goto("/dashboard")
    mine = page.locator("#my-maps")
    expect(mine).to_contain_text("Bin me")
    page.once("dialog", lambda d: d.accept())
    mine.get_by_role("button", name="Delete Bin me (to the trash)").click()
    expect(page.locator("#trash-maps")).to_contain_text("Bin me")
    expect(mine).not_to_contain_text("Bin me")
    page.get_by_role("button", name="Restore Bin me").click()
    expect(mine).to_contain_text("Bin me")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/")
    expect(page.get_by_role("navigation", name="Account").get_by_role("link", name="Log in")).to_be_visible()


def test_phone_sized_screen_and_keyboard(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 390, "height": 844})
    csrf = signup_api(page)
    map_id, _, _ = map_with_point(page, csrf, "Pocket map")
    page.goto(f"/m/{map_id}")
    wait_map_ready(page)
    sidebar = page.locator("#sidebar")
    expect(sidebar).to_be_hidden()  # the map gets the screen
    toolbar = page.get_by_role("toolbar", name="Drawing tools")
    expect(toolbar.get_by_role("button", name="Point")).to_be_in_viewport()
    expect(toolbar.get_by_role("button", name="Delete")).to_be_in_viewport()
    # the header (one row) and the drawing toolbar (one row) leave the map most of the screen
    header, bar = page.locator(".topbar").bounding_box(), toolbar.bounding_box()
    assert header and bar and header["height"] + bar["height"] <= 0.13 * 844, (header, bar)
    screenshot(page, "08-phone-map")
    # a tap on the point opens its form in a sheet that leaves most of the map visible
    page.locator(".wm-pin").first.click()
    expect(page.locator("#feature-form")).to_be_visible()
    sheet, shell = sidebar.bounding_box(), page.locator(".map-shell").bounding_box()
    assert sheet and shell and sheet["height"] <= 0.41 * shell["height"], (sheet, shell)
    screenshot(page, "08b-phone-feature")
    page.get_by_role("button", name="Panel").click()
    expect(sidebar).to_be_hidden()
    page.get_by_role("button", name="Panel").click()
    expect(sidebar).to_be_visible()
    expect(page.locator(".layer-item")).to_have_count(1)
    screenshot(page, "09-phone-panel")
    # keyboard: the tabs move with the arrow keys, the controls are labelled buttons
    page.get_by_role("tab", name="Layers").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Feature")).to_be_focused()
    expect(page.locator("#panel-feature")).to_be_visible()
    for label in ("Fit to data", "Show my location", "Full screen", "Zoom in", "Zoom out"):
        expect(page.get_by_role("button", name=label)).to_have_count(1)
    icons = [page.get_by_role("button", name=label).locator("path").get_attribute("d")
             for label in ("Fit to data", "Full screen")]
    assert icons[0] != icons[1]  # two different pictures for two different things
    page.get_by_text("More", exact=True).click()  # on a phone the other actions are in a menu
    page.get_by_role("button", name="Share").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
