// Selecting several features: shift-click toggles one, shift-drag on the map selects all in a
// box, the Lasso tool all inside a free-hand outline. The selection bar then deletes them,
// colours them, sets a property on all or moves them (drag on the map), each action one
// batch — one request even across layers (one version per layer, all or nothing) — and one
// step of undo.
import L from "./leaflet-setup.js";
import { closeFeature } from "./feature-panel.js";
import { previewFeature } from "./draw.js";
import { isPoint } from "./style.js";
import { stateOf } from "./undo.js";

const HIGHLIGHT = { color: "#f08c00", weight: 5, dashArray: "6,4" };

/** Colour properties (simplestyle) for a feature of this kind. */
function colourProps(feature, colour) {
  if (isPoint(feature)) return { "marker-color": colour };
  const kind = feature.geometry && feature.geometry.type;
  return kind && kind.includes("Polygon") ? { stroke: colour, fill: colour } : { stroke: colour };
}

function shiftPositions(coords, dLng, dLat) {
  if (typeof coords[0] === "number") return [Number((coords[0] + dLng).toFixed(7)), Number((coords[1] + dLat).toFixed(7)), ...coords.slice(2)];
  return coords.map((c) => shiftPositions(c, dLng, dLat));
}

function moved(geometry, dLng, dLat) {
  if (!geometry) return geometry;
  if (geometry.type === "GeometryCollection") return { ...geometry, geometries: geometry.geometries.map((g) => moved(g, dLng, dLat)) };
  return { ...geometry, coordinates: shiftPositions(geometry.coordinates, dLng, dLat) };
}

/** The positions of a feature's Leaflet layer (a marker's one, every vertex of a path). */
function vertices(layer) {
  if (layer.getLatLng) return [layer.getLatLng()];
  const out = [];
  const walk = (items) => items.forEach((p) => (Array.isArray(p) ? walk(p) : out.push(p)));
  if (layer.getLatLngs) walk(layer.getLatLngs());
  return out;
}

/** Whether a point is inside a ring of points (even-odd rule, in pixels). */
export function insideRing(point, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const a = ring[i];
    const b = ring[j];
    if ((a.y > point.y) !== (b.y > point.y) && point.x < ((b.x - a.x) * (point.y - a.y)) / (b.y - a.y) + a.x) inside = !inside;
  }
  return inside;
}

export function initSelection(ctx) {
  const map = ctx.map;
  const bar = document.getElementById("selection-bar");
  const count = document.getElementById("selection-count");
  const selected = new Set(); // Leaflet layers
  let moving = false;

  const mark = (layer, on) => {
    if (layer._icon) layer._icon.classList.toggle("wm-selected", on);
    else if (on && layer.setStyle) layer.setStyle(HIGHLIGHT);
    const entry = ctx.layers.get(layer._wmLayerId);
    if (!on && entry && layer.setStyle) previewFeature(entry, layer, layer.feature.properties || {});
  };
  const render = () => {
    for (const layer of [...selected]) if (!layer._map) selected.delete(layer); // removed meanwhile
    count.textContent = `${selected.size} selected`;
    bar.hidden = selected.size === 0;
    if (!selected.size) setMoving(false);
  };
  const clear = () => {
    for (const layer of selected) mark(layer, false);
    selected.clear();
    render();
  };
  const toggle = (layer) => {
    if (selected.has(layer)) {
      selected.delete(layer);
      mark(layer, false);
    } else {
      selected.add(layer);
      mark(layer, true);
      closeFeature(layer);
    }
    render();
  };

  /** One step for the whole selection, in however many layers: before = now, after =
   * change(feature) (null deletes). */
  const act = async (label, change) => {
    const items = [...selected].map((layer) => ({ id: layer.feature.id, layerId: layer._wmLayerId,
      before: stateOf(layer.feature), after: change(layer.feature), version: layer.feature.version }));
    clear();
    if (!items.length) return;
    const n = items.length;
    await ctx.undo.perform({ layerId: items[0].layerId, label: `${label} of ${n} feature${n === 1 ? "" : "s"}`, items });
  };

  // the lasso: while on, a drag on the map draws a free-hand outline; on release everything
  // with a point inside it joins the selection
  let lassoOn = false;
  let lasso = null; // the outline being drawn
  const setLasso = (on) => {
    lassoOn = on;
    map.getContainer().classList.toggle("wm-lassoing", on);
    if (!on && lasso) {
      lasso.remove();
      lasso = null;
      map.dragging.enable();
    }
  };
  const finishLasso = () => {
    const outline = lasso.getLatLngs()[0].map((p) => map.latLngToLayerPoint(p));
    lasso.remove();
    lasso = null;
    map.dragging.enable();
    L.DomUtil.enableTextSelection();
    if (outline.length < 3) return;
    for (const entry of ctx.layers.values()) {
      if (!entry.shown) continue;
      entry.group.eachLayer((layer) => {
        const inside = vertices(layer).some((p) => insideRing(map.latLngToLayerPoint(p), outline));
        if (inside && !selected.has(layer)) toggle(layer);
      });
    }
  };

  // shift-click on a feature: handled in editor.js (it owns the click), through toggle
  map.boxZoom.disable(); // shift-drag selects instead of zooming
  let box = null;
  let start = null;
  map.on("mousedown", (e) => {
    if (lassoOn && !moving) {
      map.dragging.disable();
      L.DomUtil.disableTextSelection();
      lasso = L.polygon([e.latlng], { color: "#f08c00", weight: 2, dashArray: "4,4", fillOpacity: 0.08, interactive: false, pmIgnore: true }).addTo(map);
      return;
    }
    if (moving && selected.size) {
      start = e.latlng;
      map.dragging.disable();
      box = L.polyline([start, start], { color: "#f08c00", weight: 2, dashArray: "4,4", interactive: false, pmIgnore: true }).addTo(map);
      return;
    }
    if (!e.originalEvent.shiftKey || map.pm.Draw.getActiveShape()) return;
    start = e.latlng;
    map.dragging.disable();
    L.DomUtil.disableTextSelection(); // a shift-drag would select the page's text
    box = L.rectangle(L.latLngBounds(start, start), { color: "#f08c00", weight: 1, dashArray: "4,4", interactive: false, pmIgnore: true }).addTo(map);
  });
  map.on("mousemove", (e) => {
    if (lasso) {
      const points = lasso.getLatLngs()[0];
      const last = map.latLngToContainerPoint(points[points.length - 1]);
      if (last.distanceTo(e.containerPoint) >= 3) lasso.addLatLng(e.latlng);
      return;
    }
    if (box && start) {
      if (moving) box.setLatLngs([start, e.latlng]);
      else box.setBounds(L.latLngBounds(start, e.latlng));
    }
  });
  map.on("mouseup", (e) => {
    if (lasso) {
      finishLasso();
      return;
    }
    if (!start) return;
    const from = start;
    start = null;
    map.dragging.enable();
    L.DomUtil.enableTextSelection();
    const tiny = map.latLngToContainerPoint(from).distanceTo(map.latLngToContainerPoint(e.latlng)) < 4;
    if (box && (moving || tiny)) {
      box.remove();
      box = null;
    }
    if (tiny) return; // a shift-click, not a box: the feature's click handler toggles it
    if (moving) {
      const dLng = e.latlng.lng - from.lng;
      const dLat = e.latlng.lat - from.lat;
      if (dLng || dLat) act("move", (f) => ({ geometry: moved(f.geometry, dLng, dLat), properties: f.properties || {} }));
      return;
    }
    const bounds = box.getBounds();
    box.remove();
    box = null;
    for (const entry of ctx.layers.values()) {
      if (!entry.shown) continue;
      entry.group.eachLayer((layer) => {
        const inside = layer.getLatLng ? bounds.contains(layer.getLatLng()) : layer.getBounds && bounds.intersects(layer.getBounds());
        if (inside && !selected.has(layer)) toggle(layer);
      });
    }
  });

  const setMoving = (on) => {
    moving = on;
    const button = document.getElementById("selection-move");
    button.setAttribute("aria-pressed", String(on));
    map.getContainer().classList.toggle("wm-moving", on);
    const hint = document.getElementById("draw-hint");
    if (hint) hint.textContent = on ? "Drag on the map to move the selected features." : "";
  };
  bar.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.id === "selection-clear") clear();
    else if (button.id === "selection-delete") {
      if (window.confirm(`Delete ${selected.size} features?`)) act("delete", () => null);
    } else if (button.id === "selection-colour-apply") {
      const colour = document.getElementById("selection-colour").value;
      act("colour", (f) => ({ geometry: f.geometry, properties: { ...(f.properties || {}), ...colourProps(f, colour) } }));
    } else if (button.id === "selection-prop-apply") {
      const key = document.getElementById("selection-prop-key").value.trim();
      const value = document.getElementById("selection-prop-value").value;
      if (key) act(`“${key}” set`, (f) => ({ geometry: f.geometry, properties: { ...(f.properties || {}), [key]: value } }));
    } else if (button.id === "selection-move") {
      setMoving(!moving);
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && selected.size && !event.target.closest("input, textarea, select, dialog")) clear();
  });
  return { toggle, clear, setLasso, get lasso() { return lassoOn; }, get size() { return selected.size; } };
}
