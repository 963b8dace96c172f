// Layer styles: Leaflet path options and coloured SVG map pins.
import L from "./leaflet-setup.js";

const COLOR = /^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20})$/;
export const DEFAULT_STYLE = { color: "#3388ff", weight: 3, opacity: 1, fill: true, fillColor: "#3388ff", fillOpacity: 0.2, markerColor: "#3388ff" };

export function safeColor(value, fallback = DEFAULT_STYLE.color) {
  return typeof value === "string" && COLOR.test(value) ? value : fallback;
}

const LINES = new Set(["LineString", "MultiLineString"]);

/** Leaflet path options for a feature of this layer style (lines are never filled). */
export function featureStyle(style = {}, feature = null) {
  const color = safeColor(style.color);
  return {
    color,
    weight: typeof style.weight === "number" ? style.weight : DEFAULT_STYLE.weight,
    opacity: typeof style.opacity === "number" ? style.opacity : DEFAULT_STYLE.opacity,
    fill: style.fill !== false && !(feature && feature.geometry && LINES.has(feature.geometry.type)),
    fillColor: safeColor(style.fillColor, color),
    fillOpacity: typeof style.fillOpacity === "number" ? style.fillOpacity : DEFAULT_STYLE.fillOpacity,
    dashArray: typeof style.dashArray === "string" ? style.dashArray : null,
  };
}

/** Points of big layers are dots on a canvas (one draw for thousands, no DOM per point). */
export function dotStyle(style = {}) {
  return { radius: 6, color: "#ffffff", weight: 1.5, opacity: 1, fill: true,
    fillColor: safeColor(style.markerColor || style.color), fillOpacity: 0.95 };
}

const icons = new Map();

/** A map pin in the given colour (cached: one icon object per colour). An <img> of an SVG
 * data URI: the browser decodes it once per colour, so a thousand pins stay cheap. */
export function pinIcon(color) {
  const fill = safeColor(color);
  if (!icons.has(fill)) {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="25" height="41" viewBox="-1 -1 27 43">` +
      `<path d="M12.5 0C5.6 0 0 5.6 0 12.5c0 9.4 12.5 28.5 12.5 28.5S25 21.9 25 12.5C25 5.6 19.4 0 12.5 0z" fill="${fill}" stroke="#fff" stroke-width="1.5"/>` +
      `<circle cx="12.5" cy="12.5" r="4.5" fill="#fff"/></svg>`;
    icons.set(fill, L.icon({
      iconUrl: `data:image/svg+xml,${encodeURIComponent(svg)}`,
      className: "wm-pin",
      iconSize: [25, 41],
      iconAnchor: [12.5, 41],
      popupAnchor: [0, -36],
      tooltipAnchor: [12, -28],
    }));
    icons.get(fill).options.wmColor = fill;
  }
  return icons.get(fill);
}
