// How a layer is put on the map: its feature group as it is ("plain"), or its points in a
// marker-cluster group (counts, spiderfy, clusters dissolve at a chosen zoom) or a heatmap
// (radius, blur, weight by a property). Lines and areas of such layers stay drawn as they
// are. The cluster and heatmap code (Leaflet.markercluster, Leaflet.heat) is a separate
// bundle, loaded the first time a layer needs it.
import L from "./leaflet-setup.js";
import { toNumber } from "./classify.js";
import { isPoint } from "./style.js";

let loading = null;

function loadDensity(root) {
  if (L.MarkerClusterGroup && L.heatLayer) return Promise.resolve();
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = root.dataset.densityCss;
      document.head.append(css);
      const script = document.createElement("script");
      script.src = root.dataset.densityJs;
      script.onload = () => resolve();
      script.onerror = () => {
        loading = null;
        reject(new Error("the clustering and heatmap code could not be loaded"));
      };
      document.head.append(script);
    });
  }
  return loading;
}

export const displayOf = (style = {}) => ({ mode: "plain", clusterMaxZoom: 15, heatRadius: 25, heatBlur: 15, ...(style.display || {}) });

/** The heatmap's points: [lat, lng, weight 0..1] (weight by a property: its value over the
 * largest; features without a number for it do not count). */
function heatPoints(group, property) {
  const points = [];
  let max = 0;
  group.eachLayer((layer) => {
    if (!isPoint(layer.feature) || !layer.getLatLng) return;
    const ll = layer.getLatLng();
    if (!property) {
      points.push([ll.lat, ll.lng, 1]);
      return;
    }
    const n = toNumber(layer.feature.properties && layer.feature.properties[property]);
    if (n === null || n <= 0) return;
    if (n > max) max = n;
    points.push([ll.lat, ll.lng, n]);
  });
  if (property && max) for (const p of points) p[2] /= max;
  return points;
}

/** Leaflet.heat scales every view to a fixed maximum, so 40,000 points are one red blob
 * when zoomed out and faint when zoomed in. Here the maximum follows the view: the 97th
 * percentile of the grid cells' sums, so each view shows where its points are densest. */
let AdaptiveHeat = null;
function heatLayer(points, options) {
  if (!AdaptiveHeat) {
    AdaptiveHeat = L.HeatLayer.extend({
      _initCanvas() {
        L.HeatLayer.prototype._initCanvas.call(this);
        const heat = this._heat;
        const draw = heat.draw.bind(heat);
        heat.draw = (minOpacity) => {
          const sums = heat._data.map((cell) => cell[2]).sort((a, b) => a - b);
          if (sums.length) heat.max(sums[Math.floor((sums.length - 1) * 0.97)] || 1);
          return draw(minOpacity);
        };
      },
    });
  }
  return new AdaptiveHeat(points, options);
}

function buildView(entry, display) {
  const others = L.featureGroup();
  const points = [];
  entry.group.eachLayer((layer) => (isPoint(layer.feature) ? points.push(layer) : others.addLayer(layer)));
  let cluster = null;
  let heat = null;
  if (display.mode === "cluster") {
    cluster = L.markerClusterGroup({
      chunkedLoading: true, showCoverageOnHover: false, spiderfyOnMaxZoom: true,
      disableClusteringAtZoom: display.clusterMaxZoom, maxClusterRadius: 60,
    });
    cluster.addLayers(points);
  } else {
    heat = heatLayer(heatPoints(entry.group, display.heatWeight), {
      radius: display.heatRadius, blur: display.heatBlur, minOpacity: 0.2,
    });
  }
  const view = L.layerGroup([...(cluster ? [cluster] : [heat]), others]);
  let timer = null;
  const sync = (e) => { // features added or removed later (edits, live changes)
    if (cluster) {
      if (e.type === "layeradd") (isPoint(e.layer.feature) ? cluster : others).addLayer(e.layer);
      else (cluster.hasLayer(e.layer) ? cluster : others).removeLayer(e.layer);
    } else if (!isPoint(e.layer.feature)) {
      if (e.type === "layeradd") others.addLayer(e.layer);
      else others.removeLayer(e.layer);
    } else {
      clearTimeout(timer);
      timer = setTimeout(() => heat.setLatLngs(heatPoints(entry.group, display.heatWeight)), 100);
    }
  };
  entry.group.on("layeradd layerremove", sync);
  view.wmDetach = () => entry.group.off("layeradd layerremove", sync);
  view.wmCluster = cluster;
  return view;
}

/** Put the entry on the map (or take it off) the way its style says. */
export async function showEntry(ctx, entry) {
  const display = displayOf(entry.info.style);
  const key = display.mode === "plain" ? "plain" : JSON.stringify(display);
  if (entry.viewKey !== key) {
    hideEntry(ctx, entry);
    if (entry.view && entry.view.wmDetach) entry.view.wmDetach();
    entry.view = null;
    entry.viewKey = key;
    if (display.mode !== "plain") {
      try {
        await loadDensity(ctx.root);
      } catch (exc) {
        display.mode = "plain";
        ctx.emit("displayFailed", entry, exc);
      }
      if (entry.viewKey !== key) return; // changed again meanwhile
      if (display.mode !== "plain") entry.view = buildView(entry, display);
    }
  }
  const view = entry.view || entry.group;
  if (entry.shown && !ctx.map.hasLayer(view)) view.addTo(ctx.map);
  else if (!entry.shown) hideEntry(ctx, entry);
}

export function hideEntry(ctx, entry) {
  for (const layer of [entry.view, entry.group]) if (layer && ctx.map.hasLayer(layer)) ctx.map.removeLayer(layer);
}

/** Open a feature's popup, first zooming in until its cluster lets it go. */
export function revealFeature(entry, layer, then) {
  const cluster = entry.view && entry.view.wmCluster;
  if (cluster && cluster.hasLayer(layer)) cluster.zoomToShowLayer(layer, then);
  else then();
}
