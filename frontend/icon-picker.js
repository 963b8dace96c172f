// The icon picker: a dialog with a search box over the bundled icons (Maki and Temaki: names
// and Temaki's groups) and a grid of them. pickIcon(current) resolves to the chosen name,
// null for "No icon", or undefined when the dialog is closed without a choice.
import { iconIndex, iconLabel, iconUrl } from "./icons.js";
import { el } from "./ui.js";

let dialog = null;

function build() {
  const search = el("input", { type: "search", id: "icon-search", placeholder: "Search icons (e.g. park, bus, cafe)", autocomplete: "off" });
  const status = el("p", { class: "muted small", id: "icon-status", role: "status", "aria-live": "polite" });
  const grid = el("div", { class: "icon-grid", id: "icon-grid" });
  const close = el("button", { type: "button", class: "dialog-close icon", "aria-label": "Close" }, "✕");
  dialog = el("dialog", { id: "icon-dialog", class: "icon-dialog", "aria-labelledby": "icon-dialog-title" },
    el("div", { class: "dialog-head" }, el("h2", { id: "icon-dialog-title" }, "Choose an icon"), close),
    el("div", { class: "dialog-body" },
      el("label", { class: "visually-hidden", for: "icon-search" }, "Search icons"), search, status, grid));
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });
  document.body.append(dialog);
  return { search, status, grid };
}

function choice(name, current, onPick) {
  const selected = name === current;
  return el("button", { type: "button", class: "icon-choice", title: iconLabel(name), "aria-label": iconLabel(name),
    "aria-pressed": String(selected), dataset: { icon: name }, onclick: () => onPick(name) },
  el("img", { src: iconUrl(name), alt: "", loading: "lazy", width: "24", height: "24" }));
}

/** Open the picker; resolves with the choice (see above). */
export function pickIcon(current = null) {
  const parts = dialog ? { search: dialog.querySelector("#icon-search"), status: dialog.querySelector("#icon-status"),
    grid: dialog.querySelector("#icon-grid") } : build();
  return new Promise((resolve) => {
    let result;
    const pick = (name) => {
      result = name;
      dialog.close();
    };
    const render = (icons) => {
      const words = parts.search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      const found = icons.filter(([name, , tags]) => words.every((w) => name.toLowerCase().includes(w) || tags.includes(w)));
      parts.grid.replaceChildren(
        el("button", { type: "button", class: "icon-choice icon-none", "aria-pressed": String(!current), onclick: () => pick(null) }, "No icon"),
        ...found.slice(0, 400).map(([name]) => choice(name, current, pick)));
      parts.status.textContent = found.length ? `${found.length} icons${found.length > 400 ? " (first 400 shown; search to narrow)" : ""}`
        : "No icon matches; try another word.";
    };
    parts.search.value = "";
    parts.grid.replaceChildren();
    parts.status.textContent = "Loading icons…";
    iconIndex().then((icons) => {
      render(icons);
      parts.search.oninput = () => render(icons);
    }, (exc) => {
      parts.status.textContent = `Icons cannot be loaded: ${exc.message}`;
    });
    dialog.addEventListener("close", () => resolve(result), { once: true });
    dialog.showModal();
    parts.search.focus();
  });
}
