// Import by file picker or drag-and-drop: upload with progress, follow the job if the
// server queues one, then show the new features. Errors say what was wrong with the file.
// A GeoPackage's tables are picked first; a CSV whose coordinate columns cannot be found
// shows its first rows so that the person can pick them (import-choices.js).
import L from "./leaflet-setup.js";
import { api, upload } from "./api.js";
import { showPanel } from "./controls.js";
import { pickColumns, pickTables } from "./import-choices.js";
import { el, notify } from "./ui.js";

const CSV_NAME = /\.(csv|tsv|txt)$/i;

/** The url with the query parameters that are set. */
function withParams(url, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ""));
  const text = query.toString();
  return text ? `${url}?${text}` : url;
}

function describeError(exc) {
  const d = exc.details || {};
  const where = [];
  if (d.line !== undefined) where.push(`line ${d.line}`);
  if (d.index !== undefined) where.push(`feature ${Number(d.index) + 1}`);
  if (d.field) where.push(`field "${d.field}"`);
  return where.length ? `${exc.message} (${where.join(", ")})` : exc.message;
}

async function waitForJob(url, onProgress) {
  for (;;) {
    const job = await api("GET", url);
    if (job.status === "done") return job.result;
    if (job.status === "failed") {
      const err = typeof job.error === "string" ? { message: job.error } : job.error || {};
      const e = new Error(err.message || "the import failed");
      e.details = err.details || {};
      throw e;
    }
    onProgress(job.status, job.progress, job.total);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Bring the map in line with the server after an import: new layers, changed layers. */
export async function refreshLayers(ctx) {
  const info = await api("GET", ctx.base);
  for (const layer of info.layers) {
    const entry = ctx.layers.get(layer.id);
    if (!entry) {
      const data = await api("GET", layer.data_url);
      ctx.addLayer(layer, data.features || []);
    } else if (entry.info.version !== layer.version) {
      await ctx.reloadLayer(layer.id);
    }
  }
  ctx.emit("layersChanged");
}

function targetOptions(ctx, select) {
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, "New layer(s) named after the file"),
    ...ctx.orderedLayers().map((entry) => el("option", { value: entry.info.id }, `Into "${entry.info.name}"`)));
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

export function initImport(ctx) {
  const panel = document.getElementById("panel-import");
  const input = document.getElementById("import-file");
  const zone = document.getElementById("drop-zone");
  const target = document.getElementById("import-target");
  const progress = document.getElementById("import-progress");
  const status = document.getElementById("import-status");
  const choice = document.getElementById("import-choice");
  const crs = document.getElementById("import-crs");
  const routePoints = document.getElementById("import-route-points");
  const missing = document.getElementById("import-missing");
  if (!panel || !input) return;
  targetOptions(ctx, target);
  ctx.on("layersChanged", () => targetOptions(ctx, target));

  const say = (text, kind = "info") => {
    status.textContent = text;
    status.className = `import-status ${kind}`;
    status.setAttribute("role", kind === "error" ? "alert" : "status");
  };

  /** Options chosen in the panel, as query parameters of every import. */
  function options() {
    const keep = missing && missing.value === "keep";
    return { crs: crs && crs.value.trim(), route_points: routePoints && routePoints.value,
      missing: keep ? "keep" : "", skip_invalid: keep ? "true" : "" };
  }

  /** Ask what the file needs before it is imported: null when the person cancelled. */
  async function choices(file) {
    if (!/\.gpkg$/i.test(file.name)) return {};
    say(`Reading the tables of ${file.name}…`);
    const { data } = await upload(withParams(`${ctx.base}/import/preview`, options()), file, () => {});
    if (data.tables.length < 2) return {};
    say("");
    return pickTables(choice, file.name, data.tables);
  }

  async function send(file, params) {
    const base = target.value ? `${ctx.base}/layers/${target.value}/import` : `${ctx.base}/import`;
    progress.hidden = false;
    progress.value = 0;
    say(`Uploading ${file.name}…`);
    try {
      return await upload(withParams(base, { ...options(), ...params }), file, (fraction) => {
        progress.value = fraction * 50;
      });
    } catch (exc) {
      const columns = exc.code === "invalid_file" && CSV_NAME.test(file.name) && !params.lat && !params.wkt
        && /coordinate columns/.test(exc.message);
      if (!columns) throw exc;
      // detection failed: show the first rows and let the person pick the columns
      progress.hidden = true;
      const { data } = await upload(withParams(`${ctx.base}/import/preview`, options()), file, () => {});
      say("");
      const picked = await pickColumns(choice, file.name, data.csv);
      return picked ? send(file, { ...params, ...picked }) : null;
    }
  }

  async function importFile(file) {
    showPanel("import");
    try {
      const params = await choices(file);
      const sent = params && await send(file, params);
      if (!sent) {
        progress.hidden = true;
        say(`Import of ${file.name} cancelled.`);
        return;
      }
      const { status: code, data } = sent;
      let result = data;
      if (code === 202) {
        say("Importing…");
        result = await waitForJob(data.job.url, (state, done, total) => {
          if (total) progress.value = 50 + (50 * done) / total;
          say(state === "queued" ? "Waiting for the importer…" : `Importing… ${done || 0} of ${total || "?"} features`);
        });
      }
      progress.value = 100;
      const before = new Set(ctx.featureIds());
      await refreshLayers(ctx);
      // go to what was imported, not to everything on the map
      const added = L.latLngBounds([]);
      for (const entry of ctx.layers.values()) {
        entry.group.eachLayer((layer) => {
          if (layer.feature && !before.has(layer.feature.id)) added.extend(layer.getLatLng ? layer.getLatLng() : layer.getBounds());
        });
      }
      if (added.isValid()) ctx.map.fitBounds(added, { padding: [24, 24], maxZoom: 17 });
      else ctx.fitToData();
      const warnings = (result.warnings || []).length ? ` ${result.warnings.length} warning(s): ${result.warnings.slice(0, 3).join("; ")}` : "";
      const from = result.reprojected_from ? ` (coordinates converted from ${result.reprojected_from})` : "";
      say(`Imported ${result.imported} feature(s) from ${file.name}${from}.${warnings}`, "ok");
      ctx.status && ctx.status(`Imported ${file.name}`);
    } catch (exc) {
      progress.hidden = true;
      say(`Cannot import ${file.name}: ${describeError(exc)}`, "error");
    }
  }

  input.addEventListener("change", () => {
    for (const file of input.files) importFile(file);
    input.value = "";
  });

  // Drag-and-drop: onto the drop zone or anywhere on the map.
  const shell = ctx.root.closest(".map-shell") || ctx.root;
  for (const area of [zone, shell]) {
    area.addEventListener("dragover", (event) => {
      if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      zone.classList.add("dragging");
      shell.classList.add("dragging");
    });
    area.addEventListener("dragleave", () => {
      zone.classList.remove("dragging");
      shell.classList.remove("dragging");
    });
    area.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      shell.classList.remove("dragging");
      const files = [...(event.dataTransfer?.files || [])];
      if (!files.length) {
        notify("Drop a file (GeoJSON, GPX, KML/KMZ, CSV, zipped Shapefile, GeoPackage or FlatGeobuf) to import it.", "error");
        return;
      }
      for (const file of files) importFile(file);
    });
  }
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  zone.addEventListener("click", () => input.click());
}
