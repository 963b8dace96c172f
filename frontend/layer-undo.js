// Undo and redo of a layer's settings (its name and style) changed in the layer panel. Same
// rule as for features: an undo is an ordinary edit, and it is refused when someone else
// changed the same settings after our edit. The layer's version counts every feature edit
// too, so it cannot tell; instead the settings we would overwrite are compared with those our
// edit left, and the PATCH carries the version we compared against (a change in between is
// refused by the server, 412).
import { api } from "./api.js";

/** The same JSON value (object keys in any order). */
export function sameValue(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!sameValue(a[k], b[k])) return false;
  return true;
}

/** {name, style} of a layer's info: what a layer step undoes. */
export function layerSettings(info) {
  return { name: info.name, style: info.style || {} };
}

/** Who changed the layer's settings last (from its history), for the refusal. */
async function lastSettingsEditor(ctx, layerId) {
  try {
    const changes = await api("GET", `${ctx.base}/layers/${layerId}/history?limit=50`);
    const change = changes.find((c) => c.op === "layer.update" || c.op === "change.revert" || c.op === "layer.revert");
    return { updated_by: change && change.user ? { id: change.user.id, display_name: change.user.display_name } : null };
  } catch {
    return { updated_by: null };
  }
}

class LayerConflict extends Error {
  constructor(current, details) {
    super("the layer's settings were changed since");
    this.status = 412;
    this.code = "layer_changed";
    this.details = { ...details, current };
  }
}

/** Bring the layer's settings to step[side]; refuses (LayerConflict) when they are no longer
 * those of the other side, unless `force`. Returns the layer's new info. */
export async function applyLayerStep(ctx, step, side, { force = false } = {}) {
  const url = `${ctx.base}/layers/${step.layerId}`;
  const target = step[side];
  const expected = side === "before" ? step.after : step.before;
  const current = await api("GET", url);
  if (!force && !sameValue(layerSettings(current), expected)) {
    throw new LayerConflict(current, await lastSettingsEditor(ctx, step.layerId));
  }
  let info;
  try {
    info = await api("PATCH", url, { json: target, version: current.version });
  } catch (exc) {
    if (exc.status !== 412) throw exc;
    const now = await api("GET", url); // changed between our look and our write
    throw new LayerConflict(now, await lastSettingsEditor(ctx, step.layerId));
  }
  const entry = ctx.layers.get(step.layerId);
  if (entry) {
    entry.info = { ...entry.info, ...info };
    entry.conflict = null;
    await ctx.restyle(entry);
  }
  return info;
}

/** Show the other person's settings on the map and the refusal in the layer's settings. */
export async function showLayerConflict(ctx, step, what, current, who, retry) {
  const entry = ctx.layers.get(step.layerId);
  if (!entry) return;
  entry.info = { ...entry.info, ...current };
  const shown = (await ctx.restyle(entry)) || entry; // a reload draws the layer anew
  shown.conflict = { what, who, retry };
  ctx.emit("layersChanged");
  if (ctx.showPanel) ctx.showPanel("layers");
  document.querySelector(`[data-layer-id="${shown.info.id}"] .conflict`)?.scrollIntoView({ block: "center" });
}
