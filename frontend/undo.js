// Undo and redo of this person's own edits since the page was opened (Ctrl+Z, Ctrl+Shift+Z
// or Ctrl+Y, and the toolbar buttons). An undo is an ordinary versioned edit: it sends the
// version our edit made, so if someone else changed the feature since, the server refuses it
// (412) and the conflict view shows their version and their name; nothing is overwritten.
//
// A step is {layerId, label, items: [{id, before, after, version}]}: before/after are
// {geometry, properties} or null (not there), version is the feature's version after the
// step (null when the step left it deleted); an item may name its own layerId (a selection
// across layers). Several items (a multi-select action) go as one batch — of the layer, or of
// the map when they are in several layers: one version per layer, all or nothing. A step
// {kind: "layer", layerId, label, before, after} changes a layer's name and style instead
// (layer-undo.js).
import { api } from "./api.js";
import { closeFeature, showConflict } from "./feature-panel.js";
import { applyLayerStep, layerSettings, sameValue, showLayerConflict } from "./layer-undo.js";
import { changedBy, notify } from "./ui.js";

const LIMIT = 100;

const featureName = (f) => (f.properties && f.properties.name ? `“${f.properties.name}”` : "this feature");

/** {geometry, properties} of a feature (API JSON or a Leaflet layer's feature). */
export function stateOf(feature) {
  return feature ? { geometry: feature.geometry, properties: feature.properties || {} } : null;
}

function putLocal(ctx, layerId, id, feature) {
  const shown = ctx.findFeature(id);
  if (shown) {
    closeFeature(shown);
    for (const entry of ctx.layers.values()) entry.group.removeLayer(shown);
  }
  const added = feature && ctx.layers.has(layerId) ? ctx.addFeature(layerId, feature) : null;
  const entry = ctx.layers.get(layerId);
  if (entry) ctx.restyleSoon(entry);
  return added;
}

/** Bring every item of a step to `side` ("before" or "after"); returns the new versions. */
async function apply(ctx, step, side, options) {
  if (step.kind === "layer") {
    await applyLayerStep(ctx, step, side, options);
    return [];
  }
  const base = `${ctx.base}/layers/${step.layerId}`;
  if (step.items.length === 1) {
    const item = step.items[0];
    const target = item[side];
    const url = `${base}/features/${item.id}`;
    if (!target) {
      await api("DELETE", url, { version: item.version });
      putLocal(ctx, step.layerId, item.id, null);
      return [null];
    }
    const saved = item.version === null
      ? await api("POST", `${base}/features`, { json: { id: item.id, ...target } })
      : await api("PATCH", url, { json: target, version: item.version });
    putLocal(ctx, step.layerId, item.id, saved);
    return [saved.version];
  }
  const operation = (item) => {
    const target = item[side];
    if (!target) return { op: "delete", id: item.id, version: item.version };
    if (item.version === null) return { op: "add", id: item.id, ...target };
    return { op: "update", id: item.id, version: item.version, ...target };
  };
  // items of several layers (a selection across layers) go as one map batch, else as the
  // layer's batch: either way all or nothing
  const byLayer = new Map();
  for (const item of step.items) {
    const layerId = item.layerId || step.layerId;
    if (!byLayer.has(layerId)) byLayer.set(layerId, []);
    byLayer.get(layerId).push(item);
  }
  const results = new Map();
  if (byLayer.size === 1) {
    const [layerId] = byLayer.keys();
    const out = await api("POST", `${ctx.base}/layers/${layerId}/batch`, { json: { operations: step.items.map(operation) } });
    step.items.forEach((item, i) => results.set(item, out.results[i]));
  } else {
    const groups = [...byLayer].map(([layer, items]) => ({ layer, operations: items.map(operation) }));
    const out = await api("POST", `${ctx.base}/batch`, { json: { layers: groups } });
    for (const group of out.layers) byLayer.get(group.layer).forEach((item, i) => results.set(item, group.results[i]));
  }
  return step.items.map((item) => {
    const result = results.get(item);
    const target = item[side];
    putLocal(ctx, item.layerId || step.layerId, item.id, target && { type: "Feature", id: item.id, ...target, version: result.version });
    return target ? result.version : null;
  });
}

export class UndoStack {
  constructor(ctx) {
    this.ctx = ctx;
    this.done = [];
    this.undone = [];
    this.busy = false;
    this.listeners = [];
  }

  onChange(fn) {
    this.listeners.push(fn);
  }

  changed() {
    for (const fn of this.listeners) fn(this);
  }

  /** Remember one of our own edits (called after the server accepted it). */
  record(step) {
    this.done.push(step);
    if (this.done.length > LIMIT) this.done.shift();
    this.undone = [];
    this.changed();
  }

  /** An edit of a single feature: before/after are API features (or null). */
  recordFeature(layerId, label, before, after) {
    const id = (after || before).id;
    this.record({ layerId, label, items: [{ id, before: stateOf(before), after: stateOf(after), version: after ? after.version : null }] });
  }

  /** A change of a layer's name or style: before/after are the layer's info. */
  recordLayer(layerId, before, after) {
    const from = layerSettings(before);
    const to = layerSettings(after);
    if (sameValue(from, to)) return;
    const renamed = from.name !== to.name;
    const restyled = !sameValue(from.style, to.style);
    const label = renamed && !restyled ? `renaming of layer “${from.name}” to “${to.name}”`
      : `${renamed ? "settings" : "style"} of layer “${to.name}”`;
    this.record({ kind: "layer", layerId, label, before: from, after: to, items: [] });
  }

  /** Make a change of several features (a multi-select action) as one step: `before` is
   * their current state, `after` the wanted one, `version` their current version. */
  async perform(step) {
    if (this.busy) return false;
    this.busy = true;
    try {
      const versions = await apply(this.ctx, step, "after");
      step.items.forEach((item, i) => { item.version = versions[i]; });
      this.record(step);
      this.ctx.emit("layersChanged");
      return true;
    } catch (exc) {
      this.refused(step, "apply", exc);
      return false;
    } finally {
      this.busy = false;
      this.changed();
    }
  }

  /** `force`: a layer step overwrites settings someone else changed since ("Undo anyway"). */
  undo({ force = false } = {}) {
    return this.step(this.done, this.undone, "before", "Undone", force);
  }

  redo({ force = false } = {}) {
    return this.step(this.undone, this.done, "after", "Redone", force);
  }

  async step(from, to, side, verb, force = false) {
    if (this.busy || !from.length) return false;
    const step = from[from.length - 1];
    this.busy = true;
    try {
      const versions = await apply(this.ctx, step, side, { force });
      step.items.forEach((item, i) => { item.version = versions[i]; });
      from.pop();
      to.push(step);
      this.ctx.status(`${verb}: ${step.label}`);
      this.ctx.emit("layersChanged");
      return true;
    } catch (exc) {
      this.refused(step, side === "before" ? "undo" : "redo", exc);
      return false;
    } finally {
      this.busy = false;
      this.changed();
    }
  }

  refused(step, what, exc) {
    const side = what === "undo" ? "before" : "after";
    const current = exc.details && exc.details.current;
    if (exc.code === "layer_changed") {
      const who = changedBy(exc.details);
      const retry = what === "apply" ? null : () => (what === "undo" ? this.undo({ force: true }) : this.redo({ force: true }));
      showLayerConflict(this.ctx, step, what, current, who, retry);
      notify(`Cannot ${what} the ${step.label}: ${who} changed the layer's settings since. Their version is shown; nothing was changed.`, "error");
    } else if (exc.status === 412 && current) {
      const who = changedBy(exc.details);
      const item = step.items.find((i) => i.id === current.id) || step.items[0];
      const layer = putLocal(this.ctx, item.layerId || step.layerId, current.id, current);
      if (layer && item[side] && what !== "apply") showConflict(this.ctx, layer, current, { ...item[side] }, who, { undo: what });
      notify(`Cannot ${what} the ${step.label}: ${who} changed ${featureName(current)} since. Their version is shown; nothing was changed.`, "error");
    } else if (exc.status === 404 || exc.code === "feature_exists") {
      notify(`Cannot ${what} the ${step.label}: ${exc.message}. Someone else changed this meanwhile.`, "error");
    } else {
      notify(`Cannot ${what} the ${step.label}: ${exc.message}`, "error");
    }
  }
}

/** Keyboard shortcuts and the Undo/Redo buttons. */
export function initUndo(ctx) {
  const stack = new UndoStack(ctx);
  const undoButton = document.getElementById("undo");
  const redoButton = document.getElementById("redo");
  const show = () => {
    const last = stack.done[stack.done.length - 1];
    const next = stack.undone[stack.undone.length - 1];
    if (undoButton) {
      undoButton.disabled = !last || stack.busy;
      undoButton.title = last ? `Undo: ${last.label} (Ctrl+Z)` : "Nothing to undo";
    }
    if (redoButton) {
      redoButton.disabled = !next || stack.busy;
      redoButton.title = next ? `Redo: ${next.label} (Ctrl+Shift+Z)` : "Nothing to redo";
    }
  };
  stack.onChange(show);
  if (undoButton) undoButton.addEventListener("click", () => stack.undo());
  if (redoButton) redoButton.addEventListener("click", () => stack.redo());
  document.addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
    // in a text field the browser's own undo of typing applies
    if (event.target.closest && event.target.closest("input, textarea, select, [contenteditable]")) return;
    const key = event.key.toLowerCase();
    if (key === "z" && !event.shiftKey) {
      event.preventDefault();
      stack.undo();
    } else if ((key === "z" && event.shiftKey) || key === "y") {
      event.preventDefault();
      stack.redo();
    }
  });
  show();
  return stack;
}
