// The legend: the shown layers, each with its colour — or, for a data-driven style, its
// classes (categories with "Other", graduated ranges, circle sizes, and the "No data" class
// when some features have no usable value) with their feature counts; a heatmap layer shows
// its colour scale. In a corner of the map (the page and the embed, as the map's settings
// say); the layer settings show the same legend as a preview.
import L from "./leaflet-setup.js";
import { entryFeatures } from "./draw.js";
import { iconUrl, validIconName } from "./icons.js";
import { safeColor } from "./style.js";
import { el } from "./ui.js";

function swatch(color, { radius = null, symbol = null, line = false } = {}) {
  const dot = el("span", { class: `layer-swatch${radius ? " legend-circle" : ""}${line ? " legend-line" : ""}`, "aria-hidden": "true" });
  dot.style.background = safeColor(color); // CSSOM: allowed by a strict CSP
  if (radius) {
    const d = Math.round(Math.min(radius, 24) * 2);
    dot.style.width = `${d}px`;
    dot.style.height = `${d}px`;
  }
  if (symbol && validIconName(symbol)) dot.append(el("img", { src: iconUrl(symbol), alt: "" }));
  return dot;
}

/** The legend rows of one layer entry (class rows for a data-driven style). */
export function legendRows(entry, compiled = entry.rule) {
  const style = entry.info.style || {};
  const base = style.markerColor || style.color;
  if (style.display && style.display.mode === "heatmap") {
    const scale = el("span", { class: "legend-heat", "aria-hidden": "true" });
    return [el("li", {}, scale, el("span", {}, "Fewer → more points"))];
  }
  if (!compiled) return [];
  const rows = compiled.legend(entryFeatures(entry));
  return rows.map((row) => el("li", { class: row.noData ? "legend-nodata" : null },
    swatch(row.color || base, { radius: row.radius, symbol: row.symbol }),
    el("span", { class: "legend-label" }, row.label),
    el("span", { class: "legend-count", title: `${row.count} features` }, String(row.count))));
}

function layerBlock(entry) {
  const style = entry.info.style || {};
  const rows = legendRows(entry);
  if (!rows.length) {
    return el("li", {}, swatch(style.markerColor || style.color), el("span", {}, entry.info.name));
  }
  const rule = entry.rule && entry.rule.rule;
  const title = rule ? `${entry.info.name} · ${rule.property}` : entry.info.name;
  return el("li", { class: "legend-layer" }, el("span", { class: "legend-title" }, title), el("ul", {}, rows));
}

export function legendControl(ctx) {
  const box = el("section", { class: "wm-legend leaflet-control", "aria-label": "Legend" });
  const render = () => {
    // an empty layer says nothing on a map: not in its legend, unless all are empty
    const shown = ctx.orderedLayers().filter((e) => e.shown);
    const filled = shown.filter((e) => e.group.getLayers().length);
    const items = (filled.length ? filled : shown).map(layerBlock);
    box.replaceChildren(el("h2", {}, "Legend"), el("ul", {}, items));
    box.hidden = !items.length;
  };
  const Control = L.Control.extend({ options: { position: "bottomleft" }, onAdd: () => {
    render();
    L.DomEvent.disableScrollPropagation(box);
    return box;
  } });
  let timer = null;
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(render, 50);
  };
  ctx.on("layersChanged", soon);
  ctx.on("layerToggled", soon);
  ctx.on("styleChanged", soon);
  return new Control();
}
