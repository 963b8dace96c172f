"""Cartography in a real browser: style one feature (colour, icon, label) from the feature
panel; a choropleth of a numeric property with its legend (and the visible "No data"
class); clusters and a heatmap of the 42,049 ZIP-code points; the time zones KML drawn in
its own colours. Screenshots in test-artifacts/screenshots/ (choropleth, clusters,
heatmap, styled feature, time zones)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.conftest import GEO_DATA
from tests.e2e.test_popups import start, upload

CARTO = Path(__file__).resolve().parents[1] / "data" / "cartography"
READY = "#map[data-ready='1']"


def open_map(page: Page, map_id: str, view: str = "") -> None:
    page.goto(f"/m/{map_id}{view}")
    expect(page.locator(READY)).to_be_attached(timeout=30000)


def set_view(page: Page, center: list[float], zoom: int) -> None:
    """Move the map at once (the evaluated function returns nothing: a Leaflet map is not
    something to send back to the test)."""
    page.evaluate("([c, z]) => { window.waymark.map.setView(c, z, {animate: false}); }", [center, zoom])


def layer_settings(page: Page, layer_id: str):  # type: ignore[no-untyped-def]
    item = page.locator(f"[data-layer-id='{layer_id}']")
    item.get_by_text("Name, style and popup").click()
    return item


def save_layer(page: Page, item) -> None:  # type: ignore[no-untyped-def]
    item.get_by_role("button", name="Save layer").click()
    expect(page.locator(".notice-ok", has_text="saved").last).to_be_visible()


def test_style_one_feature_colour_icon_and_label(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    map_id, csrf = start(page)
    layer_id = page.request.get(f"/api/v1/maps/{map_id}").json()["layers"][0]["id"]
    for name, lon in (("Arthur's Seat", -3.1619), ("Calton Hill", -3.1826)):
        r = page.request.post(f"/api/v1/maps/{map_id}/layers/{layer_id}/features", headers={"X-CSRF-Token": csrf},
                              data={"geometry": {"type": "Point", "coordinates": [lon, 55.9441]}, "properties": {"name": name}})
        assert r.ok, r.text()
    # the layer published before the page opens: the redraw of the layer checked below is
    # then the one this test causes, not a publish arriving at some moment
    deadline = time.monotonic() + 60
    while page.request.get(f"/api/v1/maps/{map_id}/layers/{layer_id}").json()["snapshot_url"] is None:
        assert time.monotonic() < deadline, "the layer was not published"
        page.wait_for_timeout(200)
    open_map(page, map_id)
    # and connected: what the socket brings on connecting may redraw the layer too
    expect(page.locator("body[data-realtime='ok']")).to_be_attached(timeout=30000)
    page.locator(".leaflet-marker-icon[title=\"Arthur's Seat\"]").click()
    form = page.locator("#feature-form")
    expect(form).to_be_visible()
    style = form.locator("fieldset.feature-style")
    style.get_by_label("Colour").fill("#d6336c")
    style.get_by_label("Icon").click()
    dialog = page.get_by_role("dialog", name="Choose an icon")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Search icons").fill("mountain")
    expect(dialog.locator(".icon-choice[data-icon]").first).to_be_visible()
    screenshot(page, "icon-picker")
    dialog.get_by_role("button", name="mountain", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(style.locator("#fs-marker-symbol")).to_contain_text("mountain")
    style.get_by_label("Size").select_option("large")
    style.get_by_label("Label", exact=True).fill("{name}")
    style.get_by_label("Show the label").select_option("always")
    # the map previews the change before it is saved
    marker = page.locator(".leaflet-marker-icon[title=\"Arthur's Seat\"]")
    expect(marker).to_have_attribute("src", re.compile("d6336c"))
    # the layer is redrawn from the server (another edit of it, a batch: the live connection
    # says "reload the layer"); the unsaved preview stays on the new pin, the form as it was
    marker.evaluate("e => { e.dataset.before = '1'; }")
    r = page.request.post(f"/api/v1/maps/{map_id}/layers/{layer_id}/batch", headers={"X-CSRF-Token": csrf},
                          data={"operations": [{"op": "add", "geometry": {"type": "Point", "coordinates": [-3.2176, 55.9525]},
                                                "properties": {"name": "Dean Village"}}]})
    assert r.ok, r.text()
    expect(page.locator(".leaflet-marker-icon[title='Dean Village']")).to_be_visible()
    expect(page.locator(".leaflet-marker-icon[data-before]")).to_have_count(0)  # drawn anew
    expect(marker).to_have_attribute("src", re.compile("d6336c"))
    label = page.locator(".leaflet-tooltip.wm-label", has_text="Arthur's Seat")
    expect(label).to_have_count(1)  # the old pin's label fades out (Leaflet: 200 ms)
    expect(label).to_be_visible()
    expect(style.get_by_label("Colour")).to_have_value("#d6336c")
    form.get_by_role("button", name="Save properties").click()
    expect(page.locator(".notice-ok", has_text="Properties saved")).to_be_visible()

    features = page.request.get(f"/api/v1/maps/{map_id}/layers/{layer_id}/features").json()["features"]
    styled = next(f for f in features if f["properties"]["name"] == "Arthur's Seat")
    assert {k: v for k, v in styled["properties"].items() if k != "name"} == {
        "marker-color": "#d6336c", "marker-symbol": "mountain", "marker-size": "large",
        "label-text": "{name}", "label-show": "always"}
    other = next(f for f in features if f["properties"]["name"] == "Calton Hill")
    assert other["properties"] == {"name": "Calton Hill"}  # the other feature keeps the layer style
    assert styled["version"] == 2  # saved once, over the version the form was opened on

    # a visitor's view after a reload: the pin in its colour with the icon, the label always shown
    open_map(page, map_id)
    marker = page.locator(".leaflet-marker-icon[title=\"Arthur's Seat\"]")
    expect(marker).to_have_attribute("src", re.compile("d6336c"))
    # the icon is drawn inside the pin once its SVG has loaded (the pin is redrawn then)
    expect(marker).to_have_attribute("src", re.compile("%3Cg%20transform"))
    assert float(marker.evaluate("e => e.getBoundingClientRect().height")) > 50  # large: 41 px * 1.3
    expect(page.locator(".leaflet-tooltip.wm-label", has_text="Arthur's Seat")).to_be_visible()
    expect(page.locator(".leaflet-tooltip.wm-label", has_text="Calton Hill")).to_have_count(0)
    set_view(page, [55.9441, -3.172], 14)
    screenshot(page, "styled-feature")


def _import(page: Page, map_id: str, csrf: str, path: Path, mime: str) -> dict:
    return upload(page, map_id, csrf, path.name, path.read_bytes(), mime)


def _fills(page: Page, layer_id: str, key: str) -> dict[str, str]:
    """Each drawn feature's fill colour, by its property `key`."""
    return page.evaluate("""([id, key]) => {
        const out = {};
        window.waymark.layers.get(id).group.eachLayer((l) => { out[l.feature.properties[key]] = l.options.fillColor; });
        return out;
    }""", [layer_id, key])


def test_choropleth_by_a_numeric_property_with_a_legend(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    # Countries (admin-0, 177 polygons) by POP_EST, natural breaks, one country without a number.
    map_id, csrf = start(page)
    result = _import(page, map_id, csrf, GEO_DATA / "geojson/natural-earth/ne_110m_admin_0_countries.json",
                     "application/geo+json")
    layer_id = result["layers"][0]["id"]
    # one country without a usable number: it must show in the "No data" class
    table = page.request.get(f"/api/v1/maps/{map_id}/layers/{layer_id}/table?q=Greenland").json()
    row = table["rows"][0]
    r = page.request.patch(f"/api/v1/maps/{map_id}/layers/{layer_id}/features/{row['id']}",
                           headers={"X-CSRF-Token": csrf, "If-Match": f'"{row["version"]}"'},
                           data={"properties": {**row["properties"], "POP_EST": "unknown"}})
    assert r.ok, r.text()
    open_map(page, map_id)

    item = layer_settings(page, layer_id)
    rule = item.locator("fieldset.rule-style")
    rule.get_by_label("Style by").select_option("graduated")
    rule.get_by_label("Property").select_option("POP_EST")
    rule.get_by_label("Classes by").select_option("jenks")
    rule.get_by_label("Number of classes").fill("5")
    rule.get_by_label("Colour ramp").select_option("ylorrd")
    preview = rule.locator(".legend-preview li")
    expect(preview).to_have_count(6)  # 5 classes + No data
    expect(preview.last).to_contain_text("No data")
    expect(preview.last.locator(".legend-count")).to_have_text("1")
    save_layer(page, item)
    stored = page.request.get(f"/api/v1/maps/{map_id}/layers/{layer_id}").json()["style"]["rule"]
    assert stored["type"] == "graduated" and stored["property"] == "POP_EST" and stored["method"] == "jenks"
    assert stored["classes"] == 5 and stored["ramp"] == "ylorrd"

    # the polygons are filled with the 5 colours of the ramp, Greenland with the No data grey
    fills = _fills(page, layer_id, "NAME")
    assert fills["Greenland"] == "#cccccc"
    ramp = {"#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"}  # ColorBrewer YlOrRd, 5 classes
    assert set(fills.values()) == ramp | {"#cccccc"}
    assert fills["China"] == fills["India"] == "#bd0026"

    # the legend on the map (Settings > Controls) shows the classes and their counts
    page.get_by_role("button", name="Settings").click()
    page.get_by_label("Legend on the map page").check()
    page.get_by_role("button", name="Save settings").click()
    legend = page.get_by_role("region", name="Legend")
    expect(legend).to_be_visible()
    rows = legend.locator(".legend-layer li")
    expect(rows).to_have_count(6)
    counts = [int(c) for c in rows.locator(".legend-count").all_inner_texts()]
    assert sum(counts) == result["layers"][0]["imported"] and counts[-1] == 1
    expect(legend).to_contain_text("POP_EST")
    set_view(page, [25, 10], 2)
    page.wait_for_timeout(300)  # tiles settle for the screenshot only; nothing is asserted after it
    screenshot(page, "choropleth")

    # the embed shows the same legend
    page.goto(f"/m/{map_id}/embed")
    expect(page.locator(READY)).to_be_attached(timeout=30000)
    expect(page.get_by_role("region", name="Legend").locator(".legend-layer li")).to_have_count(6)
    set_view(page, [25, 10], 2)
    page.wait_for_timeout(300)  # for the screenshot only
    screenshot(page, "choropleth-embed")


def test_choropleth_of_admin1_states_by_latitude(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    # Natural Earth's admin-1 states and provinces at 1:110m (the 51 states of the USA), graduated
    # by their numeric `latitude` in equal intervals: the classes follow the numbers.
    map_id, csrf = start(page)
    path = GEO_DATA / "geojson/natural-earth/ne_110m_admin_1_states_provinces.json"
    result = _import(page, map_id, csrf, path, "application/geo+json")
    assert result["layers"][0]["imported"] == 51
    layer_id = result["layers"][0]["id"]
    open_map(page, map_id)

    item = layer_settings(page, layer_id)
    rule = item.locator("fieldset.rule-style")
    rule.get_by_label("Style by").select_option("graduated")
    rule.get_by_label("Property").select_option("latitude")
    rule.get_by_label("Classes by").select_option("equal")
    rule.get_by_label("Number of classes").fill("4")
    rule.get_by_label("Colour ramp").select_option("blues")
    expect(rule.locator(".legend-preview li")).to_have_count(4)  # every state has a latitude
    save_layer(page, item)
    stored = page.request.get(f"/api/v1/maps/{map_id}/layers/{layer_id}").json()["style"]["rule"]
    assert (stored["type"], stored["property"], stored["method"], stored["classes"]) == (
        "graduated", "latitude", "equal", 4)

    # equal intervals over 21.49..65.36 degrees (breaks 32.46, 43.43, 54.39): Hawaii, Florida,
    # Louisiana and Texas in the lowest class, Alaska alone in the highest; light to dark
    fills = _fills(page, layer_id, "name")
    assert len(fills) == 51
    blues = ["#eff3ff", "#bdd7e7", "#6baed6", "#2171b5"]  # ColorBrewer Blues, 4 classes
    assert {name for name, fill in fills.items() if fill == blues[0]} == {"Hawaii", "Florida", "Louisiana", "Texas"}
    assert {name for name, fill in fills.items() if fill == blues[3]} == {"Alaska"}
    assert fills["Kansas"] == blues[1] and fills["North Dakota"] == blues[2]

    page.get_by_role("button", name="Settings").click()
    page.get_by_label("Legend on the map page").check()
    page.get_by_role("button", name="Save settings").click()
    legend = page.get_by_role("region", name="Legend")
    expect(legend).to_contain_text("latitude")
    expect(legend.locator(".legend-layer li")).to_have_count(4)
    counts = [int(c) for c in legend.locator(".legend-layer li .legend-count").all_inner_texts()]
    assert counts == [4, 34, 12, 1]
    set_view(page, [45, -110], 3)
    screenshot(page, "choropleth-admin1")


def test_clusters_and_heatmap_of_42049_points(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    map_id, csrf = start(page)
    result = _import(page, map_id, csrf, CARTO / "zipcodes.csv", "text/csv")
    layer = result["layers"][0]
    assert layer["imported"] == 42049
    open_map(page, map_id)

    item = layer_settings(page, layer["id"])
    # drawn as 42,049 dots, the style panel suggests clusters or a heatmap: one click switches
    suggestion = item.locator(".suggestion")
    expect(suggestion).to_contain_text("42,049 points overlap")
    screenshot(page, "big-layer-suggestion")
    suggestion.get_by_role("button", name="Show as clusters").click()
    expect(page.locator(".notice-ok", has_text="saved").last).to_be_visible()
    clusters = page.locator(".marker-cluster")
    expect(clusters.first).to_be_visible(timeout=30000)
    assert page.request.get(f"/api/v1/maps/{map_id}/layers/{layer['id']}").json()["style"]["display"]["mode"] == "cluster"
    expect(item.locator(".suggestion")).to_have_count(0)  # clustered now: nothing to suggest
    display = item.locator("fieldset.display-style")
    display.get_by_label("Clusters dissolve at zoom").fill("14")
    save_layer(page, item)
    # the layer is clustered anew (dissolving at 14), its points added in chunks: wait for all
    page.wait_for_function("""(id) => {
        const cluster = window.waymark.layers.get(id)?.view?.wmCluster;
        return Boolean(cluster) && cluster.options.disableClusteringAtZoom === 14 && cluster.getLayers().length === 42049;
    }""", arg=layer["id"], timeout=60000)
    expect(clusters.first).to_be_visible(timeout=30000)
    biggest = max(int(t) for t in clusters.all_inner_texts())
    assert biggest > 1000, biggest
    set_view(page, [39, -96], 4)
    page.wait_for_timeout(300)  # for the screenshot only
    screenshot(page, "clusters")

    # at the chosen zoom the clusters dissolve into pins
    set_view(page, [40.7128, -74.006], 14)
    expect(page.locator(".leaflet-marker-icon.wm-pin").first).to_be_visible(timeout=15000)
    # what stays grouped at that zoom are only points at one and the same place
    groups = page.evaluate("""(id) => {
        const cluster = window.waymark.layers.get(id).view.wmCluster;
        return cluster._featureGroup.getLayers().filter((l) => l.getAllChildMarkers)
            .map((c) => new Set(c.getAllChildMarkers().map((m) => m.getLatLng().toString())).size);
    }""", layer["id"])
    pins = page.locator(".leaflet-marker-icon.wm-pin").count()
    assert pins > 20 and all(n == 1 for n in groups), (pins, groups)
    # at the last clustering zoom a click spreads a cluster out ("spiderfy"); Holtsville, NY has
    # two ZIP codes (00501, 00544) at the very same place
    set_view(page, [40.922326, -72.637078], 13)
    page.wait_for_function("(id) => !window.waymark.layers.get(id).view.wmCluster._inZoomAnimation", arg=layer["id"])
    icon = page.evaluate_handle("""(id) => {
        const cluster = window.waymark.layers.get(id).view.wmCluster;
        const marker = cluster.getLayers().find((m) => m.feature.properties.zip_code === "00501");
        return cluster.getVisibleParent(marker)._icon;
    }""", layer["id"])
    icon.as_element().click()
    page.wait_for_function("(id) => Boolean(window.waymark.layers.get(id).view.wmCluster._spiderfied)", arg=layer["id"],
                           timeout=15000)
    expect(page.locator(".leaflet-marker-icon.wm-pin").first).to_be_visible()

    # clicking a cluster zooms in
    set_view(page, [39, -96], 5)
    zoom = page.evaluate("() => window.waymark.map.getZoom()")
    # markercluster also draws clusters a little beyond the edges: click one inside the map
    page.wait_for_function("""(id) => {
        const cluster = window.waymark.layers.get(id).view.wmCluster;
        if (window.waymark.map._animatingZoom || cluster._inZoomAnimation) return false;
        const box = document.getElementById("map").getBoundingClientRect();
        const inside = [...document.querySelectorAll(".marker-cluster")].find((c) => {
            const r = c.getBoundingClientRect();
            return r.left > box.left && r.right < box.right && r.top > box.top + 60 && r.bottom < box.bottom;
        });
        if (inside) inside.dataset.testInside = "1";
        return Boolean(inside);
    }""", arg=layer["id"])
    page.locator(".marker-cluster[data-test-inside='1']").click()
    page.wait_for_function(f"() => window.waymark.map.getZoom() > {zoom} && !window.waymark.map._animatingZoom")

    # the same layer as a heatmap
    set_view(page, [39, -96], 4)
    item = page.locator(f"[data-layer-id='{layer['id']}']")
    if item.locator("details").get_attribute("open") is None:  # "" when open
        item.get_by_text("Name, style and popup").click()
    display = item.locator("fieldset.display-style")
    display.get_by_label("Draw").select_option("heatmap")
    display.get_by_label("Heat radius (pixels)").fill("12")
    save_layer(page, item)
    heat = page.locator("canvas.leaflet-heatmap-layer")
    expect(heat).to_be_attached(timeout=30000)
    expect(page.locator(".marker-cluster")).to_have_count(0)
    painted = heat.evaluate("""(c) => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n / (c.width * c.height);
    }""")
    assert 0.01 < painted < 0.9, painted  # heat where the points are, not everywhere
    stored = page.request.get(f"/api/v1/maps/{map_id}/layers/{layer['id']}").json()["style"]["display"]
    assert stored["mode"] == "heatmap" and stored["heatRadius"] == 12
    page.wait_for_timeout(300)  # for the screenshot only
    screenshot(page, "heatmap")


def test_time_zones_kml_draws_in_its_own_colours(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    map_id, csrf = start(page)
    result = _import(page, map_id, csrf, CARTO / "timezones.kml", "application/vnd.google-earth.kml+xml")
    assert result["imported"] == 38
    open_map(page, map_id, "#2/20/0")
    fills = page.evaluate("""() => {
        const out = [];
        for (const e of window.waymark.layers.values())
            e.group.eachLayer((l) => out.push([l.options.fillColor, l.options.fillOpacity, l.options.color, l.options.opacity]));
        return out;
    }""")
    assert len(fills) == 38
    assert {f[0] for f in fills} == {"#5fb85b", "#fffeea", "#cdd661", "#9c930c", "#fff799", "#e2f6f8"}
    assert {tuple(f[1:]) for f in fills} == {(0.82, "#ffffff", 0.3)}
    # the browser drew them so: the SVG paths carry the zone colours
    drawn = set(page.locator("path.leaflet-interactive").evaluate_all("ps => ps.map(p => p.getAttribute('fill'))"))
    assert {"#5fb85b", "#cdd661", "#9c930c"} <= drawn, drawn
    screenshot(page, "time-zones")
