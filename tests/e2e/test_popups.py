"""Readable popups: a GPX track and a KML placemark show their name, description and
fields — no importer internals (coordinateProperties, gpx_type, _style), imported HTML
reduced to a safe subset (bold stays bold, links open safely, scripts and handlers never
run, nothing shown as code) — and a layer's popup template picks, orders and labels fields."""

from __future__ import annotations

import itertools

from playwright.sync_api import Page, expect

from tests.conftest import GEO_DATA

PASSWORD = "correct horse battery staple"
_users = itertools.count()
KML = b"""<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document>
<Style id="red"><IconStyle><color>ff0000ff</color></IconStyle></Style>
<Placemark><name>Old mill</name><styleUrl>#red</styleUrl>
<description><![CDATA[<p>Built in <b>1820</b>, see <a href="https://example.org/mill" onclick="window.__pwned=1">the history</a>.</p>
<script>window.__pwned = 2</script><img src="x" onerror="window.__pwned=3">
<a href="javascript:window.__pwned=4">bad link</a><table><tr><td>Open</td><td>Sundays</td></tr></table>]]></description>
<ExtendedData><Data name="website"><value>https://example.org/visit</value></Data>
<Data name="height_m"><value>12</value></Data></ExtendedData>
<Point><coordinates>4.84,45.76,0</coordinates></Point></Placemark>
</Document></kml>"""


def start(page: Page) -> tuple[str, str]:
    r = page.request.post("/api/v1/auth/signup", data={"email": f"popups-{next(_users)}@example.com",
                                                       "password": PASSWORD, "display_name": "Popper"})
    assert r.ok, r.text()
    csrf = r.json()["csrf_token"]
    r = page.request.post("/api/v1/maps", data={"title": "Popups"}, headers={"X-CSRF-Token": csrf})
    return r.json()["id"], csrf


def upload(page: Page, map_id: str, csrf: str, name: str, data: bytes, mime: str) -> dict:
    r = page.request.post(f"/api/v1/maps/{map_id}/import", headers={"X-CSRF-Token": csrf},
                          multipart={"file": {"name": name, "mimeType": mime, "buffer": data}})
    assert r.status == 201, r.text()
    return r.json()


def open_popup_of(page: Page, name: str) -> None:
    page.evaluate("""(name) => {
        for (const e of window.waymark.layers.values())
            for (const l of e.group.getLayers())
                if ((l.feature.properties.name || '') === name) { l.openPopup(); return; }
        throw new Error('no feature ' + name);
    }""", name)


def test_gpx_track_and_kml_placemark_popups_are_clean(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    map_id, csrf = start(page)
    upload(page, map_id, csrf, "run.gpx", (GEO_DATA / "gpx/togeojson/run.gpx").read_bytes(), "application/gpx+xml")
    upload(page, map_id, csrf, "mill.kml", KML, "application/vnd.google-earth.kml+xml")
    page.goto(f"/m/{map_id}")
    expect(page.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)

    open_popup_of(page, "Untitled")  # the run's track
    popup = page.locator(".leaflet-popup-content")
    expect(popup).to_be_visible()
    text = popup.inner_text()
    for internal in ("coordinateProperties", "gpx_type", "times", "2012-10-24T23"):
        assert internal not in text, text
    assert len(text) < 200, text
    page.keyboard.press("Escape")  # focus went into the popup; Escape closes it
    expect(page.locator(".leaflet-popup")).to_have_count(0)

    # the placemark opens from the keyboard: its marker is focusable, Enter opens the popup
    marker = page.locator(".leaflet-marker-icon[title='Old mill']")
    marker.focus()
    page.keyboard.press("Enter")
    expect(popup).to_be_visible()
    expect(popup.locator("h3")).to_have_text("Old mill")
    expect(popup.locator("b, strong", has_text="1820")).to_be_visible()
    link = popup.get_by_role("link", name="the history")
    expect(link).to_have_attribute("href", "https://example.org/mill")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    assert link.get_attribute("onclick") is None
    expect(popup.get_by_role("link", name="https://example.org/visit")).to_be_visible()  # URL value as a link
    expect(popup.locator("tr", has_text="height_m")).to_contain_text("12")
    expect(popup.locator("td", has_text="Sundays")).to_be_visible()
    html = popup.inner_html()
    for bad in ("<script", "onerror", "onclick", "javascript:", "_style", "styleUrl", "&lt;b&gt;"):
        assert bad not in html, html
    assert "<p>" not in popup.inner_text() and "CDATA" not in popup.inner_text()
    expect(popup.get_by_text("bad link")).to_be_visible()  # its text stays, the link does not
    assert popup.locator("a", has_text="bad link").count() == 0
    assert page.evaluate("window.__pwned") is None
    screenshot(page, "popup-kml")


def test_popup_template_picks_orders_and_labels_fields(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    map_id, csrf = start(page)
    result = upload(page, map_id, csrf, "mill.kml", KML, "application/vnd.google-earth.kml+xml")
    layer_id = result["layers"][0]["id"]
    page.goto(f"/m/{map_id}")
    expect(page.locator("#map[data-ready='1']")).to_be_attached(timeout=15000)
    item = page.locator(f"[data-layer-id='{layer_id}']")
    item.get_by_text("Name, style and popup").click()
    rows = item.locator(".popup-fields li")
    expect(rows.first).to_be_visible()
    keys = [li.get_attribute("data-key") for li in rows.all()]
    # the placemark's colour (marker-color, from its KML style) is its look, not a field
    assert keys == ["description", "website", "height_m"], keys
    item.locator("li[data-key='description'] .pf-show").uncheck()
    item.locator("li[data-key='height_m'] .pf-label").fill("Height (m)")
    item.get_by_role("button", name="Move height_m up").click()
    item.get_by_role("button", name="Move height_m up").click()
    item.get_by_role("button", name="Save layer").click()
    expect(page.locator(".notice-ok", has_text="saved")).to_be_visible()
    style = page.request.get(f"/api/v1/maps/{map_id}/layers/{layer_id}").json()["style"]
    assert [f["key"] for f in style["popup"]["fields"]][:1] == ["height_m"]
    open_popup_of(page, "Old mill")
    popup = page.locator(".leaflet-popup-content")
    expect(popup.locator("th").first).to_have_text("Height (m)")
    expect(popup).not_to_contain_text("1820")  # the description was unticked
    screenshot(page, "popup-template")
