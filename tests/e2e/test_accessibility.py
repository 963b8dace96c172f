"""Every page passes axe-core with no serious or critical violation: the public pages, the
account pages, the dashboard, a map as its owner (with the settings, share dialog, feature
table and a popup open) and as a visitor, the embed, and the not-found page."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.axe import serious_violations
from tests.e2e.test_basemap import demo_map  # noqa: F401 - fixture
from tests.e2e.test_popups import KML, start, upload


def check(page: Page, what: str) -> None:
    found = serious_violations(page)
    assert not found, f"{what}: " + "\n".join(found)


def ready(page: Page) -> None:
    expect(page.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)


def test_public_and_account_pages(page: Page, console) -> None:  # type: ignore[no-untyped-def]
    console.allow("404")
    for path in ("/", "/login", "/signup", "/m/no-such-map"):
        page.goto(path)
        check(page, path)
    start(page)
    for path in ("/dashboard", "/logout"):
        page.goto(path)
        check(page, path)


def test_map_pages_as_owner_with_everything_open(page: Page) -> None:
    map_id, csrf = start(page)
    upload(page, map_id, csrf, "mill.kml", KML, "application/vnd.google-earth.kml+xml")
    page.goto(f"/m/{map_id}")
    ready(page)
    check(page, "map (owner)")
    page.get_by_role("button", name="Settings").click()
    expect(page.get_by_role("dialog", name="Map settings")).to_be_visible()
    check(page, "map settings")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Share").click()
    expect(page.get_by_role("dialog", name="Share “Popups”")).to_be_visible()
    check(page, "share dialog")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Feature table").click()
    page.get_by_label("Layer shown in the table").select_option(label="mill.kml")
    expect(page.locator(".data-table tbody tr")).to_have_count(1)
    check(page, "feature table")
    page.get_by_label("Edit values").check()
    check(page, "feature table (editing)")
    page.keyboard.press("Escape")
    for tab in ("Feature", "Import", "History"):
        page.get_by_role("tab", name=tab).click()
        check(page, f"{tab} panel")
    page.locator(".leaflet-marker-icon").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".leaflet-popup-content")).to_be_visible()
    page.wait_for_function("() => getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")  # faded in
    check(page, "popup")
    page.get_by_role("combobox", name="Search places and features of this map").fill("mill")
    expect(page.get_by_role("listbox", name="Search results")).to_be_visible()
    check(page, "search results")


def test_map_and_embed_as_a_visitor(page: Page, demo_map: str) -> None:  # noqa: F811
    for path in (f"/m/{demo_map}", f"/m/{demo_map}/embed"):
        page.goto(path)
        ready(page)
        check(page, path)
