// The feature table: a drawer over the bottom of the map with one layer's features as rows
// (columns from their properties), sorted by a column, filtered by text and paged by the
// server, so a layer of 100,000 features never comes to the browser whole. A row (click,
// or Enter on it) selects its feature on the map; editors change values in place, each
// change an ordinary versioned feature edit (If-Match), so a conflict is caught.
import { api } from "./api.js";
import { changedBy, el, notify } from "./ui.js";

const PAGE = 50;

function cellText(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Typed text back to a value of the type the cell had. */
function parseCell(text, original) {
  if (typeof original === "number" && text.trim() !== "" && !Number.isNaN(Number(text))) return Number(text);
  if (typeof original === "boolean" && (text === "true" || text === "false")) return text === "true";
  return text;
}

export function initTable(ctx) {
  const select = el("select", { id: "table-layer", "aria-label": "Layer shown in the table" });
  const filter = el("input", { type: "search", id: "table-filter", placeholder: "Filter rows", "aria-label": "Filter rows by text" });
  const count = el("span", { class: "table-count", role: "status", "aria-live": "polite" });
  const prev = el("button", { type: "button", "aria-label": "Previous page" }, "‹ Previous");
  const next = el("button", { type: "button", "aria-label": "Next page" }, "Next ›");
  const editToggle = el("input", { type: "checkbox", id: "table-edit" });
  const close = el("button", { type: "button", class: "icon", "aria-label": "Close the table" }, "✕");
  const table = el("table", { class: "data-table", "aria-label": "Features" });
  const wrap = el("div", { class: "table-scroll" }, table);
  const drawer = el("section", { id: "feature-table", class: "feature-table", "aria-label": "Feature table", hidden: true },
    el("div", { class: "table-bar" }, select, filter,
      ctx.canEdit ? el("label", { class: "field-check" }, editToggle, el("span", {}, "Edit values")) : null,
      el("span", { class: "table-pager" }, prev, count, next), close),
    wrap);
  (ctx.root.closest(".map-shell") || ctx.root.parentElement).append(drawer);

  const state = { layer: null, offset: 0, sort: null, order: "asc", q: "", page: null, selected: null };
  let timer = null;

  const fillLayers = () => {
    const chosen = select.value;
    select.replaceChildren(...ctx.orderedLayers().map((e) => el("option", { value: e.info.id }, e.info.name)));
    if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
    state.layer = select.value || null;
  };

  const head = (columns) => el("thead", {}, el("tr", {}, columns.map((column) => {
    const sorted = state.sort === column;
    const th = el("th", { scope: "col", "aria-sort": sorted ? (state.order === "asc" ? "ascending" : "descending") : "none" },
      el("button", { type: "button", class: "sort", "aria-label": `Sort by ${column}` }, column, sorted ? (state.order === "asc" ? " ▲" : " ▼") : ""));
    th.querySelector("button").addEventListener("click", () => {
      if (state.sort === column) state.order = state.order === "asc" ? "desc" : "asc";
      else Object.assign(state, { sort: column, order: "asc" });
      state.offset = 0;
      load({ focusSort: column });
    });
    return th;
  })));

  const saveCell = async (row, column, input) => {
    const props = row.properties;
    const value = parseCell(input.value, props[column]);
    if (cellText(props[column]) === input.value) return;
    const url = `${ctx.base}/layers/${state.layer}/features/${row.id}`;
    try {
      const saved = await api("PATCH", url, { json: { properties: { ...props, [column]: value } }, version: row.version });
      row.version = saved.version;
      row.properties = saved.properties;
      const layer = ctx.findFeature(row.id);
      if (layer) {
        layer.feature.properties = saved.properties;
        layer.feature.version = saved.version;
      }
      ctx.status && ctx.status("Value saved");
    } catch (exc) {
      input.value = cellText(props[column]);
      notify(exc.status === 412 ? `Not saved: ${changedBy(exc.details)} changed this feature meanwhile. The table shows their version.`
        : `Not saved: ${exc.message}`, "error");
      if (exc.status === 412) load();
    }
  };

  const body = (page) => el("tbody", {}, page.rows.map((row, i) => {
    const tr = el("tr", { tabindex: "0", "aria-selected": String(state.selected === row.id), dataset: { featureId: row.id } });
    for (const column of page.columns) {
      const value = row.properties[column];
      if (ctx.canEdit && editToggle.checked) {
        const input = el("input", { value: cellText(value), "aria-label": `${column} of ${row.properties.name || `row ${state.offset + i + 1}`}` });
        input.addEventListener("change", () => saveCell(row, column, input));
        input.addEventListener("keydown", (event) => {
          if (event.key === "Enter") {
            event.preventDefault();
            input.blur(); // saves (change), the row keeps the focus
            tr.focus();
          }
        });
        tr.append(el("td", {}, input));
      } else {
        tr.append(el("td", { title: cellText(value) }, cellText(value)));
      }
    }
    const choose = () => {
      state.selected = row.id;
      for (const other of drawer.querySelectorAll("tbody tr")) other.setAttribute("aria-selected", String(other === tr));
      ctx.showFeature(row.id, row.bbox);
    };
    tr.addEventListener("click", (event) => {
      if (event.target.tagName !== "INPUT") choose();
    });
    tr.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === tr) choose();
      else if (event.key === "ArrowDown" && tr.nextElementSibling) {
        event.preventDefault();
        tr.nextElementSibling.focus();
      } else if (event.key === "ArrowUp" && tr.previousElementSibling) {
        event.preventDefault();
        tr.previousElementSibling.focus();
      }
    });
    return tr;
  }));

  async function load({ focusSort } = {}) {
    if (!state.layer) {
      table.replaceChildren(el("caption", {}, "This map has no layers."));
      count.textContent = "";
      return;
    }
    const params = new URLSearchParams({ offset: String(state.offset), limit: String(PAGE), order: state.order });
    if (state.sort) params.set("sort", state.sort);
    if (state.q) params.set("q", state.q);
    let page;
    try {
      page = await api("GET", `${ctx.base}/layers/${state.layer}/table?${params}`);
    } catch (exc) {
      notify(`Cannot load the table: ${exc.message}`, "error");
      return;
    }
    state.page = page;
    const columns = page.columns.length ? page.columns : ["name"];
    table.replaceChildren(head(columns), body({ ...page, columns }));
    if (!page.rows.length) table.append(el("caption", {}, state.q ? `No feature matches “${state.q}”.` : "This layer has no features yet."));
    const last = Math.min(page.offset + page.rows.length, page.total);
    count.textContent = page.total ? `${(page.offset + 1).toLocaleString()}–${last.toLocaleString()} of ${page.total.toLocaleString()}` : "0 features";
    prev.disabled = page.offset === 0;
    next.disabled = last >= page.total;
    if (focusSort) table.querySelector(`th button[aria-label="Sort by ${CSS.escape(focusSort)}"]`)?.focus();
  }

  select.addEventListener("change", () => {
    Object.assign(state, { layer: select.value, offset: 0, sort: null, order: "asc" });
    load();
  });
  filter.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.q = filter.value.trim();
      state.offset = 0;
      load();
    }, 250);
  });
  prev.addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE);
    load();
  });
  next.addEventListener("click", () => {
    state.offset += PAGE;
    load();
  });
  editToggle.addEventListener("change", () => state.page && load());
  let button = null; // the map control that opens the table (setButton)
  const open = (show) => {
    drawer.hidden = !show;
    ctx.root.closest(".map-shell")?.classList.toggle("with-table", show);
    button?.setAttribute("aria-pressed", String(show));
    setTimeout(() => ctx.map.invalidateSize(), 50);
    if (show) {
      fillLayers();
      load();
      filter.focus();
    } else button?.focus();
  };
  close.addEventListener("click", () => open(false));
  drawer.addEventListener("keydown", (event) => {
    if (event.key === "Escape") open(false);
  });
  ctx.on("layersChanged", () => {
    if (!drawer.hidden) fillLayers();
  });
  return { drawer, open, toggle: () => open(drawer.hidden), setButton: (b) => { button = b; } };
}
