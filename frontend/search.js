// The search box on every map: the map's own features (name and text properties) and
// places (the server's geocoder), listed as you type; Enter goes to the first result (or
// the one chosen with the arrow keys), Escape closes the list. A combobox for screen readers.
import L from "./leaflet-setup.js";
import { api } from "./api.js";
import { el } from "./ui.js";

const DEBOUNCE_MS = 250;
const PLACE_ZOOM = { country: 5, region: 7, capital: 11, city: 11 };

const KIND_WORDS = { country: "Country", region: "Region", capital: "Capital" };

/** "Region · Mali", "Capital · France", "Rhône-Alpes, France" */
function placeDetail(place) {
  const context = place.label.startsWith(place.name + ", ") ? place.label.slice(place.name.length + 2) : place.label === place.name ? "" : place.label;
  const kind = KIND_WORDS[place.kind];
  return [kind, context].filter(Boolean).join(" · ");
}

function resultItem(result, index, onPick) {
  const item = el("li", { role: "option", id: `map-search-option-${index}`, class: "wm-search-option", "aria-selected": "false" },
    el("span", { class: "wm-search-name" }, result.title), result.detail ? el("small", {}, result.detail) : null);
  item.addEventListener("mousedown", (event) => event.preventDefault()); // keep focus in the input
  item.addEventListener("click", () => onPick(result));
  return item;
}

export function initSearch(ctx) {
  const input = el("input", { id: "map-search", type: "search", role: "combobox", autocomplete: "off",
    "aria-autocomplete": "list", "aria-expanded": "false", "aria-controls": "map-search-results",
    placeholder: "Search places and this map", enterkeyhint: "search" });
  const list = el("ul", { id: "map-search-results", role: "listbox", class: "wm-search-results", "aria-label": "Search results", hidden: true });
  const status = el("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  const box = el("div", { class: "wm-search leaflet-control", role: "search" },
    el("label", { class: "visually-hidden", for: "map-search" }, "Search places and features of this map"), input, list, status);
  L.DomEvent.disableClickPropagation(box);
  L.DomEvent.disableScrollPropagation(box);
  const Control = L.Control.extend({ options: { position: "topleft" }, onAdd: () => box });
  new Control().addTo(ctx.map);
  const container = box.parentElement;
  container.prepend(box); // above the zoom buttons

  let results = [];
  let active = -1;
  let pending = null; // the search for the current text
  let timer = null;
  let highlight = null;

  const setActive = (index) => {
    active = index;
    [...list.querySelectorAll("[role=option]")].forEach((option, i) => option.setAttribute("aria-selected", String(i === index)));
    if (index >= 0) {
      input.setAttribute("aria-activedescendant", `map-search-option-${index}`);
      list.querySelector(`#map-search-option-${index}`)?.scrollIntoView({ block: "nearest" });
    } else input.removeAttribute("aria-activedescendant");
  };
  const close = () => {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    setActive(-1);
  };

  const pick = (result) => {
    close();
    if (highlight) highlight.remove();
    highlight = null;
    if (result.feature) {
      ctx.showFeature(result.feature.id, result.feature.bbox);
    } else {
      const place = result.place;
      if (place.bbox && (place.kind === "country" || place.kind === "region" || place.source !== "builtin")) {
        const [w, s, e, n] = place.bbox;
        ctx.map.flyToBounds([[s, w], [n, e]], { maxZoom: PLACE_ZOOM[place.kind] || 13, duration: 1 });
      } else {
        ctx.map.flyTo([place.lat, place.lon], PLACE_ZOOM[place.kind] || 12, { duration: 1 });
      }
      highlight = L.circleMarker([place.lat, place.lon], { radius: 9, color: "#d1495b", weight: 3, fillOpacity: 0.15, interactive: false }).addTo(ctx.map);
    }
    status.textContent = `Showing ${result.title}`;
  };

  const render = () => {
    const features = results.filter((r) => r.feature);
    const places = results.filter((r) => r.place);
    const items = [];
    let index = 0;
    if (features.length) {
      items.push(el("li", { role: "presentation", class: "wm-search-group" }, "On this map"));
      for (const r of features) items.push(resultItem(r, index++, pick));
    }
    if (places.length) {
      items.push(el("li", { role: "presentation", class: "wm-search-group" }, "Places"));
      for (const r of places) items.push(resultItem(r, index++, pick));
    }
    if (!results.length) items.push(el("li", { role: "presentation", class: "wm-search-empty" }, "Nothing found"));
    list.replaceChildren(...items);
    results = [...features, ...places]; // the order shown
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    setActive(-1);
    status.textContent = results.length ? `${results.length} results` : "Nothing found";
  };

  const run = (text) => {
    const q = text.trim();
    if (!q) {
      results = [];
      close();
      return Promise.resolve();
    }
    const query = encodeURIComponent(q);
    const mine = api("GET", `${ctx.base}/search?q=${query}&limit=5`).then((b) => b.results).catch(() => []);
    const places = api("GET", `/api/v1/geocode?q=${query}&limit=5`).then((b) => b.results).catch((exc) => {
      status.textContent = `Place search: ${exc.message}`;
      return [];
    });
    const search = Promise.all([mine, places]).then(([features, found]) => {
      if (pending !== search) return; // a newer search is running
      results = [
        ...features.map((f) => ({ feature: f, title: f.name || f.match.text, detail: f.name && f.match.field !== "name" ? f.match.text : f.layer_name })),
        ...found.map((p) => ({ place: p, title: p.name, detail: placeDetail(p) })),
      ];
      render();
    });
    pending = search;
    return search;
  };

  input.addEventListener("input", () => {
    clearTimeout(timer);
    pending = null;
    timer = setTimeout(() => run(input.value), DEBOUNCE_MS);
  });
  input.addEventListener("keydown", async (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (list.hidden && results.length) render();
      if (!results.length) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      setActive((active + step + results.length) % results.length);
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (active >= 0 && results[active]) return pick(results[active]);
      clearTimeout(timer);
      await (pending || run(input.value));
      if (results.length) pick(results[0]);
    } else if (event.key === "Escape") {
      if (!list.hidden) {
        event.preventDefault();
        close();
      }
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 150));
  input.addEventListener("focus", () => {
    if (results.length) render();
  });
  return { input, run, box };
}
