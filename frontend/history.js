// The history panel: recent changes of a layer (who, when, what changed: old → new) with two
// ways back: revert only this change (later ones stay; refused when a later change touched
// the same thing) or revert the whole layer to before it.
import { api } from "./api.js";
import { refreshLayers } from "./importer.js";
import { el, formatWhen, notify } from "./ui.js";

const VERBS = {
  "feature.create": "added a feature",
  "feature.update": "edited a feature",
  "feature.delete": "deleted a feature",
  "layer.create": "created the layer",
  "layer.update": "changed the layer",
  "layer.import": "imported features",
  "layer.revert": "reverted the layer",
  "change.revert": "reverted a change",
};
const ONE_BY_ONE = new Set(["feature.create", "feature.update", "feature.delete", "layer.update", "layer.import"]);
const FIELD_NAMES = { name: "name", visible: "shown", position: "order" };
// the layer style's keys by the names the layer settings form gives them
const STYLE_NAMES = {
  color: "line colour", weight: "line weight", opacity: "opacity", fill: "fill areas", fillColor: "fill colour",
  fillOpacity: "fill opacity", markerColor: "marker colour", markerSymbol: "pin icon", markerSize: "pin size",
  label: "labels", rule: "colour by data", display: "points drawn as", popup: "popup",
};
const MAX_DIFFS = 6;

/** A value as a person reads it: text in quotes, short; nested settings just "set". */
function shown(value) {
  if (value === undefined || value === null || value === "") return "(none)";
  if (typeof value === "string") return `“${value.length > 40 ? `${value.slice(0, 39)}…` : value}”`;
  if (typeof value === "object") return "(settings)";
  return String(value);
}

/** What the change changed, old → new, as list items, from the server's `diff`. */
function details(change) {
  const rows = change.diff || [];
  if (!rows.length) return null;
  const items = rows.slice(0, MAX_DIFFS).map((d) => {
    if (d.what === "geometry") return el("li", {}, "shape changed");
    const label = d.what === "layer" ? FIELD_NAMES[d.key] || d.key : d.what === "style" ? STYLE_NAMES[d.key] || d.key : d.key;
    return el("li", {}, el("span", { class: "diff-key" }, label), ": ", el("del", {}, shown(d.old)), " → ", el("ins", {}, shown(d.new)));
  });
  if (rows.length > MAX_DIFFS) items.push(el("li", { class: "muted" }, `and ${rows.length - MAX_DIFFS} more`));
  return el("ul", { class: "history-diff" }, items);
}

function describe(change) {
  let what = VERBS[change.op] || change.op;
  const after = change.after || {};
  const before = change.before || {};
  const props = (after.properties || before.properties || {});
  if (change.op.startsWith("feature.") && props.name) what += ` “${props.name}”`;
  if ((change.diff || []).some((d) => d.what === "geometry")) what += " (shape)";
  if (change.op === "layer.import" && after.count !== undefined) what = `imported ${after.count} features`;
  if (change.op === "layer.revert" && after.to_version !== undefined) what = `reverted the layer to version ${after.to_version}`;
  if (change.op === "layer.update" && before.name && after.name && before.name !== after.name) what = `renamed the layer to “${after.name}”`;
  if (change.op === "change.revert" && after.layer_version !== undefined) what = `reverted one change of version ${after.layer_version}`;
  return what;
}

async function load(ctx) {
  const select = document.getElementById("history-layer");
  const list = document.getElementById("history-list");
  const layerId = select.value;
  if (!layerId) {
    list.replaceChildren(el("li", { class: "muted" }, "No layers."));
    return;
  }
  list.setAttribute("aria-busy", "true");
  try {
    const changes = await api("GET", `${ctx.base}/layers/${layerId}/history?limit=50`);
    list.replaceChildren(...changes.map((change) => {
      const item = el("li", { class: "history-item" },
        el("div", {}, el("strong", {}, change.user ? change.user.display_name || "someone" : "someone"), " ", describe(change)),
        details(change),
        el("div", { class: "muted" }, el("time", { datetime: change.at }, formatWhen(change.at)), ` · version ${change.layer_version}`));
      if (ONE_BY_ONE.has(change.op)) {
        item.append(el("button", { type: "button", class: "small", title: "Undo only this change; later changes stay",
          onclick: () => revertOne(ctx, layerId, change) }, "Revert this change only"));
      }
      const to = change.layer_version - 1;
      if (to >= 1 && change.op !== "layer.create") {
        item.append(el("button", { type: "button", class: "small", title: `Revert the layer to version ${to}, before this change`,
          onclick: () => revert(ctx, layerId, to) }, "Revert to before this"));
      }
      return item;
    }));
    if (!changes.length) list.append(el("li", { class: "muted" }, "No changes yet."));
  } catch (exc) {
    list.replaceChildren(el("li", { class: "error", role: "alert" }, `Cannot load the history: ${exc.message}`));
  } finally {
    list.removeAttribute("aria-busy");
  }
}

async function revertOne(ctx, layerId, change) {
  try {
    await api("POST", `${ctx.base}/layers/${layerId}/changes/${change.id}/revert`);
    await refreshLayers(ctx);
    notify(`Change reverted (${describe(change)}); later changes are kept.`, "ok");
    ctx.status && ctx.status("Reverted one change");
    await load(ctx);
  } catch (exc) {
    notify(exc.code === "later_changes" ? `Not reverted: ${exc.message}.` : `Cannot revert: ${exc.message}`, "error");
  }
}

async function revert(ctx, layerId, version) {
  if (!window.confirm(`Bring this layer back to version ${version}? The revert is itself recorded, so it can be undone.`)) return;
  try {
    await api("POST", `${ctx.base}/layers/${layerId}/revert`, { json: { version } });
    await refreshLayers(ctx);
    notify(`Layer reverted to version ${version}.`, "ok");
    ctx.status && ctx.status("Reverted");
    await load(ctx);
  } catch (exc) {
    notify(`Cannot revert: ${exc.message}`, "error");
  }
}

function fillLayers(ctx) {
  const select = document.getElementById("history-layer");
  const chosen = select.value || ctx.activeLayerId;
  select.replaceChildren(...ctx.orderedLayers().map((entry) => el("option", { value: entry.info.id }, entry.info.name)));
  if (chosen && ctx.layers.has(chosen)) select.value = chosen;
}

export function initHistory(ctx) {
  const select = document.getElementById("history-layer");
  if (!select) return;
  fillLayers(ctx);
  ctx.on("layersChanged", () => fillLayers(ctx));
  select.addEventListener("change", () => load(ctx));
  document.getElementById("history-refresh").addEventListener("click", () => load(ctx));
  document.addEventListener("waymark:panel-shown", (event) => {
    if (event.detail === "history") load(ctx);
  });
}
