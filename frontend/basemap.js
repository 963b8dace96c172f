// The basemap under the data: the presets the server offers (data-basemaps), one of them
// shown (the map's own, data-basemap), a layer control to switch when there are several.
// Raster XYZ/WMTS presets are Leaflet tile layers; PMTiles presets are vector tiles drawn
// by protomaps-leaflet on canvas — the built-in Natural Earth archive with Waymark's own
// style, any Protomaps planet extract with a Protomaps flavour.
import L from "./leaflet-setup.js";
import {
  CircleSymbolizer, GroupSymbolizer, LineSymbolizer, OffsetTextSymbolizer, PolygonSymbolizer,
  CenteredTextSymbolizer, leafletLayer,
} from "protomaps-leaflet";
import { AlongLineText, Recorded } from "./basemap-labels.js";

const WATER = "#b9d3e6";
const LAND = "#f4f2ec";
const TEXT = "#2b2f36";
const HALO = "rgba(255,255,255,0.9)";
const RIVER = "#8fb6d6";
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const BUILTIN_DATA_ZOOM = 7; // the deepest tiles frontend/basemap/build.mjs makes (MAX_ZOOM)

/** Smallest rank of place shown at this zoom (Natural Earth scalerank: 0 = most important). */
const placeRank = (z) => (z <= 2 ? z + 1 : z <= 4 ? z : z <= 6 ? z + 1 : 10);

function naturalEarthStyle(names) {
  const paintRules = [
    { dataLayer: "earth", symbolizer: new PolygonSymbolizer({ fill: LAND }) },
    // rivers under the lakes: Natural Earth runs them on through lakes as centrelines
    { dataLayer: "rivers", symbolizer: new LineSymbolizer({ color: RIVER, width: (z) => (z < 5 ? 0.7 : z < 7 ? 1.2 : 1.8) }) },
    { dataLayer: "lakes", symbolizer: new PolygonSymbolizer({ fill: WATER }) },
    { dataLayer: "region_boundaries", symbolizer: new LineSymbolizer({ color: "#aaa2bd", width: (z) => (z < 5 ? 0.7 : 0.9), dash: [3, 3] }) },
    { dataLayer: "boundaries", symbolizer: new LineSymbolizer({ color: "#a7a1b8", width: (z) => (z < 3 ? 0.8 : 1.2), dash: [4, 2] }) },
  ];
  const placeText = new OffsetTextSymbolizer({
    labelProps: ["name"], fill: TEXT, stroke: HALO, width: 2.5, offsetX: 5, offsetY: 4,
    font: (z, f) => `${f && f.props.capital === 2 ? 600 : 400} ${f && f.props.rank <= 2 ? 13 : 12}px ${FONT}`,
  });
  const place = new Recorded(new GroupSymbolizer([
    new CircleSymbolizer({ radius: (z, f) => (f && f.props.capital === 2 ? 3.2 : 2.4), fill: "#ffffff", stroke: "#4a4f59", width: 1.2 }),
    placeText]), names);
  const byImportance = (a, b) => (a.rank - b.rank) || (b.pop - a.pop);
  const region = new Recorded(new CenteredTextSymbolizer({
    labelProps: ["name"], fill: "#9890a6", stroke: HALO, width: 2, letterSpacing: 0.5,
    font: (z) => `500 ${z < 6 ? 10 : 11}px ${FONT}`, maxLineChars: 12 }), names);
  // Earlier rules win collisions: countries, the main places of the zoom, the largest
  // first-level areas (a state as big as New South Wales), the smaller places, the other
  // first-level areas in the room left (Scotland's council areas yield to its towns), rivers.
  const labelRules = [
    { dataLayer: "countries", maxzoom: 6, symbolizer: new Recorded(new CenteredTextSymbolizer({
      labelProps: ["name"], fill: "#6b6478", stroke: HALO, width: 2, textTransform: "uppercase", letterSpacing: 1,
      font: (z) => `600 ${z < 3 ? 10 : 11}px ${FONT}`, maxLineChars: 14 }), names),
    filter: (z, f) => f.props.rank <= z - 1 },
    { dataLayer: "places", symbolizer: place, sort: byImportance, filter: (z, f) => f.props.rank < placeRank(z) },
    { dataLayer: "regions", minzoom: 4, maxzoom: 8, symbolizer: region, filter: (z, f) => f.props.rank === 0 },
    { dataLayer: "places", symbolizer: place, sort: byImportance, filter: (z, f) => f.props.rank === placeRank(z) },
    { dataLayer: "regions", minzoom: 4, maxzoom: 8, symbolizer: region, filter: (z, f) => f.props.rank > 0 },
    { dataLayer: "rivers", minzoom: 4, symbolizer: new Recorded(new AlongLineText({
      fill: "#3f6f96", stroke: HALO, font: `italic 11px ${FONT}` }), names),
    filter: (z, f) => f.props.scalerank <= z - 1 },
  ];
  return { paintRules, labelRules, backgroundColor: WATER };
}

function makeLayer(preset, names) {
  const common = { attribution: preset.attribution, maxZoom: preset.max_zoom };
  if (preset.type !== "pmtiles") return L.tileLayer(preset.url, common);
  if (preset.builtin) return leafletLayer({ url: preset.url, maxDataZoom: BUILTIN_DATA_ZOOM, ...naturalEarthStyle(names), ...common });
  return leafletLayer({ url: preset.url, flavor: preset.flavor || "light", lang: document.documentElement.lang || "en", ...common });
}

/** Show the map's basemap and offer the others; returns {current(), names, show(name),
 * showControl(visible), presets, defaultName}. */
export function initBasemap(map, root) {
  const config = JSON.parse(root.dataset.basemaps || '{"presets": []}');
  const names = new Set(); // names the built-in basemap drew
  const layers = new Map();
  const byName = new Map(config.presets.map((p) => [p.name, p]));
  const layerOf = (name) => {
    if (!layers.has(name)) layers.set(name, makeLayer(byName.get(name), names));
    return layers.get(name);
  };
  let current = byName.has(root.dataset.basemap) ? root.dataset.basemap : config.default;
  const show = (name) => {
    const preset = byName.get(name) || byName.get(config.default); // "default" or unknown
    if (!preset) return;
    for (const [other, layer] of layers) if (other !== preset.name && map.hasLayer(layer)) map.removeLayer(layer);
    const layer = layerOf(preset.name);
    if (!map.hasLayer(layer)) layer.addTo(map);
    map.setMaxZoom(preset.max_zoom);
    current = preset.name;
    root.dataset.basemapShown = preset.name;
  };
  show(current);
  let control = null;
  if (config.presets.length > 1) {
    const bases = {};
    for (const preset of config.presets) bases[preset.title] = layerOf(preset.name);
    control = L.control.layers(bases, null, { position: "topright" });
    map.on("baselayerchange", (e) => {
      const preset = config.presets.find((p) => layers.get(p.name) === e.layer);
      if (preset) show(preset.name);
    });
  }
  /** The layer control, for visitors to switch (when there is more than one preset). */
  const showControl = (visible) => {
    if (!control) return;
    if (visible && !control._map) control.addTo(map);
    else if (!visible && control._map) control.remove();
  };
  return { current: () => current, names, show, showControl, presets: config.presets, defaultName: config.default };
}
