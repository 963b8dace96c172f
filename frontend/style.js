// What a feature looks like: the layer's style, then the class of the layer's data-driven
// rule (datastyle.js), then the feature's own style properties (simplestyle names:
// marker-color, stroke, fill ..., and Waymark's label-text/label-show; an old "_style"
// property with the layer names still counts). Leaflet path options, dots, circles and
// coloured SVG pins with an icon of the bundled set.
import L from "./leaflet-setup.js";
import { iconShape } from "./icons.js";

const COLOR = /^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20})$/;
export const DEFAULT_STYLE = { color: "#3388ff", weight: 3, opacity: 1, fill: true, fillColor: "#3388ff", fillOpacity: 0.2, markerColor: "#3388ff" };
export const MARKER_SCALE = { small: 0.75, medium: 1, large: 1.3 };
/** feature property (simplestyle) -> layer style key */
export const FEATURE_STYLE_KEYS = {
  "marker-color": "markerColor", "marker-symbol": "markerSymbol", "marker-size": "markerSize",
  stroke: "color", "stroke-width": "weight", "stroke-opacity": "opacity", fill: "fillColor",
  "fill-opacity": "fillOpacity", "label-text": "labelText", "label-show": "labelShow",
};
const NUMERIC = new Set(["weight", "opacity", "fillOpacity"]);
const LEGACY = ["color", "weight", "opacity", "fillColor", "fillOpacity", "markerColor"];

export function safeColor(value, fallback = DEFAULT_STYLE.color) {
  return typeof value === "string" && COLOR.test(value) ? value : fallback;
}

const number = (v) => (typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN);
const LINES = new Set(["LineString", "MultiLineString"]);
const AREAS = new Set(["Polygon", "MultiPolygon"]);
export const isPoint = (feature) => Boolean(feature && feature.geometry && feature.geometry.type === "Point");
const isLine = (feature) => Boolean(feature && feature.geometry && LINES.has(feature.geometry.type));

/** The style a feature carries itself, under the layer style's names (only valid values). */
export function ownStyle(props = {}) {
  const out = {};
  const legacy = props._style;
  if (legacy && typeof legacy === "object") for (const key of LEGACY) if (legacy[key] !== undefined) out[key] = legacy[key];
  for (const [prop, key] of Object.entries(FEATURE_STYLE_KEYS)) {
    const value = props[prop];
    if (value === undefined || value === null || value === "") continue;
    if (NUMERIC.has(key)) {
      const n = number(value);
      if (Number.isFinite(n) && n >= 0 && (key === "weight" ? n <= 50 : n <= 1)) out[key] = n;
    } else if (key === "color" || key === "fillColor" || key === "markerColor") {
      if (COLOR.test(String(value))) out[key] = String(value);
    } else {
      out[key] = String(value);
    }
  }
  return out;
}

/** The layer style, the rule's class (a colour for the fill of areas, the line of lines,
 * the marker of points; maybe an icon or a circle size) and the feature's own style. */
export function effectiveStyle(layerStyle = {}, feature = null, ruleClass = null) {
  const style = { ...DEFAULT_STYLE, ...layerStyle };
  if (ruleClass) {
    if (ruleClass.color) {
      const geometry = feature && feature.geometry && feature.geometry.type;
      if (AREAS.has(geometry)) style.fillColor = ruleClass.color;
      else if (LINES.has(geometry)) style.color = ruleClass.color;
      else style.markerColor = ruleClass.color;
      style.ruleColor = ruleClass.color;
    }
    if (ruleClass.symbol) style.markerSymbol = ruleClass.symbol;
    if (ruleClass.radius) style.radius = ruleClass.radius;
  }
  return { ...style, ...ownStyle((feature && feature.properties) || {}) };
}

/** Leaflet path options (lines are never filled). */
export function pathOptions(style, feature = null) {
  const color = safeColor(style.color);
  return {
    color,
    weight: typeof style.weight === "number" ? style.weight : DEFAULT_STYLE.weight,
    opacity: typeof style.opacity === "number" ? style.opacity : DEFAULT_STYLE.opacity,
    fill: style.fill !== false && !isLine(feature),
    fillColor: safeColor(style.fillColor, color),
    fillOpacity: typeof style.fillOpacity === "number" ? style.fillOpacity : DEFAULT_STYLE.fillOpacity,
    dashArray: typeof style.dashArray === "string" ? style.dashArray : null,
  };
}

/** Points of big or heat-mapped layers are dots on a canvas (one draw for thousands, no
 * DOM per point); proportional circles are dots of the rule's radius. */
export function dotStyle(style) {
  const proportional = typeof style.radius === "number";
  return { radius: proportional ? style.radius : 6, color: "#ffffff", weight: proportional ? 1 : 1.5, opacity: 1, fill: true,
    fillColor: safeColor(style.markerColor || style.color), fillOpacity: proportional ? 0.7 : 0.95 };
}

const icons = new Map();

function pinSvg(fill, shape) {
  // the white disc holds the icon (scaled into a 13-unit square) or, without one, a dot
  let inner = `<circle cx="12.5" cy="12.5" r="${shape ? 8 : 4.5}" fill="#fff"/>`;
  if (shape) {
    const [x, y, w, h] = shape.viewBox.split(/[\s,]+/).map(Number);
    const scale = 11 / Math.max(w, h);
    const dx = 12.5 - (w * scale) / 2 - x * scale;
    const dy = 12.5 - (h * scale) / 2 - y * scale;
    inner += `<g transform="translate(${dx.toFixed(3)} ${dy.toFixed(3)}) scale(${scale.toFixed(4)})" fill="${fill}">` +
      shape.paths.map((d) => `<path d="${d}"/>`).join("") + "</g>";
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="25" height="41" viewBox="-1 -1 27 43">` +
    `<path d="M12.5 0C5.6 0 0 5.6 0 12.5c0 9.4 12.5 28.5 12.5 28.5S25 21.9 25 12.5C25 5.6 19.4 0 12.5 0z" fill="${fill}" stroke="#fff" stroke-width="1.5"/>` +
    `${inner}</svg>`;
}

/** A map pin in a colour, with an icon of the bundled set and a size (cached: one icon
 * object per combination). An <img> of an SVG data URI: decoded once per combination, so a
 * thousand pins stay cheap. An icon still loading gives a plain pin; the map redraws the
 * pin when it arrives (icons.js onIconsLoaded). */
export function pinIcon(color, symbol = null, size = "medium") {
  const fill = safeColor(color);
  const shape = symbol ? iconShape(symbol) : null;
  const scale = MARKER_SCALE[size] || 1;
  const key = `${fill}|${shape ? symbol : ""}|${scale}`;
  if (!icons.has(key)) {
    const w = 25 * scale;
    const h = 41 * scale;
    const icon = L.icon({
      iconUrl: `data:image/svg+xml,${encodeURIComponent(pinSvg(fill, shape))}`,
      className: "wm-pin",
      iconSize: [w, h],
      iconAnchor: [w / 2, h],
      popupAnchor: [0, -h * 0.88],
      tooltipAnchor: [w / 2, -h * 0.68],
    });
    icon.options.wmColor = fill;
    icon.options.wmSymbol = shape ? symbol : null;
    icons.set(key, icon);
  }
  return icons.get(key);
}

/** The pin of a resolved style. */
export const styleIcon = (style) => pinIcon(style.markerColor || style.color, style.markerSymbol, style.markerSize);
