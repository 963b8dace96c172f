// The side panel that edits one feature's properties (name, description, its style, any
// others).
import { showPanel } from "./controls.js";
import { styleFieldset, withStyle } from "./feature-style.js";
import { previewFeature } from "./draw.js";
import { describeSize, shapeChanges } from "./measure.js";
import { isInternal } from "./popup.js";
import { el, notify } from "./ui.js";

let ctxRef = null;
let ops = null;
let current = null; // the Leaflet layer being edited
let pending = null; // the style section's unsaved changes, previewed on the map (or null)

const KIND = { Point: "Point", MultiPoint: "Points", LineString: "Line", MultiLineString: "Lines", Polygon: "Polygon", MultiPolygon: "Polygons" };

function valueText(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** Typed text back to a value, keeping the type the property had (number, boolean, JSON). */
function parseValue(text, original) {
  if (typeof original === "string" || original === undefined) return text;
  if (typeof original === "number" && text.trim() !== "" && !Number.isNaN(Number(text))) return Number(text);
  if (typeof original === "boolean" && (text === "true" || text === "false")) return text === "true";
  if (original === null && text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function propRow(key = "", value = "") {
  const row = el("div", { class: "prop-row" },
    el("input", { class: "prop-key", "aria-label": "Property name", placeholder: "name", value: key }),
    el("input", { class: "prop-value", "aria-label": `Value of ${key || "new property"}`, placeholder: "value", value }),
    el("button", { type: "button", class: "icon", "aria-label": `Remove property ${key}`, title: "Remove property" }, "✕"));
  row.querySelector("button").addEventListener("click", () => row.remove());
  return row;
}

function collect(form, original) {
  // importer internals are not shown in the form; they are kept as they were
  const props = Object.fromEntries(Object.entries(original).filter(([k]) => isInternal(k)));
  const name = form.elements.name.value;
  const description = form.elements.description.value;
  if (name !== "" || "name" in original) props.name = name;
  if (description !== "" || "description" in original) props.description = description;
  for (const row of form.querySelectorAll(".prop-row")) {
    const key = row.querySelector(".prop-key").value.trim();
    if (!key || key === "name" || key === "description" || isInternal(key)) continue;
    props[key] = parseValue(row.querySelector(".prop-value").value, original[key]);
  }
  return props;
}

function render(layer) {
  const panel = document.getElementById("feature-body");
  const feature = layer.feature;
  const props = feature.properties || {};
  const entry = ctxRef.layers.get(layer._wmLayerId);
  const style = styleFieldset(entry, layer, (changes) => {
    pending = changes;
    showPending();
  });
  const form = el("form", { id: "feature-form", "aria-label": "Feature properties", dataset: { featureId: feature.id } },
    el("p", { class: "muted" }, `${KIND[feature.geometry?.type] || "Feature"} · version `, el("span", { id: "feature-version" }, String(feature.version))),
    el("p", { id: "feature-size", class: "feature-size" }, sizeOf(layer)),
    el("div", { id: "conflict", class: "conflict", role: "alert", hidden: true }),
    el("label", { class: "field" }, el("span", {}, "Name"), el("input", { name: "name", value: valueText(props.name), maxlength: "500" })),
    el("label", { class: "field" }, el("span", {}, "Description"), el("textarea", { name: "description", rows: "3" }, valueText(props.description))),
    style,
    el("fieldset", { class: "props" }, el("legend", {}, "Other properties"),
      el("div", { id: "prop-rows" }, Object.entries(props).filter(([k]) => k !== "name" && k !== "description" && !isInternal(k))
        .map(([k, v]) => propRow(k, valueText(v)))),
      el("button", { type: "button", id: "add-prop" }, "Add property")),
    el("div", { class: "form-actions" },
      el("button", { type: "submit", class: "primary" }, "Save properties"),
      el("button", { type: "button", id: "delete-feature", class: "danger" }, "Delete feature")));
  form.querySelector("#add-prop").addEventListener("click", () => {
    const row = propRow();
    form.querySelector("#prop-rows").append(row);
    row.querySelector("input").focus();
  });
  // `current`, not `layer`: a redraw of the layer may have put the feature in a new one
  form.querySelector("#delete-feature").addEventListener("click", () => {
    if (window.confirm("Delete this feature?")) ops.remove(ctxRef, current);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await submit(form, current);
  });
  panel.replaceChildren(form);
}

async function submit(form, layer, { force = false } = {}) {
  const style = form.querySelector(".feature-style");
  const props = withStyle(collect(form, layer.feature.properties || {}), style ? style.read() : {});
  try {
    const saved = await ops.save(ctxRef, layer, { properties: props });
    if (!saved) return; // a conflict: the panel shows it, the form keeps what was typed
    pending = null;
    form.querySelector("#feature-version").textContent = String(saved.version);
    form.querySelector("#conflict").hidden = true;
    if (layer.options && "title" in layer.options && layer._icon) layer._icon.title = props.name || "";
    ctxRef.restyleSoon(ctxRef.layers.get(layer._wmLayerId)); // its style, and the layer's classes
    ctxRef.status(force ? "Saved your version" : "Properties saved");
    notify("Properties saved.", "ok", { timeout: 2500 });
  } catch (exc) {
    if (exc.status !== 412) notify(`Properties not saved: ${exc.message}`, "error");
  }
}

function sizeOf(layer) {
  return layer.toGeoJSON ? describeSize(layer.toGeoJSON(10).geometry) : "";
}

/** The shape of the open feature changed (reshaped or moved): its length/area again. */
export function refreshSize(layer) {
  const size = current === layer && document.getElementById("feature-size");
  if (size) size.textContent = sizeOf(layer);
}

/** Show the unsaved style changes on the open feature. */
function showPending() {
  const entry = current && ctxRef.layers.get(current._wmLayerId);
  if (entry && pending) previewFeature(entry, current, withStyle(current.feature.properties || {}, pending));
}

/** After a redraw (the layer restyled, or reloaded from the server, e.g. when the live
 * connection says it changed): the open feature may be a new Leaflet layer now. Follow it
 * when it is the same version (someone else's newer version is left to the conflict view
 * on saving) and show the unsaved style preview on it again. */
function followRedraw() {
  if (!current || !current.feature) return;
  const shown = ctxRef.findFeature(current.feature.id);
  if (shown && shown !== current && shown.feature.version === current.feature.version) current = shown;
  if (shown === current) showPending();
}

export function openFeature(ctx, layer) {
  if (current && current !== layer && ctx.layers.has(current._wmLayerId)) {
    previewFeature(ctx.layers.get(current._wmLayerId), current, current.feature.properties || {});
  }
  if (current !== layer) pending = null;
  current = layer;
  render(layer);
  showPanel("feature");
}

export function closeFeature(layer) {
  if (current !== layer) return;
  const entry = layer && ctxRef.layers.get(layer._wmLayerId);
  if (entry) previewFeature(entry, layer, layer.feature.properties || {}); // drop an unsaved preview
  current = null;
  pending = null;
  const panel = document.getElementById("feature-body");
  if (panel) panel.replaceChildren(el("p", { class: "muted" }, "Select a shape on the map, or draw one, to edit its properties."));
}

/** Someone else saved this feature first: show their state, keep ours, let the user choose. */
export function showConflict(ctx, layer, theirs, mine, who = "someone else", { undo = "" } = {}) {
  if (current !== layer) openFeature(ctx, layer);
  const box = document.getElementById("conflict");
  if (!box) return;
  const props = theirs.properties || {};
  const list = el("dl", { class: "their-props" }, Object.entries(props).slice(0, 20).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, valueText(v))]));
  const geometryChange = "geometry" in mine;
  box.replaceChildren(
    el("strong", {}, `Not ${undo ? `${undo}ne` : "saved"}: this feature was changed by ${who}.`),
    el("p", {}, `${who[0].toUpperCase()}${who.slice(1)} saved version ${theirs.version} ` +
      (undo ? `after your edit, so the ${undo} would overwrite it. ` : "while you were editing. ") +
      (undo ? "" : geometryChange ? "Your shape is still on the map. " : "Everything you typed is still in the form below. ") +
      "Their version:"),
    Object.keys(props).length ? list : el("p", { class: "muted" }, "(no properties)"),
    el("div", { class: "form-actions" },
      el("button", { type: "button", class: "primary", id: "keep-mine" }, undo ? `${undo[0].toUpperCase()}${undo.slice(1)} anyway` : geometryChange ? "Keep my shape" : "Save my version"),
      el("button", { type: "button", id: "use-theirs" }, "Use their version")));
  box.hidden = false;
  box.querySelector("#keep-mine").addEventListener("click", async () => {
    layer.feature.version = theirs.version;
    box.hidden = true;
    if (geometryChange) {
      // an undo brings back its whole state; a reshape puts our shape over theirs with their
      // properties (a circle's radius brought up to date)
      const changes = undo ? mine : shapeChanges(theirs, mine.geometry);
      const saved = await ops.save(ctx, layer, changes).catch((exc) => notify(exc.message, "error"));
      if (saved) ctx.status("Saved your shape");
    } else {
      await submit(document.getElementById("feature-form"), layer, { force: true });
    }
  });
  box.querySelector("#use-theirs").addEventListener("click", () => {
    const fresh = ops.replace(ctx, layer, theirs);
    openFeature(ctx, fresh);
    ctx.status("Loaded their version");
  });
  box.scrollIntoView({ block: "nearest" });
}

export function initFeaturePanel(ctx, operations) {
  ctxRef = ctx;
  ops = operations;
  closeFeature(null);
  ctx.on("styleChanged", followRedraw);
  ctx.on("layersChanged", followRedraw);
  // a feature redrawn alone is added to its group just after this event
  ctx.on("featureLayer", () => Promise.resolve().then(followRedraw));
}
