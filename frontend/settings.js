// Map settings for owners and editors: title, description (plain text; links become
// links), default view ("use the current view"), basemap, and which controls show on the
// page and in the embed. Saved as one ordinary map update (versioned in the map history).
import { api } from "./api.js";
import { richText } from "./popup.js";
import { el, notify } from "./ui.js";

const CONTROLS = [["search", "Search box"], ["basemaps", "Basemap switcher"], ["table", "Feature table"], ["legend", "Legend"]];

function viewText(view) {
  return view ? `Opens at zoom ${view.zoom} around ${view.lat.toFixed(4)}, ${view.lon.toFixed(4)}.` : "Opens showing all of its data.";
}

/** Show the saved settings on this page: title, description, basemap, controls. */
export function applyMapInfo(ctx) {
  const info = ctx.info;
  const title = document.querySelector(".map-title");
  if (title) title.textContent = info.title;
  document.title = `${info.title} · Waymark`;
  ctx.root.setAttribute("aria-label", `Map: ${info.title}`);
  const description = document.getElementById("map-description");
  if (description) {
    description.replaceChildren(richText(info.description || ""));
    description.hidden = !info.description;
  }
  ctx.basemap.show(info.basemap);
  ctx.applyControls();
}

/** A labelled field; the label names the control by its id (not by wrapping it, which
 * would add the control's value to its accessible name). */
function field(label, control) {
  return el("div", { class: "field" }, el("label", { for: control.id }, label), control);
}

function form(ctx) {
  const info = ctx.info;
  let view = info.default_view;
  const title = el("input", { id: "settings-title-input", name: "title", required: true, maxlength: "200", value: info.title });
  const description = el("textarea", { id: "settings-description", name: "description", rows: "4", maxlength: "20000", "aria-describedby": "settings-description-hint" }, info.description || "");
  const viewNote = el("p", { class: "muted", id: "settings-view" }, viewText(view));
  const useView = el("button", { type: "button" }, "Use the current view");
  const fitData = el("button", { type: "button" }, "Show all data instead");
  useView.addEventListener("click", () => {
    const c = ctx.map.getCenter();
    view = { lat: Number(c.lat.toFixed(5)), lon: Number(c.wrap().lng.toFixed(5)), zoom: ctx.map.getZoom() };
    viewNote.textContent = viewText(view);
  });
  fitData.addEventListener("click", () => {
    view = null;
    viewNote.textContent = viewText(view);
  });
  const basemap = el("select", { id: "settings-basemap", name: "basemap" },
    el("option", { value: "default" }, `Server default (${ctx.basemap.presets.find((p) => p.name === ctx.basemap.defaultName)?.title || "built in"})`),
    ctx.basemap.presets.map((p) => el("option", { value: p.name }, p.title)));
  basemap.value = ctx.basemap.presets.some((p) => p.name === info.basemap) ? info.basemap : "default";
  const boxes = {};
  const rows = CONTROLS.map(([name, label]) => {
    boxes[name] = {};
    const cells = ["page", "embed"].map((where) => {
      const box = el("input", { type: "checkbox", name: `${where}-${name}`, checked: info.controls[where][name],
        "aria-label": `${label} ${where === "page" ? "on the map page" : "in the embed"}` });
      boxes[name][where] = box;
      return el("td", {}, box);
    });
    return el("tr", {}, el("th", { scope: "row" }, label), ...cells);
  });
  const controls = el("table", { class: "controls-table" },
    el("thead", {}, el("tr", {}, el("td", {}), el("th", { scope: "col" }, "On the page"), el("th", { scope: "col" }, "In the embed"))),
    el("tbody", {}, rows));
  const formEl = el("form", { id: "map-settings-form", class: "map-settings" },
    field("Title", title),
    field("Description", description),
    el("p", { class: "muted small", id: "settings-description-hint" }, "Plain text. Web addresses (https://…) become links."),
    el("fieldset", {}, el("legend", {}, "Default view"), viewNote, el("div", { class: "form-actions" }, useView, fitData)),
    field("Basemap", basemap),
    el("fieldset", {}, el("legend", {}, "Controls"), controls),
    el("div", { class: "form-actions" }, el("button", { type: "submit", class: "primary" }, "Save settings")));
  formEl.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = { page: {}, embed: {} };
    for (const [name] of CONTROLS) for (const where of ["page", "embed"]) chosen[where][name] = boxes[name][where].checked;
    try {
      const saved = await api("PATCH", ctx.base, { json: {
        title: title.value.trim(), description: description.value, default_view: view, basemap: basemap.value, controls: chosen } });
      ctx.info = { ...ctx.info, ...saved, layers: ctx.info.layers };
      applyMapInfo(ctx);
      document.getElementById("settings-dialog").close();
      notify("Map settings saved.", "ok", { timeout: 2500 });
    } catch (exc) {
      notify(`Settings not saved: ${exc.message}`, "error");
    }
  });
  return formEl;
}

export function initSettings(ctx) {
  const open = document.getElementById("open-settings");
  const dialog = document.getElementById("settings-dialog");
  if (!open || !dialog) return;
  open.hidden = false;
  open.addEventListener("click", () => {
    dialog.querySelector(".dialog-body").replaceChildren(form(ctx));
    dialog.showModal();
  });
  dialog.querySelector(".dialog-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });
}
