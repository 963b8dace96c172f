// Drawing one layer's features: pins, dots or circles for points (by the layer's size and
// style), paths for lines and areas, each in its effective style (style.js: layer, rule
// class, own style) and with its label. restyle() redraws in place after a style change or
// an edit; a change of point kind (e.g. to proportional circles) needs a rebuild instead.
import L from "./leaflet-setup.js";
import { compileRule } from "./datastyle.js";
import { dotStyle, effectiveStyle, isPoint, pathOptions, styleIcon } from "./style.js";
import { el } from "./ui.js";

const DOTS_ABOVE = 300; // a layer with more points than this draws them as canvas dots

/** How the layer draws its points: "pin" (DOM markers; clusters need them), "dot" (canvas)
 * or "circle" (proportional, canvas). */
export function pointKind(style = {}, pointCount = 0) {
  const mode = (style.display && style.display.mode) || "plain";
  if (mode === "cluster") return "pin";
  if (style.rule && style.rule.type === "proportional") return "circle";
  if (mode === "heatmap") return "dot";
  return pointCount > DOTS_ABOVE ? "dot" : "pin";
}

/** The features of a layer entry (GeoJSON objects of its Leaflet layers). */
export function entryFeatures(entry) {
  return entry.group ? entry.group.getLayers().map((l) => l.feature).filter(Boolean) : [];
}

/** {name} placeholders filled from the properties (text only: never HTML). */
export function labelText(template, props = {}) {
  return String(template).replace(/\{([^{}]{1,100})\}/g, (_, key) => {
    const v = props[key.trim()];
    return v === undefined || v === null ? "" : typeof v === "object" ? "" : String(v);
  }).trim();
}

function styleOf(entry, feature) {
  return effectiveStyle(entry.info.style || {}, feature, entry.rule ? entry.rule.classOf(feature) : null);
}

/** The feature's label: its own label-text, else the layer's; shown always or on hover. */
function applyLabel(entry, layer, style, feature = layer.feature) {
  const layerLabel = (entry.info.style || {}).label;
  const template = style.labelText || (layerLabel && layerLabel.text);
  const show = style.labelShow || (layerLabel && layerLabel.show) || "always";
  const text = template ? labelText(template, feature.properties || {}) : "";
  const key = text ? `${show}|${text}` : "";
  if (layer._wmLabel === key) return;
  layer._wmLabel = key;
  layer.unbindTooltip();
  if (!text) return;
  const permanent = show !== "hover";
  layer.bindTooltip(el("span", {}, text), {
    permanent, direction: isPoint(layer.feature) ? "right" : "center",
    className: `wm-label${permanent ? " wm-label-always" : ""}`, opacity: 1,
  });
}

/** Options of the L.geoJSON group of a layer entry (entry.pointKind decided by the caller). */
export function drawOptions(ctx, entry, onEachFeature) {
  const canvas = () => {
    if (!ctx.canvas) ctx.canvas = L.canvas({ padding: 0.3, tolerance: 4 });
    return ctx.canvas;
  };
  const dots = entry.pointKind !== "pin";
  return {
    renderer: dots ? canvas() : undefined,
    style: (feature) => {
      const style = styleOf(entry, feature);
      return dots && isPoint(feature) ? dotStyle(style) : pathOptions(style, feature);
    },
    pointToLayer: (feature, latlng) => (dots ? L.circleMarker(latlng, { renderer: canvas() })
      : L.marker(latlng, { icon: styleIcon(styleOf(entry, feature)), keyboard: true,
        title: feature.properties && feature.properties.name ? String(feature.properties.name) : "" })),
    onEachFeature: (feature, layer) => {
      applyLabel(entry, layer, styleOf(entry, feature));
      onEachFeature(feature, layer);
    },
  };
}

/** Draw one feature in its style (properties: as they are, or as an edit would make them). */
function redraw(entry, layer, feature) {
  const style = styleOf(entry, feature);
  if (layer instanceof L.Marker) {
    const icon = styleIcon(style);
    if (layer.options.icon !== icon) layer.setIcon(icon);
  } else if (layer instanceof L.CircleMarker && isPoint(feature)) {
    const dot = dotStyle(style);
    layer.setStyle(dot);
    layer.setRadius(dot.radius);
  } else if (layer.setStyle) {
    layer.setStyle(pathOptions(style, feature));
  }
  applyLabel(entry, layer, style, feature);
}

/** Show a feature as it would look with these properties (the style editor's preview). */
export function previewFeature(entry, layer, properties) {
  redraw(entry, layer, { ...layer.feature, properties });
}

/** Look at the layer's data again (classes follow the data) and redraw every feature. */
export function restyle(entry) {
  entry.rule = compileRule((entry.info.style || {}).rule, entryFeatures(entry));
  entry.group.eachLayer((layer) => redraw(entry, layer, layer.feature));
}
