// The layers panel: show/hide for everyone; for editors: choose the active layer, add,
// rename, restyle, reorder and delete layers.
import { api } from "./api.js";
import { DEFAULT_STYLE, FEATURE_STYLE_KEYS, safeColor } from "./style.js";
import { isInternal } from "./popup.js";
import { displayFieldset, labelFieldset, markerFieldset, ruleFieldset } from "./layer-style-form.js";
import { numericProperties } from "./datastyle.js";
import { entryFeatures } from "./draw.js";
import { el, icon, notify } from "./ui.js";

function field(label, input) {
  return el("label", { class: "field" }, el("span", {}, label), input);
}

/** Property keys of the layer's features, in first-seen order (at most `max`), without the
 * features' style properties (their look, not their data). */
export function propertyKeys(entry, { withName = false, max = 60 } = {}) {
  const keys = new Set();
  for (const layer of entry.group.getLayers()) {
    for (const key of Object.keys((layer.feature && layer.feature.properties) || {})) {
      if ((withName || key !== "name") && !(key in FEATURE_STYLE_KEYS)) keys.add(key);
      if (keys.size >= max) return [...keys];
    }
  }
  return [...keys];
}

/** The popup template editor: which fields show, their order and labels. */
function popupFieldset(entry) {
  const template = (entry.info.style || {}).popup;
  const keys = propertyKeys(entry);
  const chosen = template && template.fields.length ? template.fields : keys.filter((k) => !isInternal(k)).map((key) => ({ key, label: key }));
  const rows = [...chosen.filter((f) => keys.includes(f.key)).map((f) => ({ ...f, show: true })),
    ...keys.filter((k) => !chosen.some((f) => f.key === k)).map((key) => ({ key, label: key, show: false }))];
  const list = el("ol", { class: "popup-fields" });
  const row = (f) => {
    const item = el("li", { dataset: { key: f.key } },
      el("input", { type: "checkbox", class: "pf-show", checked: f.show, "aria-label": `Show ${f.key} in popups` }),
      el("span", { class: "pf-key", title: f.key }, f.key),
      el("input", { class: "pf-label", value: f.label, maxlength: "100", "aria-label": `Label of ${f.key}` }),
      el("button", { type: "button", class: "icon", "aria-label": `Move ${f.key} up`, onclick: () => {
        if (item.previousElementSibling) item.previousElementSibling.before(item);
        item.querySelector("button").focus();
      } }, icon("up")),
      el("button", { type: "button", class: "icon", "aria-label": `Move ${f.key} down`, onclick: () => {
        if (item.nextElementSibling) item.nextElementSibling.after(item);
        item.querySelectorAll("button")[1].focus();
      } }, icon("down")));
    return item;
  };
  list.append(...rows.map(row));
  const others = el("input", { type: "checkbox", name: "popupOthers", checked: Boolean(template && template.others) });
  const box = el("fieldset", { class: "popup-template" }, el("legend", {}, "Popup"),
    keys.length ? list : el("p", { class: "muted" }, "The features of this layer have no properties yet."),
    el("label", { class: "field-check" }, others, el("span", {}, "Then the other fields")));
  box.read = () => ({
    fields: [...list.children].filter((li) => li.querySelector(".pf-show").checked)
      .map((li) => ({ key: li.dataset.key, label: li.querySelector(".pf-label").value.trim() || li.dataset.key })),
    others: others.checked,
  });
  return box;
}

function styleForm(ctx, entry) {
  const s = { ...DEFAULT_STYLE, ...(entry.info.style || {}) };
  const name = el("input", { name: "name", value: entry.info.name, required: true, maxlength: "200" });
  const color = el("input", { type: "color", name: "color", value: safeColor(s.color, "#3388ff") });
  const weight = el("input", { type: "number", name: "weight", min: "0", max: "50", step: "1", value: String(s.weight) });
  const opacity = el("input", { type: "number", name: "opacity", min: "0", max: "1", step: "0.05", value: String(s.opacity) });
  const fill = el("input", { type: "checkbox", name: "fill", checked: s.fill !== false });
  const fillColor = el("input", { type: "color", name: "fillColor", value: safeColor(s.fillColor, "#3388ff") });
  const fillOpacity = el("input", { type: "number", name: "fillOpacity", min: "0", max: "1", step: "0.05", value: String(s.fillOpacity) });
  const markerColor = el("input", { type: "color", name: "markerColor", value: safeColor(s.markerColor, "#3388ff") });
  const popup = popupFieldset(entry);
  const keys = propertyKeys(entry, { withName: true, max: 300 }).filter((k) => !isInternal(k));
  const marker = markerFieldset(entry);
  const label = labelFieldset(entry, keys);
  const rule = ruleFieldset(entry, keys, () => {
    // a choropleth reads best with opaque fills and thin light outlines
    if (Number(fillOpacity.value) < 0.5) fillOpacity.value = "0.8";
    if (Number(weight.value) > 1) weight.value = "1";
    color.value = "#ffffff";
  });
  const display = displayFieldset(entry, numericProperties(entryFeatures(entry), keys));
  const form = el("form", { class: "layer-settings", "aria-label": `Settings of layer ${entry.info.name}` },
    display.suggestion,
    field("Name", name),
    el("fieldset", {}, el("legend", {}, "Style"),
      field("Line colour", color), field("Line weight", weight), field("Opacity", opacity),
      el("label", { class: "field field-check" }, fill, el("span", {}, "Fill areas")),
      field("Fill colour", fillColor), field("Fill opacity", fillOpacity), field("Marker colour", markerColor)),
    marker, rule, label, display,
    popup,
    el("button", { type: "submit" }, "Save layer"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const style = {
      color: color.value, weight: Number(weight.value), opacity: Number(opacity.value), fill: fill.checked,
      fillColor: fillColor.value, fillOpacity: Number(fillOpacity.value), markerColor: markerColor.value,
      ...marker.read(), label: label.read(), rule: rule.read(), display: display.read(),
      popup: popup.read(),
    };
    for (const key of Object.keys(style)) if (style[key] === undefined) delete style[key];
    try {
      const before = entry.info;
      entry.info = await api("PATCH", `${ctx.base}/layers/${entry.info.id}`, { json: { name: name.value.trim(), style } });
      entry.conflict = null;
      if (ctx.undo) ctx.undo.recordLayer(entry.info.id, before, entry.info);
      notify(`Layer "${entry.info.name}" saved.`, "ok");
      await ctx.restyle(entry); // a big layer drawn anew (e.g. as clusters) takes a moment
      render(ctx);
    } catch (exc) {
      notify(`Cannot save the layer: ${exc.message}`, "error");
    }
  });
  return form;
}

async function move(ctx, entry, delta) {
  const order = ctx.orderedLayers();
  const i = order.indexOf(entry);
  const j = i + delta;
  if (j < 0 || j >= order.length) return;
  [order[i], order[j]] = [order[j], order[i]];
  try {
    for (const [index, item] of order.entries()) {
      if (item.info.position !== index) {
        item.info = await api("PATCH", `${ctx.base}/layers/${item.info.id}`, { json: { position: index } });
      }
    }
  } catch (exc) {
    notify(`Cannot reorder the layers: ${exc.message}`, "error");
  }
  for (const item of ctx.orderedLayers()) if (item.shown) item.group.eachLayer((l) => l.bringToFront && l.bringToFront());
  render(ctx);
  document.querySelector(`[data-layer-id="${entry.info.id}"] .move-${delta < 0 ? "up" : "down"}`)?.focus();
}

async function remove(ctx, entry) {
  if (!window.confirm(`Delete layer "${entry.info.name}" and its ${entry.info.feature_count} features? History keeps a record.`)) return;
  try {
    await api("DELETE", `${ctx.base}/layers/${entry.info.id}`);
    ctx.hideEntry(entry);
    ctx.layers.delete(entry.info.id);
    if (ctx.activeLayerId === entry.info.id) ctx.activeLayerId = ctx.orderedLayers()[0]?.info.id || null;
    ctx.emit("layersChanged");
  } catch (exc) {
    notify(`Cannot delete the layer: ${exc.message}`, "error");
  }
}

function swatch(style = {}) {
  const dot = el("span", { class: "layer-swatch", "aria-hidden": "true" });
  dot.style.background = safeColor(style.markerColor || style.color); // CSSOM: allowed by a strict CSP
  return dot;
}

function layerItem(ctx, entry) {
  const { info } = entry;
  const count = entry.group.getLayers().length;
  const toggle = el("input", { type: "checkbox", checked: entry.shown, "aria-label": `Show layer ${info.name}` });
  toggle.addEventListener("change", () => {
    entry.shown = toggle.checked;
    ctx.showEntry(entry);
    ctx.emit("layerToggled", entry);
  });
  const item = el("li", { class: "layer-item", dataset: { layerId: info.id } });
  const head = el("div", { class: "layer-head" }, toggle,
    swatch(info.style),
    el("span", { class: "layer-name", title: info.name }, info.name), el("span", { class: "layer-count" }, `${count}`));
  item.append(head);
  if (!ctx.canEdit) return item;
  const active = el("input", { type: "radio", name: "active-layer", value: info.id, checked: ctx.activeLayerId === info.id,
    "aria-label": `Draw into layer ${info.name}` });
  active.addEventListener("change", () => {
    ctx.activeLayerId = info.id;
    ctx.emit("layersChanged");
  });
  head.prepend(active);
  head.append(
    el("button", { type: "button", class: "icon move-up", "aria-label": `Move layer ${info.name} up`, title: "Move up", onclick: () => move(ctx, entry, -1) }, icon("up")),
    el("button", { type: "button", class: "icon move-down", "aria-label": `Move layer ${info.name} down`, title: "Move down", onclick: () => move(ctx, entry, 1) }, icon("down")),
    el("button", { type: "button", class: "icon danger", "aria-label": `Delete layer ${info.name}`, title: "Delete layer", onclick: () => remove(ctx, entry) }, icon("trash")));
  const details = el("details", { class: "layer-details" }, el("summary", {}, "Name, style and popup"));
  if (entry.conflict) {
    details.open = true;
    details.append(layerConflictBox(ctx, entry));
  }
  details.append(styleForm(ctx, entry));
  item.append(details);
  return item;
}

/** An undo or redo of our layer change refused: someone else changed the settings since.
 * The form below shows their version; the step stays on the stack. */
function layerConflictBox(ctx, entry) {
  const { what, who, retry } = entry.conflict;
  const dismiss = () => {
    entry.conflict = null;
    render(ctx);
  };
  return el("div", { class: "conflict", role: "alert" },
    el("strong", {}, `Not ${what}ne: this layer's settings were changed by ${who}.`),
    el("p", {}, `${who[0].toUpperCase()}${who.slice(1)} changed them after your edit, so the ${what} would overwrite their change. ` +
      "Their version is shown below."),
    el("div", { class: "form-actions" },
      retry ? el("button", { type: "button", class: "primary", onclick: () => retry() }, `${what[0].toUpperCase()}${what.slice(1)} anyway`) : null,
      el("button", { type: "button", onclick: dismiss }, "Keep their version")));
}

function render(ctx) {
  const list = document.getElementById("layers-list");
  if (!list) return;
  const open = new Set([...list.querySelectorAll("details[open]")].map((d) => d.closest("li").dataset.layerId));
  list.replaceChildren(...ctx.orderedLayers().map((entry) => layerItem(ctx, entry)));
  for (const id of open) list.querySelector(`[data-layer-id="${id}"] details`)?.setAttribute("open", "");
  if (!ctx.layers.size) list.append(el("li", { class: "muted" }, "No layers yet."));
}

export async function createLayer(ctx, name) {
  const info = await api("POST", `${ctx.base}/layers`, { json: { name } });
  const entry = ctx.addLayer(info);
  ctx.activeLayerId = info.id;
  ctx.emit("layersChanged");
  return entry;
}

export function initLayersPanel(ctx) {
  ctx.on("layersChanged", () => render(ctx));
  ctx.on("featureLayer", () => {
    clearTimeout(ctx._countTimer);
    ctx._countTimer = setTimeout(() => render(ctx), 100);
  });
  render(ctx);
  const form = document.getElementById("add-layer");
  if (form && ctx.canEdit) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = form.elements.name;
      try {
        await createLayer(ctx, input.value.trim());
        input.value = "";
        notify("Layer added; new shapes go into it.", "ok");
      } catch (exc) {
        notify(`Cannot add the layer: ${exc.message}`, "error");
      }
    });
  }
}
