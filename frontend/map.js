// The map page (view, edit and embed): basemap, layers, popups, view in the URL hash.
import L from "./leaflet-setup.js";
import "@geoman-io/leaflet-geoman-free";
import { api } from "./api.js";
import { initBasemap } from "./basemap.js";
import { ButtonBar, controlButton, initControls } from "./controls.js";
import { initSearch } from "./search.js";
import { legendControl } from "./legend.js";
import { initTable } from "./table.js";
import { applyMapInfo, initSettings } from "./settings.js";
import { isPoint } from "./style.js";
import { compileRule } from "./datastyle.js";
import { drawOptions, pointKind, restyle } from "./draw.js";
import { hideEntry, revealFeature, showEntry } from "./display.js";
import { initIcons, onIconsLoaded } from "./icons.js";
import { initLayersPanel } from "./layers.js";
import { initEditor } from "./editor.js";
import { initShare } from "./share.js";
import { connectRealtime } from "./realtime.js";
import { popupContent } from "./popup.js";
import { escapeHtml, icon, notify } from "./ui.js";

const WORLD = { lat: 20, lon: 0, zoom: 2 };

function readHash() {
  const m = /^#(\d{1,2})\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/.exec(window.location.hash);
  if (!m) return null;
  const zoom = Number(m[1]);
  const lat = Number(m[2]);
  const lon = Number(m[3]);
  if (lat < -90 || lat > 90 || lon < -180 || lon > 180 || zoom > 22) return null;
  return { zoom, lat, lon };
}

function writeHash(map) {
  const c = map.getCenter();
  const zoom = map.getZoom();
  const digits = Math.max(0, Math.ceil(Math.log(2 ** zoom) / Math.LN10)) + 1;
  const hash = `#${zoom}/${c.lat.toFixed(digits)}/${c.lng.toFixed(digits)}`;
  if (hash !== window.location.hash) window.history.replaceState(null, "", hash);
}

/** Popups work from the keyboard: focus moves into an opened popup (its close button), Escape
 * closes it and gives focus back to the marker it came from. */
function initPopupKeys(map) {
  map.on("popupopen", (e) => {
    const box = e.popup.getElement();
    const close = box && box.querySelector(".leaflet-popup-close-button");
    if (close) {
      close.setAttribute("aria-label", "Close popup");
      close.setAttribute("role", "button");
      close.focus({ preventScroll: true });
    }
    box?.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      const source = e.popup._source;
      map.closePopup(e.popup);
      if (source && source._icon) source._icon.focus();
      else map.getContainer().focus();
    });
  });
}

class MapContext {
  constructor(root) {
    this.root = root;
    this.mapId = root.dataset.mapId;
    this.embed = root.dataset.embed === "1";
    this.imageOrigins = JSON.parse(root.dataset.imageOrigins || "[]"); // images the CSP allows
    this.base = `/api/v1/maps/${this.mapId}`;
    this.layers = new Map(); // layer id -> {info, group, shown}
    this.activeLayerId = null;
    this.canEdit = false;
    this.listeners = { featureLayer: [], layersChanged: [], featureSelected: [], mapChanged: [], controlsChanged: [], layerToggled: [],
      styleChanged: [], displayFailed: [] };
  }

  on(name, fn) {
    this.listeners[name].push(fn);
  }

  emit(name, ...args) {
    for (const fn of this.listeners[name]) fn(...args);
  }

  orderedLayers() {
    return [...this.layers.values()].sort((a, b) => a.info.position - b.info.position);
  }

  activeLayer() {
    return this.layers.get(this.activeLayerId) || this.orderedLayers()[0] || null;
  }

  /** Create the Leaflet group for a layer and register it; it is drawn as its style says
   * (draw.js: pins, dots or circles, data-driven classes, labels; display.js: as it is,
   * clustered or as a heatmap). */
  addLayer(info, features = []) {
    const ctx = this;
    const entry = { info, group: null, shown: info.visible !== false };
    entry.pointKind = pointKind(info.style, features.filter(isPoint).length);
    entry.rule = compileRule((info.style || {}).rule, features);
    const group = L.geoJSON(null, drawOptions(this, entry, (feature, layer) => {
      layer._wmLayerId = info.id;
      layer.bindPopup(() => popupContent(layer.feature, (entry.info.style || {}).popup, ctx.imageOrigins),
        { maxWidth: 340, minWidth: 200, autoPanPadding: [24, 24] });
      ctx.emit("featureLayer", layer);
    }));
    entry.group = group;
    this.layers.set(info.id, entry);
    if (features.length) group.addData({ type: "FeatureCollection", features });
    // data-driven classes follow the data: features added or removed later restyle the layer
    group.on("layeradd layerremove", () => entry.rule && this.restyleSoon(entry));
    this.showEntry(entry);
    if (!this.activeLayerId) this.activeLayerId = info.id;
    return entry;
  }

  /** Put a layer on the map (entry.shown) or take it off, the way its style says. */
  showEntry(entry) {
    return showEntry(this, entry);
  }

  hideEntry(entry) {
    hideEntry(this, entry);
  }

  /** Add one feature (API JSON) to a layer's group; returns its Leaflet layer. A feature
   * already shown (e.g. our own edit echoed by the live connection first) is replaced. */
  addFeature(layerId, feature) {
    const entry = this.layers.get(layerId);
    const shown = feature.id ? this.findFeature(feature.id) : null;
    if (shown) {
      for (const e of this.layers.values()) e.group.removeLayer(shown);
    }
    let added = null;
    const before = new Set(entry.group.getLayers());
    entry.group.addData(feature);
    for (const layer of entry.group.getLayers()) if (!before.has(layer)) added = layer;
    return added;
  }

  featureIds() {
    const ids = [];
    for (const entry of this.layers.values()) entry.group.eachLayer((layer) => layer.feature && ids.push(layer.feature.id));
    return ids;
  }

  findFeature(featureId) {
    for (const entry of this.layers.values()) {
      for (const layer of entry.group.getLayers()) if (layer.feature && layer.feature.id === featureId) return layer;
    }
    return null;
  }

  /** Redraw a layer after its style or its data changed (a change of point kind, e.g. to
   * proportional circles or clusters, rebuilds it from the server's data). */
  restyle(entry) {
    if (entry.pointKind !== pointKind(entry.info.style, entry.group.getLayers().filter((l) => isPoint(l.feature)).length)) {
      return this.reloadLayer(entry.info.id);
    }
    restyle(entry);
    this.showEntry(entry);
    this.emit("styleChanged", entry);
    return Promise.resolve(entry);
  }

  /** restyle() once after a burst of changes. */
  restyleSoon(entry) {
    clearTimeout(entry.restyleTimer);
    entry.restyleTimer = setTimeout(() => {
      if (this.layers.get(entry.info.id) === entry) this.restyle(entry);
    }, 150);
  }

  /** Fetch a layer again and redraw it. The group is built anew, so a layer that became
   * big (an import) is drawn as canvas dots at once, not as thousands of DOM pins. */
  async reloadLayer(layerId) {
    const old = this.layers.get(layerId);
    const info = await api("GET", `${this.base}/layers/${layerId}`);
    const data = await api("GET", info.data_url);
    const current = this.layers.get(layerId);
    if (!current || current !== old) return current; // deleted or rebuilt meanwhile
    this.hideEntry(current);
    this.layers.delete(layerId);
    const entry = this.addLayer({ ...info, visible: current.shown }, data.features || []);
    this.emit("layersChanged");
    return entry;
  }

  /** Show the controls the map's settings ask for here (its page or its embed). */
  applyControls() {
    const wanted = (this.info.controls || {})[this.embed ? "embed" : "page"] || {};
    if (this.search) this.search.box.hidden = wanted.search === false;
    this.basemap.showControl(wanted.basemaps !== false);
    if (wanted.legend && !this.legend._map) this.legend.addTo(this.map);
    else if (!wanted.legend && this.legend._map) this.legend.remove();
    if (wanted.table && !this.tableControl._map) this.tableControl.addTo(this.map);
    else if (!wanted.table && this.tableControl._map) {
      this.tableControl.remove();
      this.table.open(false);
    }
    this.emit("controlsChanged", wanted);
  }

  /** Go to a feature (by id, with its bbox [w, s, e, n]) and open its popup. */
  showFeature(featureId, bbox) {
    const layer = this.findFeature(featureId);
    const [w, s, e, n] = bbox || [];
    if (w !== undefined && (w !== e || s !== n)) this.map.flyToBounds([[s, w], [n, e]], { padding: [40, 40], maxZoom: 17, duration: 0.8 });
    else if (w !== undefined) this.map.flyTo([s, w], Math.max(this.map.getZoom(), 16), { duration: 0.8 });
    if (layer && layer.openPopup) {
      const entry = this.layers.get(layer._wmLayerId);
      const open = () => revealFeature(entry, layer, () => layer.openPopup());
      if (w === undefined) open();
      else this.map.once("moveend", open);
    }
    this.emit("featureSelected", featureId);
  }

  dataBounds() {
    const bounds = L.latLngBounds([]);
    for (const entry of this.layers.values()) {
      if (!entry.shown) continue;
      const b = entry.group.getBounds();
      if (b.isValid()) bounds.extend(b);
    }
    return bounds;
  }

  fitToData({ animate = true } = {}) {
    const bounds = this.dataBounds();
    if (bounds.isValid()) this.map.fitBounds(bounds, { padding: [24, 24], maxZoom: 17, animate });
    return bounds.isValid();
  }
}

export async function initMapPage() {
  const root = document.getElementById("map");
  const ctx = new MapContext(root);
  performance.mark("waymark:map-init");
  const map = L.map(root, { zoomControl: true, worldCopyJump: true, keyboard: true });
  ctx.map = map;
  initIcons(root);
  onIconsLoaded(() => { // pins waiting for their icon
    for (const entry of ctx.layers.values()) if (entry.pointKind === "pin") ctx.restyleSoon(entry);
  });
  ctx.on("displayFailed", (entry, exc) => notify(`Layer "${entry.info.name}" is drawn plain: ${exc.message}`, "error"));
  ctx.basemap = initBasemap(map, root);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com" title="A JavaScript library for interactive maps">Leaflet</a>');
  const hashView = readHash();
  const fallback = hashView || WORLD;
  map.setView([fallback.lat, fallback.lon], fallback.zoom, { animate: false });

  let info;
  try {
    info = await api("GET", ctx.base);
  } catch (exc) {
    notify(`Cannot load this map: ${exc.message}`, "error");
    return;
  }
  ctx.info = info;
  if (ctx.embed) {
    map.attributionControl.addAttribution(`<a href="/m/${encodeURIComponent(info.id)}" target="_blank" rel="noopener">${escapeHtml(info.title)} on Waymark</a>`);
  }
  // read-only maintenance: the page says so in a banner and offers no editing
  ctx.canEdit = !ctx.embed && root.dataset.readOnly !== "1" && (info.role === "owner" || info.role === "editor");
  document.body.dataset.role = info.role || "visitor";
  if (!ctx.canEdit && L.PM) L.PM.setOptIn(true); // viewers: no editing state on every feature

  const layers = [...info.layers].sort((a, b) => a.position - b.position);
  const payloads = await Promise.all(layers.map((layer) => api("GET", layer.data_url).catch((exc) => {
    notify(`Layer "${layer.name}" could not be loaded: ${exc.message}`, "error");
    return { features: [] };
  })));
  performance.mark("waymark:data-loaded");
  layers.forEach((layer, i) => ctx.addLayer(layer, payloads[i].features || []));
  performance.mark("waymark:layers-added");
  if (!hashView) {
    if (info.default_view) map.setView([info.default_view.lat, info.default_view.lon], info.default_view.zoom, { animate: false });
    else ctx.fitToData({ animate: false });
  }
  initPopupKeys(map);
  map.on("moveend", () => writeHash(map));
  window.addEventListener("hashchange", () => {
    const view = readHash();
    if (view) map.setView([view.lat, view.lon], view.zoom);
  });
  writeHash(map);

  requestAnimationFrame(() => {
    performance.mark("waymark:features-drawn");
    performance.measure("waymark:map-load", "waymark:map-init", "waymark:features-drawn");
    root.dataset.ready = "1";
  });

  initControls(ctx);
  ctx.search = initSearch(ctx);
  ctx.legend = legendControl(ctx);
  ctx.table = initTable(ctx);
  const tableButton = controlButton("Feature table", icon("table"), () => ctx.table.toggle());
  tableButton.setAttribute("aria-pressed", "false");
  ctx.table.setButton(tableButton);
  ctx.tableControl = new ButtonBar({ buttons: [tableButton] });
  ctx.applyControls();
  if (ctx.canEdit) initSettings(ctx);
  ctx.on("mapChanged", () => applyMapInfo(ctx));
  initLayersPanel(ctx);
  if (!ctx.embed) initShare(ctx);
  if (ctx.canEdit) initEditor(ctx);
  // others' edits appear live; the presence indicator shows who is here (not in embeds)
  ctx.realtime = connectRealtime(ctx, { showPresence: !ctx.embed });
  window.waymark = ctx; // handy in the console and for tests
}
