// What the importer asks before importing, when it must: which tables of a GeoPackage, and
// which CSV columns hold the coordinates when detection found none (the first rows are shown
// as a table). Each returns the query parameters to import with, or null when cancelled.
import { el } from "./ui.js";

function ask(box, title, body, onOk, okLabel = "Import") {
  return new Promise((resolve) => {
    const finish = (value) => {
      box.replaceChildren();
      box.hidden = true;
      resolve(value);
    };
    const error = el("p", { class: "import-status error", role: "alert", hidden: true });
    box.replaceChildren(el("h3", {}, title), body, error,
      el("div", { class: "import-choice-actions" },
        el("button", { type: "button", class: "primary", onclick: () => {
          const result = onOk();
          if (typeof result === "string") {
            error.textContent = result;
            error.hidden = false;
          } else finish(result);
        } }, okLabel),
        el("button", { type: "button", onclick: () => finish(null) }, "Cancel")));
    box.hidden = false;
    box.querySelector("input, select, button")?.focus();
  });
}

/** Pick the tables of a GeoPackage to import (all ticked to begin with). */
export function pickTables(box, fileName, tables) {
  const boxes = tables.map((name) => el("input", { type: "checkbox", value: name, checked: true }));
  const list = el("div", { class: "import-tables" },
    ...tables.map((name, i) => el("label", { class: "field-check" }, boxes[i], name)));
  return ask(box, `Tables in ${fileName}`, list, () => {
    const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
    return chosen.length ? { layers: chosen.join(",") } : "Tick at least one table.";
  });
}

function columnSelect(label, columns, preselect) {
  const select = el("select", {}, el("option", { value: "" }, "—"),
    ...columns.map((name, i) => el("option", { value: String(i + 1) }, name)));
  if (preselect !== undefined && preselect >= 0) select.value = String(preselect + 1);
  return [el("label", { class: "field" }, el("span", {}, label), select), select];
}

function guess(columns, words) {
  return columns.findIndex((c) => words.some((w) => c.toLowerCase().includes(w)));
}

/** Show a CSV's first rows and let the person say which columns are latitude/longitude. */
export function pickColumns(box, fileName, preview) {
  const { rows } = preview;
  // a file without a header row: its columns are numbered
  const columns = preview.header ? preview.columns : preview.columns.map((_, i) => `Column ${i + 1}`);
  const table = el("div", { class: "import-preview" }, el("table", {},
    el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", { scope: "col" }, c)))),
    el("tbody", {}, ...rows.slice(0, 5).map((row) => el("tr", {}, ...columns.map((_, i) => el("td", {}, row[i] ?? "")))))));
  const [latField, lat] = columnSelect("Latitude column", columns, guess(columns, ["lat", "north", "y"]));
  const [lonField, lon] = columnSelect("Longitude column", columns, guess(columns, ["lon", "lng", "east", "x"]));
  const [wktField, wkt] = columnSelect("…or a WKT geometry column", columns);
  const note = el("p", { class: "muted" }, "Waymark could not tell which columns hold the coordinates. Here are the first rows:");
  const body = el("div", {}, note, table, el("div", { class: "import-columns" }, latField, lonField, wktField));
  return ask(box, `Columns of ${fileName}`, body, () => {
    const header = preview.header ? {} : { header: "false" };
    if (wkt.value) return { ...header, wkt: wkt.value };
    if (!lat.value || !lon.value) return "Choose the latitude and the longitude column (or a WKT column).";
    if (lat.value === lon.value) return "Latitude and longitude must be two different columns.";
    return { ...header, lat: lat.value, lon: lon.value };
  });
}
