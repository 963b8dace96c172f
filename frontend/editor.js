// Editing: draw, reshape, move and delete features (Leaflet-Geoman), each change sent to
// the per-feature API with the version it was made from. A stale version (412) shows the
// other person's state and keeps ours, so nothing is lost.
import L from "./leaflet-setup.js";
import { api } from "./api.js";
import { showPanel } from "./controls.js";
import { initFeaturePanel, openFeature, showConflict, closeFeature, refreshSize } from "./feature-panel.js";
import { initImport } from "./importer.js";
import { initHistory } from "./history.js";
import { createLayer } from "./layers.js";
import { changedBy, notify } from "./ui.js";
import { initUndo } from "./undo.js";
import { initMeasure } from "./measure-tool.js";
import { circleRing, shapeChanges } from "./measure.js";
import { initSelection } from "./selection.js";

const SHAPES = { Marker: "point", Line: "line", Polygon: "polygon", Rectangle: "rectangle", Circle: "circle" };
const KINDS = { Point: "point", LineString: "line", Polygon: "polygon", MultiPoint: "point group", MultiLineString: "line", MultiPolygon: "polygon" };

/** How the undo button names a feature: its name, else its kind. */
export function featureLabel(feature) {
  const name = feature && feature.properties && feature.properties.name;
  return name ? `“${String(name).slice(0, 40)}”` : `a ${KINDS[feature?.geometry?.type] || "shape"}`;
}

function featureUrl(ctx, layer) {
  return `${ctx.base}/layers/${layer._wmLayerId}/features/${layer.feature.id}`;
}

/** Run saves of one feature one after another (each needs the version the last one made). */
function queue(layer, work) {
  layer._wmQueue = (layer._wmQueue || Promise.resolve()).then(work, work);
  return layer._wmQueue;
}

export async function saveFeature(ctx, layer, changes, { force = false } = {}) {
  return queue(layer, async () => {
    layer._wmSaving = true; // the live connection leaves this feature alone meanwhile
    const before = { ...layer.feature };
    try {
      const updated = await api("PATCH", featureUrl(ctx, layer), { json: changes, version: layer.feature.version });
      layer.feature.version = updated.version;
      layer.feature.properties = updated.properties;
      layer.feature.geometry = updated.geometry;
      if (layer.isPopupOpen && layer.isPopupOpen()) layer.getPopup().update(); // rebuilt from the saved properties
      const what = "geometry" in changes ? "shape of" : "edit of";
      if (ctx.undo) ctx.undo.recordFeature(layer._wmLayerId, `${what} ${featureLabel(before)}`, before, updated);
      return updated;
    } catch (exc) {
      if (exc.status === 412 && exc.details.current) {
        showConflict(ctx, layer, exc.details.current, changes, changedBy(exc.details));
        if (!force) return null;
      }
      throw exc;
    } finally {
      layer._wmSaving = false;
    }
  });
}

/** Replace a feature on the map by the server's state (e.g. "use theirs" after a conflict). */
export function replaceFeature(ctx, layer, feature) {
  const entry = ctx.layers.get(layer._wmLayerId);
  entry.group.removeLayer(layer);
  return ctx.addFeature(layer._wmLayerId, feature);
}

function geometryOf(layer) {
  return layer.toGeoJSON(10).geometry;
}

/** What a drawn shape is stored as: a circle becomes a polygon with its radius (metres) as a
 * property, since GeoJSON has no circles; everything else as drawn. */
function drawnFeature(layer, shape) {
  if (shape === "Circle") {
    const c = layer.getLatLng();
    const radius = Math.round(layer.getRadius() * 10) / 10;
    return { geometry: { type: "Polygon", coordinates: [circleRing([c.lng, c.lat], radius)] }, properties: { radius } };
  }
  return { geometry: geometryOf(layer), properties: {} };
}

function watchFeature(ctx, layer) {
  let timer = null;
  const onEdit = () => {
    refreshSize(layer);
    clearTimeout(timer);
    timer = setTimeout(async () => {
      try {
        // a circle's radius follows its new shape (or goes, when it is no longer a circle)
        const saved = await saveFeature(ctx, layer, shapeChanges(layer.feature, geometryOf(layer)));
        if (saved) ctx.status("Shape saved");
      } catch (exc) {
        if (exc.status !== 412) notify(`The shape was not saved: ${exc.message}`, "error");
      }
    }, 250);
  };
  layer.on("pm:edit", onEdit);
  layer.on("click", (event) => {
    if (event.originalEvent && event.originalEvent.shiftKey && !ctx.map.pm.globalRemovalModeEnabled()) {
      ctx.selection.toggle(layer);
      layer.closePopup(); // a shift-click selects; it does not open the popup
      return;
    }
    if (!ctx.map.pm.globalRemovalModeEnabled()) openFeature(ctx, layer);
  });
}

async function removeFeature(ctx, layer) {
  const entry = ctx.layers.get(layer._wmLayerId);
  try {
    await api("DELETE", featureUrl(ctx, layer), { version: layer.feature.version });
    if (ctx.undo) ctx.undo.recordFeature(layer._wmLayerId, `delete of ${featureLabel(layer.feature)}`, layer.feature, null);
    if (entry) entry.group.removeLayer(layer);
    closeFeature(layer);
    ctx.status("Feature deleted");
    ctx.emit("layersChanged");
  } catch (exc) {
    if (exc.status === 404) {
      if (entry) entry.group.removeLayer(layer);
      return;
    }
    // Not deleted on the server: put it back as it is there now.
    const current = exc.details && exc.details.current;
    const back = current ? ctx.addFeature(layer._wmLayerId, current) : (entry && entry.group.addLayer(layer) && layer);
    notify(exc.status === 412
      ? `Not deleted: ${changedBy(exc.details)} changed this feature meanwhile. Their version is shown; delete again if you still want to.`
      : `Cannot delete the feature: ${exc.message}`, "error");
    if (back && current) openFeature(ctx, back);
  }
}

function initToolbar(ctx) {
  const bar = document.getElementById("draw-toolbar");
  const pm = ctx.map.pm;
  const finish = document.getElementById("draw-finish");
  const cancel = document.getElementById("draw-cancel");
  const hint = document.getElementById("draw-hint");
  const setPressed = () => {
    const shape = pm.Draw.getActiveShape && pm.Draw.getActiveShape();
    for (const b of bar.querySelectorAll("[data-draw]")) b.setAttribute("aria-pressed", String(shape === b.dataset.draw));
    bar.querySelector('[data-mode="edit"]').setAttribute("aria-pressed", String(pm.globalEditModeEnabled()));
    bar.querySelector('[data-mode="drag"]').setAttribute("aria-pressed", String(pm.globalDragModeEnabled()));
    bar.querySelector('[data-mode="remove"]').setAttribute("aria-pressed", String(pm.globalRemovalModeEnabled()));
    bar.querySelector('[data-tool="measure"]').setAttribute("aria-pressed", String(ctx.measure.active));
    bar.querySelector('[data-tool="lasso"]').setAttribute("aria-pressed", String(ctx.selection.lasso));
    const drawing = Boolean(shape);
    finish.hidden = !(drawing && (shape === "Line" || shape === "Polygon"));
    const anyMode = drawing || ctx.measure.active || ctx.selection.lasso || pm.globalEditModeEnabled() || pm.globalDragModeEnabled() || pm.globalRemovalModeEnabled();
    cancel.hidden = !anyMode;
    hint.textContent = !drawing ? (ctx.selection.lasso ? "Drag around features to select them." : pm.globalRemovalModeEnabled() ? "Click a shape to delete it." : pm.globalEditModeEnabled()
      ? "Drag the vertices; changes save by themselves." : pm.globalDragModeEnabled() ? "Drag shapes to move them." : "")
      : shape === "Marker" ? "Click the map to place the point."
        : shape === "Line" && ctx.measure.active ? "Click to add points; click the last point or press Finish to measure."
        : shape === "Line" ? "Click to add points; click the last point or press Finish to end."
        : shape === "Rectangle" ? "Click one corner, then the opposite corner."
        : shape === "Circle" ? "Click the centre, then click at the distance of the radius."
          : "Click to add corners; click the first corner or press Finish to close.";
  };
  const stopAll = () => {
    pm.disableDraw();
    ctx.measure.clear();
    ctx.selection.setLasso(false);
    if (pm.globalEditModeEnabled()) pm.disableGlobalEditMode();
    if (pm.globalDragModeEnabled()) pm.disableGlobalDragMode();
    if (pm.globalRemovalModeEnabled()) pm.disableGlobalRemovalMode();
  };
  bar.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.draw) {
      const same = pm.Draw.getActiveShape() === button.dataset.draw;
      stopAll();
      if (!same) pm.enableDraw(button.dataset.draw, { snappable: true, continueDrawing: false });
    } else if (button.dataset.tool === "measure") {
      const on = ctx.measure.active;
      stopAll();
      if (!on) ctx.measure.start();
    } else if (button.dataset.tool === "lasso") {
      const on = ctx.selection.lasso;
      stopAll();
      if (!on) ctx.selection.setLasso(true);
    } else if (button.dataset.mode) {
      const mode = button.dataset.mode;
      const on = mode === "edit" ? pm.globalEditModeEnabled() : mode === "drag" ? pm.globalDragModeEnabled() : pm.globalRemovalModeEnabled();
      stopAll();
      if (!on) {
        if (mode === "edit") pm.enableGlobalEditMode();
        else if (mode === "drag") pm.enableGlobalDragMode();
        else pm.enableGlobalRemovalMode();
      }
    } else if (button === finish) {
      const shape = pm.Draw.getActiveShape();
      if (shape && pm.Draw[shape]._finishShape) pm.Draw[shape]._finishShape();
    } else if (button === cancel) {
      stopAll();
    }
    setPressed();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.target.closest("input, textarea, select, dialog")) {
      stopAll();
      setPressed();
    }
  });
  for (const name of ["pm:drawstart", "pm:drawend", "pm:globaleditmodetoggled", "pm:globaldragmodetoggled", "pm:globalremovalmodetoggled"]) {
    ctx.map.on(name, setPressed);
  }
  bar.hidden = false;
  setPressed();
}

export function initEditor(ctx) {
  const pm = ctx.map.pm;
  pm.setGlobalOptions({ snappable: true, allowSelfIntersection: false, templineStyle: { color: "#d6336c" }, hintlineStyle: { color: "#d6336c", dashArray: "5,5" } });
  const statusEl = document.getElementById("save-status");
  ctx.status = (text) => {
    if (statusEl) statusEl.textContent = `${text} · ${new Date().toLocaleTimeString()}`;
  };
  for (const entry of ctx.layers.values()) entry.group.eachLayer((layer) => watchFeature(ctx, layer));
  ctx.on("featureLayer", (layer) => watchFeature(ctx, layer));

  ctx.map.on("pm:create", async ({ layer: drawn, shape }) => {
    if (ctx.measure.active) {
      ctx.measure.keep(drawn);
      drawn.remove();
      return;
    }
    const body = drawnFeature(drawn, shape);
    drawn.remove();
    try {
      const target = ctx.activeLayer() || (await createLayer(ctx, "Layer 1"));
      const feature = await api("POST", `${ctx.base}/layers/${target.info.id}/features`, { json: body });
      if (!target.shown) {
        target.shown = true;
        ctx.showEntry(target);
      }
      const layer = ctx.addFeature(target.info.id, feature);
      ctx.undo.recordFeature(target.info.id, `new ${SHAPES[shape] || "shape"}`, null, feature);
      ctx.status(`Added a ${SHAPES[shape] || "shape"}`);
      ctx.emit("layersChanged");
      openFeature(ctx, layer);
    } catch (exc) {
      notify(`The ${SHAPES[shape] || "shape"} was not saved: ${exc.message}`, "error");
    }
  });
  ctx.map.on("pm:remove", ({ layer }) => {
    if (layer.feature && layer._wmLayerId) removeFeature(ctx, layer);
  });

  ctx.undo = initUndo(ctx);
  ctx.measure = initMeasure(ctx);
  ctx.selection = initSelection(ctx);
  initToolbar(ctx);
  initFeaturePanel(ctx, { save: saveFeature, remove: removeFeature, replace: replaceFeature });
  initImport(ctx);
  initHistory(ctx);
  ctx.showPanel = showPanel;
}

export { L };
