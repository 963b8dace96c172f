"""The importer asks what it must, in Chromium: a CSV whose coordinate columns cannot be
found shows its first rows and lets the person pick the columns, then imports; a
GeoPackage's tables are picked before importing; a reprojected file says so."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.test_journey import sign_up, wait_map_ready

DATA = Path(__file__).resolve().parents[1] / "data" / "geo"
CSV = (b"place,north,east,kind\n"
       b"Bern,46.948,7.4474,capital\n"
       b"Zurich,47.3769,8.5417,city\n"
       b"Geneva,46.2044,6.1432,city\n")


def _new_map(page: Page, email: str, title: str) -> None:
    sign_up(page, email, "Ina Importer")
    page.get_by_label("Title of the new map").fill(title)
    page.get_by_role("button", name="Create map").click()
    page.wait_for_url("**/m/*")
    wait_map_ready(page)
    page.get_by_role("tab", name="Import").click()


def test_csv_column_picker(page: Page, console, screenshot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 1280, "height": 800})
    console.allow("422")  # the first upload is refused: its columns are unknown
    _new_map(page, "picker@example.com", "Swiss cities")
    path = tmp_path / "cities.csv"
    path.write_bytes(CSV)
    page.locator("#import-file").set_input_files(str(path))
    choice = page.locator("#import-choice")
    expect(choice.get_by_role("heading", name="Columns of cities.csv")).to_be_visible()
    table = choice.locator("table")
    expect(table.locator("th")).to_have_text(["place", "north", "east", "kind"])
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("tbody tr").first.locator("td")).to_have_text(
        ["Bern", "46.948", "7.4474", "capital"])
    screenshot(page, "import-csv-column-picker")
    # nothing chosen yet for a wrong pair: the picker says what is missing
    choice.get_by_label("Latitude column").select_option(label="north")
    choice.get_by_label("Longitude column").select_option(label="north")
    choice.get_by_role("button", name="Import").click()
    expect(choice.get_by_role("alert")).to_have_text(
        "Latitude and longitude must be two different columns.")
    choice.get_by_label("Longitude column").select_option(label="east")
    choice.get_by_role("button", name="Import").click()
    status = page.locator("#import-status")
    expect(status).to_contain_text("Imported 3 feature(s) from cities.csv")
    expect(choice).to_be_hidden()
    layers = page.evaluate("""() => [...window.waymark.layers.values()].map((e) =>
        e.group.getLayers().map((l) => [l.feature.properties.place,
                                        l.feature.geometry.coordinates]))""")
    places = sorted(p for layer in layers for p in layer)
    assert places == [["Bern", [7.4474, 46.948]], ["Geneva", [6.1432, 46.2044]],
                      ["Zurich", [8.5417, 47.3769]]]
    screenshot(page, "import-csv-imported")


def test_geopackage_table_picker_and_reprojection(page: Page, screenshot) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 1280, "height": 800})
    _new_map(page, "tables@example.com", "From a GeoPackage")
    page.locator("#import-file").set_input_files(str(DATA / "gpkg" / "corpus_layers.gpkg"))
    choice = page.locator("#import-choice")
    expect(choice.get_by_role("heading", name="Tables in corpus_layers.gpkg")).to_be_visible()
    for name in ("countries", "poole_bng", "earthquakes"):
        expect(choice.get_by_label(name)).to_be_checked()
    choice.get_by_label("countries").uncheck()
    choice.get_by_label("earthquakes").uncheck()
    screenshot(page, "import-gpkg-table-picker")
    choice.get_by_role("button", name="Import").click()
    status = page.locator("#import-status")
    expect(status).to_contain_text("Imported 1 feature(s) from corpus_layers.gpkg "
                                   "(coordinates converted from EPSG:27700)")
    expect(page.locator("#layers-list")).to_contain_text("poole_bng")
    expect(page.locator("#layers-list")).not_to_contain_text("earthquakes")
