// The feature panel's "Style" section: this feature's own colour, line, fill, icon, size and
// label, on top of its layer's style. Saved as the feature's simplestyle properties
// (marker-color, stroke, fill …, label-text, label-show) with the other properties — an
// ordinary versioned feature edit. A field left alone keeps following the layer's style;
// "Use the layer's style" removes the feature's own style. The map previews each change.
import { pickIcon } from "./icon-picker.js";
import { iconLabel, iconUrl } from "./icons.js";
import { effectiveStyle, safeColor } from "./style.js";
import { el } from "./ui.js";

const POINT = new Set(["Point", "MultiPoint"]);
const LINE = new Set(["LineString", "MultiLineString"]);

/** The style properties this form edits. */
export const STYLE_PROPS = ["marker-color", "marker-symbol", "marker-size", "stroke", "stroke-width", "stroke-opacity",
  "fill", "fill-opacity", "label-text", "label-show"];

/** A colour for <input type="color">, which only takes "#rrggbb". */
function colorInputValue(value) {
  const c = safeColor(String(value ?? ""), "#3388ff");
  if (/^#[0-9a-f]{6}$/i.test(c)) return c.toLowerCase();
  if (/^#[0-9a-f]{3}$/i.test(c)) return `#${[...c.slice(1)].map((x) => x + x).join("")}`.toLowerCase();
  return "#3388ff";
}

function row(label, input, hint) {
  const id = `fs-${input.name}`;
  input.id = id;
  return el("div", { class: "field" }, el("label", { for: id }, label), input, hint || null);
}

/** The fieldset for one feature (a Leaflet layer of entry); onPreview(props) shows a change. */
export function styleFieldset(entry, layer, onPreview) {
  const feature = layer.feature;
  const own = feature.properties || {};
  const kind = POINT.has(feature.geometry?.type) ? "point" : LINE.has(feature.geometry?.type) ? "line" : "area";
  const inherited = effectiveStyle(entry.info.style || {}, { ...feature, properties: {} },
    entry.rule ? entry.rule.classOf(feature) : null);
  const inputs = {};
  const start = (prop, fallback) => (own[prop] !== undefined && own[prop] !== null && own[prop] !== "" ? own[prop] : fallback);
  const mark = (input) => {
    input.dataset.set = "1";
    onPreview(read());
  };
  const input = (prop, attrs, fallback) => {
    const { tag = "input", options = [], ...rest } = attrs;
    const node = el(tag, { name: prop, ...rest }, ...options);
    const value = start(prop, fallback);
    node.value = attrs.type === "color" ? colorInputValue(value) : value === undefined || value === null ? "" : String(value);
    if (own[prop] !== undefined && own[prop] !== null && own[prop] !== "") node.dataset.set = "1";
    node.addEventListener("input", () => mark(node));
    node.addEventListener("change", () => mark(node));
    inputs[prop] = node;
    return node;
  };
  const option = (value, text) => el("option", { value }, text);
  const rows = [];
  let symbol = own["marker-symbol"] || null;
  const iconButton = el("button", { type: "button", class: "icon-button", id: "fs-marker-symbol" });
  const showSymbol = () => iconButton.replaceChildren(...(symbol ? [el("img", { src: iconUrl(symbol), alt: "", width: "18", height: "18" }),
    el("span", {}, iconLabel(symbol))] : [el("span", {}, inherited.markerSymbol ? `Layer's (${iconLabel(inherited.markerSymbol)})` : "No icon")]));
  if (kind === "point") {
    rows.push(row("Colour", input("marker-color", { type: "color" }, inherited.markerColor)));
    showSymbol();
    iconButton.addEventListener("click", async () => {
      const picked = await pickIcon(symbol);
      if (picked === undefined) return;
      symbol = picked;
      iconButton.dataset.set = "1";
      showSymbol();
      onPreview(read());
      iconButton.focus();
    });
    if (own["marker-symbol"]) iconButton.dataset.set = "1";
    rows.push(el("div", { class: "field" }, el("label", { for: "fs-marker-symbol" }, "Icon"), iconButton));
    rows.push(row("Size", input("marker-size", { tag: "select", options: [option("small", "Small"), option("medium", "Medium"), option("large", "Large")] },
      inherited.markerSize || "medium")));
  } else {
    rows.push(row(kind === "line" ? "Line colour" : "Outline colour", input("stroke", { type: "color" }, inherited.color)));
    rows.push(row(kind === "line" ? "Line width" : "Outline width", input("stroke-width", { type: "number", min: "0", max: "50", step: "0.5" }, inherited.weight)));
    rows.push(row(kind === "line" ? "Line opacity" : "Outline opacity", input("stroke-opacity", { type: "number", min: "0", max: "1", step: "0.05" }, inherited.opacity)));
    if (kind === "area") {
      rows.push(row("Fill colour", input("fill", { type: "color" }, inherited.fillColor)));
      rows.push(row("Fill opacity", input("fill-opacity", { type: "number", min: "0", max: "1", step: "0.05" }, inherited.fillOpacity)));
    }
  }
  const layerLabel = (entry.info.style || {}).label;
  rows.push(row("Label", input("label-text", { type: "text", maxlength: "200", placeholder: layerLabel ? layerLabel.text : "e.g. {name}",
    "aria-describedby": "fs-label-hint" }, ""),
  el("p", { class: "muted small", id: "fs-label-hint" }, "Text shown next to the feature; {property} is replaced by its value.")));
  rows.push(row("Show the label", input("label-show", { tag: "select", options: [option("always", "Always"), option("hover", "When pointed at")] },
    (layerLabel && layerLabel.show) || "always")));
  const reset = el("button", { type: "button", id: "style-reset" }, "Use the layer's style");
  const box = el("fieldset", { class: "feature-style" }, el("legend", {}, "Style"), ...rows, reset);
  reset.addEventListener("click", () => {
    for (const node of [...Object.values(inputs), iconButton]) delete node.dataset.set;
    symbol = null;
    showSymbol();
    onPreview(read());
  });

  /** The feature's style properties as the form says: {prop: value} for the fields set,
   * {prop: undefined} for the others (they are removed from the feature). */
  function read() {
    const out = {};
    for (const prop of STYLE_PROPS) out[prop] = undefined;
    for (const [prop, node] of Object.entries(inputs)) {
      if (!node.dataset.set || node.value === "") continue;
      out[prop] = node.type === "number" ? Number(node.value) : node.value;
    }
    if (iconButton.dataset.set && symbol) out["marker-symbol"] = symbol;
    return out;
  }
  box.read = read;
  return box;
}

/** props with the style section's values applied (unset ones removed). */
export function withStyle(props, style) {
  const out = { ...props };
  for (const [key, value] of Object.entries(style)) {
    if (value === undefined) delete out[key];
    else out[key] = value;
  }
  return out;
}
