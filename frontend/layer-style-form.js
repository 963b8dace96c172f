// The layer settings' cartography: the pins' icon and size, labels, a data-driven style
// ("Colour by data": categories, graduated colours, proportional circles, with a preview of
// the legend) and how points are drawn (as they are, clustered, heatmap). Each part reads
// back into the layer style document (maps/styles.py).
import { compileRule, numericProperties, suggestCategories } from "./datastyle.js";
import { entryFeatures } from "./draw.js";
import { pickIcon } from "./icon-picker.js";
import { iconLabel, iconUrl } from "./icons.js";
import { legendRows } from "./legend.js";
import { DEFAULT_CATEGORY_RAMP, DEFAULT_NUMERIC_RAMP, RAMPS } from "./ramps.js";
import { isPoint, safeColor } from "./style.js";
import { el } from "./ui.js";

let uid = 0;

/** A labelled control (label by id, as the map settings do). */
function field(label, control, hint) {
  control.id = control.id || `ls-${++uid}`;
  return el("div", { class: "field" }, el("label", { for: control.id }, label), control, hint || null);
}

const select = (name, options, value) => {
  const node = el("select", { name }, options.map(([v, text]) => el("option", { value: v }, text)));
  if (value !== undefined && value !== null) node.value = String(value);
  return node;
};
const number = (name, value, min, max, step = "1") => el("input", { type: "number", name, min: String(min), max: String(max), step, value: String(value) });
const color = (name, value, fallback = "#9e9e9e") => {
  const c = safeColor(value, fallback);
  return el("input", { type: "color", name, value: /^#[0-9a-f]{6}$/i.test(c) ? c : fallback });
};

/** Marker icon and size of the layer's pins. */
export function markerFieldset(entry) {
  const style = entry.info.style || {};
  let symbol = style.markerSymbol || null;
  const button = el("button", { type: "button", class: "icon-button" });
  const show = () => button.replaceChildren(...(symbol ? [el("img", { src: iconUrl(symbol), alt: "", width: "18", height: "18" }),
    el("span", {}, iconLabel(symbol))] : [el("span", {}, "No icon")]));
  show();
  button.addEventListener("click", async () => {
    const picked = await pickIcon(symbol);
    if (picked !== undefined) {
      symbol = picked;
      show();
    }
    button.focus();
  });
  const size = select("markerSize", [["small", "Small"], ["medium", "Medium"], ["large", "Large"]], style.markerSize || "medium");
  const box = el("fieldset", { class: "marker-style" }, el("legend", {}, "Pins"), field("Icon", button), field("Size", size));
  box.read = () => ({ markerSymbol: symbol || undefined, markerSize: size.value === "medium" ? undefined : size.value });
  return box;
}

/** The label of every feature: a template, shown always or on hover. */
export function labelFieldset(entry, keys) {
  const label = (entry.info.style || {}).label || {};
  const text = el("input", { name: "labelText", maxlength: "200", value: label.text || "", placeholder: keys.includes("name") || !keys.length ? "{name}" : `{${keys[0]}}` });
  const show = select("labelShow", [["always", "Always"], ["hover", "When pointed at"]], label.show || "always");
  const box = el("fieldset", { class: "label-style" }, el("legend", {}, "Labels"),
    field("Label text", text, el("p", { class: "muted small" }, "Empty: no labels. {property} is replaced by each feature's value, e.g. {name}.")),
    field("Show", show));
  box.read = () => (text.value.trim() ? { text: text.value.trim(), show: show.value } : undefined);
  return box;
}

// above this many points drawn one by one, the form suggests clusters or a heatmap
const BIG_LAYER = 5000;

/** How the points are drawn: as they are, clustered, or as a heatmap. */
export function displayFieldset(entry, numericKeys) {
  const d = { mode: "plain", clusterMaxZoom: 15, heatRadius: 25, heatBlur: 15, ...((entry.info.style || {}).display || {}) };
  const mode = select("displayMode", [["plain", "Each point"], ["cluster", "Clusters (with counts)"], ["heatmap", "Heatmap"]], d.mode);
  const dissolve = number("clusterMaxZoom", d.clusterMaxZoom, 1, 22);
  const radius = number("heatRadius", d.heatRadius, 2, 100);
  const blur = number("heatBlur", d.heatBlur, 0, 100);
  const weight = select("heatWeight", [["", "Each point the same"], ...numericKeys.map((k) => [k, k])], d.heatWeight || "");
  const clusterRow = field("Clusters dissolve at zoom", dissolve);
  const heatRows = [field("Heat radius (pixels)", radius), field("Blur (pixels)", blur), field("Weight by", weight)];
  const sync = () => {
    clusterRow.hidden = mode.value !== "cluster";
    for (const r of heatRows) r.hidden = mode.value !== "heatmap";
  };
  mode.addEventListener("change", sync);
  sync();
  const points = entryFeatures(entry).filter(isPoint).length;
  const switchTo = (wanted) => el("button", { type: "button", onclick: () => {
    mode.value = wanted;
    sync();
    box.closest("form").requestSubmit(); // one click: drawn that way and saved
  } }, wanted === "cluster" ? "Show as clusters" : "Show as heatmap");
  const suggestion = points > BIG_LAYER && d.mode === "plain" ? el("div", { class: "suggestion", role: "note" },
    el("p", {}, `${points.toLocaleString()} points overlap when drawn one by one, and slow the map down. ` +
      "Clusters (with counts) or a heatmap show them better."),
    el("div", { class: "form-actions" }, switchTo("cluster"), switchTo("heatmap"))) : null;
  const box = el("fieldset", { class: "display-style" }, el("legend", {}, "Points on the map"), field("Draw", mode), clusterRow, ...heatRows);
  box.suggestion = suggestion; // shown at the top of the layer's settings, where it is seen
  box.read = () => {
    if (mode.value === "plain") return undefined;
    const out = { mode: mode.value };
    if (mode.value === "cluster") out.clusterMaxZoom = Number(dissolve.value);
    else {
      Object.assign(out, { heatRadius: Number(radius.value), heatBlur: Number(blur.value) });
      if (weight.value) out.heatWeight = weight.value;
    }
    return out;
  };
  return box;
}

const RULE_TYPES = [["", "No (one style for the layer)"], ["categorized", "Categories: a colour per value"],
  ["graduated", "Graduated colours: numbers in classes"], ["proportional", "Proportional circles (points)"]];
const METHODS = [["quantile", "Quantiles (equal counts)"], ["equal", "Equal intervals"], ["jenks", "Natural breaks (Jenks)"], ["manual", "My own breaks"]];

function rampOptions(kind) {
  return Object.entries(RAMPS).filter(([, r]) => (kind === "categorical" ? r.kind === "categorical" : r.kind !== "categorical"))
    .map(([name, r]) => [name, `${r.label}${r.safe ? "" : " (not colour-blind safe)"}`]);
}

/** The data-driven style editor, with a live legend preview. onChosen() is called when a
 * rule is chosen for a layer that had none (the form then suggests a choropleth's look). */
export function ruleFieldset(entry, keys, onChosen = () => {}) {
  const features = entryFeatures(entry);
  const numeric = numericProperties(features, keys);
  const saved = (entry.info.style || {}).rule || {};
  const type = select("ruleType", RULE_TYPES, saved.type || "");
  const property = select("ruleProperty", keys.map((k) => [k, numeric.includes(k) ? `${k} (numbers)` : k]), saved.property || numeric[0] || keys[0]);
  const method = select("ruleMethod", METHODS, saved.method || "quantile");
  const classes = number("ruleClasses", saved.classes || 5, 2, 9);
  const ramp = select("ruleRamp", rampOptions("numeric"), saved.ramp || DEFAULT_NUMERIC_RAMP);
  const reverse = el("input", { type: "checkbox", name: "ruleReverse", checked: Boolean(saved.reverse) });
  const breaks = el("input", { name: "ruleBreaks", value: (saved.breaks || []).join(", "), placeholder: "e.g. 1000, 50000, 1000000", inputmode: "decimal" });
  const minRadius = number("ruleMinRadius", saved.minRadius || 4, 1, 50);
  const maxRadius = number("ruleMaxRadius", saved.maxRadius || 30, 2, 100);
  const circleColor = color("ruleColor", saved.color || (entry.info.style || {}).markerColor, "#3388ff");
  const noDataColor = color("ruleNoDataColor", saved.noDataColor || "#cccccc", "#cccccc");
  const otherColor = color("ruleOtherColor", saved.otherColor || "#9e9e9e");
  let categories = saved.type === "categorized" ? (saved.categories || []).map((c) => ({ ...c })) : null;
  const catList = el("ul", { class: "category-list" });
  const suggest = el("button", { type: "button" }, "Fill in from the data");
  const preview = el("ul", { class: "legend-preview", "aria-label": "Legend preview" });
  const status = el("p", { class: "muted small", role: "status" });

  const renderCategories = () => {
    catList.replaceChildren(...(categories || []).map((c, i) => {
      const input = color(`cat-${i}`, c.color);
      input.setAttribute("aria-label", `Colour of ${c.value || "(empty)"}`);
      input.addEventListener("input", () => {
        c.color = input.value;
        update();
      });
      return el("li", {}, input, el("span", { class: "category-value", title: c.value }, c.value));
    }));
  };
  suggest.addEventListener("click", () => {
    categories = suggestCategories(features, property.value, DEFAULT_CATEGORY_RAMP);
    renderCategories();
    update();
  });

  const groups = {
    categorized: [field("Colours", catList), suggest, field("Other values", otherColor)],
    graduated: [field("Classes by", method), field("Number of classes", classes), field("Breaks", breaks,
      el("p", { class: "muted small" }, "Between the classes, ascending.")), field("Colour ramp", ramp),
    el("label", { class: "field-check" }, reverse, el("span", {}, "Reverse the colours"))],
    proportional: [field("Smallest circle (pixels)", minRadius), field("Largest circle (pixels)", maxRadius), field("Circle colour", circleColor)],
  };
  const propertyRow = field("Property", property);
  const noDataRow = field("No data (missing or not a number)", noDataColor);

  function read() {
    const kind = type.value;
    if (!kind || !property.value) return undefined;
    const base = { type: kind, property: property.value, noDataColor: noDataColor.value };
    if (kind === "categorized") {
      if (!categories) categories = suggestCategories(features, property.value, DEFAULT_CATEGORY_RAMP);
      return { ...base, categories: categories.slice(0, 100), otherColor: otherColor.value };
    }
    if (kind === "graduated") {
      const rule = { ...base, method: method.value, classes: Number(classes.value), ramp: ramp.value, reverse: reverse.checked };
      if (method.value === "manual") {
        rule.breaks = breaks.value.split(/[,;\s]+/).filter(Boolean).map(Number);
        rule.classes = rule.breaks.length + 1;
      }
      return rule;
    }
    return { ...base, minRadius: Number(minRadius.value), maxRadius: Number(maxRadius.value), color: circleColor.value };
  }

  function update() {
    const kind = type.value;
    propertyRow.hidden = noDataRow.hidden = !kind;
    for (const [name, rows] of Object.entries(groups)) for (const r of rows) r.hidden = name !== kind;
    breaks.closest(".field").hidden = kind !== "graduated" || method.value !== "manual";
    classes.closest(".field").hidden = kind !== "graduated" || method.value === "manual";
    if (kind === "categorized" && !categories && property.value) {
      categories = suggestCategories(features, property.value, DEFAULT_CATEGORY_RAMP);
      renderCategories();
    }
    const rule = read();
    const compiled = rule ? compileRule(rule, features) : null;
    preview.replaceChildren(...(compiled ? legendRows({ ...entry, info: { ...entry.info, style: { ...entry.info.style, rule, display: undefined } } }, compiled) : []));
    preview.hidden = !compiled;
    status.textContent = kind && !keys.length ? "The features of this layer have no properties yet." : "";
  }
  property.addEventListener("change", () => {
    if (type.value === "categorized") categories = null;
    update();
  });
  let had = type.value;
  type.addEventListener("change", () => {
    if (!had && type.value) onChosen(type.value);
    had = type.value;
  });
  for (const node of [type, method, classes, ramp, reverse, breaks, minRadius, maxRadius, circleColor, noDataColor, otherColor]) {
    node.addEventListener("input", update);
    node.addEventListener("change", update);
  }
  renderCategories();
  const box = el("fieldset", { class: "rule-style" }, el("legend", {}, "Colour by data"), field("Style by", type), propertyRow,
    ...groups.categorized, ...groups.graduated, ...groups.proportional, noDataRow, status,
    preview);
  update();
  box.read = read;
  return box;
}
