// The history panel: recent changes of a layer (who, when, what) and revert.
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
};

function describe(change) {
  let what = VERBS[change.op] || change.op;
  const after = change.after || {};
  const before = change.before || {};
  const props = (after.properties || before.properties || {});
  if (change.op.startsWith("feature.") && props.name) what += ` “${props.name}”`;
  if (change.op === "feature.update" && before.geometry && after.geometry &&
      JSON.stringify(before.geometry) !== JSON.stringify(after.geometry)) what += " (shape)";
  if (change.op === "layer.import" && after.count !== undefined) what = `imported ${after.count} features`;
  if (change.op === "layer.revert" && after.to_version !== undefined) what = `reverted the layer to version ${after.to_version}`;
  if (change.op === "layer.update" && before.name && after.name && before.name !== after.name) what = `renamed the layer to “${after.name}”`;
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
        el("div", { class: "muted" }, el("time", { datetime: change.at }, formatWhen(change.at)), ` · version ${change.layer_version}`));
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
