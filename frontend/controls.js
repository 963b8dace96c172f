// Map buttons (fit to data, locate me, fullscreen), panel tabs, and the export menu.
import L from "./leaflet-setup.js";
import { el, icon, notify } from "./ui.js";

export function controlButton(label, text, onClick) {
  const button = el("button", { type: "button", class: "wm-control-button", title: label, "aria-label": label }, text);
  L.DomEvent.disableClickPropagation(button);
  button.addEventListener("click", (event) => {
    event.preventDefault();
    onClick(button);
  });
  return button;
}

export const ButtonBar = L.Control.extend({
  options: { position: "topleft" },
  onAdd() {
    const bar = el("div", { class: "leaflet-bar wm-controls" });
    for (const b of this.options.buttons) bar.append(b);
    return bar;
  },
});

function toggleFullscreen(ctx, button) {
  const target = ctx.root.closest(".map-shell") || ctx.root;
  if (document.fullscreenElement) {
    document.exitFullscreen();
  } else if (target.requestFullscreen) {
    target.requestFullscreen().catch(() => target.classList.toggle("wm-pseudo-fullscreen"));
  } else {
    target.classList.toggle("wm-pseudo-fullscreen");
  }
  setTimeout(() => ctx.map.invalidateSize(), 200);
  button.setAttribute("aria-pressed", String(!document.fullscreenElement));
}

function initLocate(ctx) {
  let marker = null;
  ctx.map.on("locationfound", (e) => {
    if (marker) marker.remove();
    marker = L.circle(e.latlng, { radius: e.accuracy, color: "#136aec", weight: 2, fillOpacity: 0.15, interactive: false }).addTo(ctx.map);
  });
  ctx.map.on("locationerror", (e) => notify(`Cannot find your location: ${e.message}`, "error"));
}

function initTabs() {
  const tabs = [...document.querySelectorAll("[data-panel-tab]")];
  const show = (name) => {
    for (const tab of tabs) {
      const selected = tab.dataset.panelTab === name;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      const panel = document.getElementById(`panel-${tab.dataset.panelTab}`);
      if (panel) panel.hidden = !selected;
    }
    document.dispatchEvent(new CustomEvent("waymark:panel-shown", { detail: name }));
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => show(tab.dataset.panelTab));
    tab.addEventListener("keydown", (event) => {
      const i = tabs.indexOf(tab);
      const next = event.key === "ArrowRight" ? tabs[(i + 1) % tabs.length] : event.key === "ArrowLeft" ? tabs[(i - 1 + tabs.length) % tabs.length] : null;
      if (next) {
        next.focus();
        show(next.dataset.panelTab);
      }
    });
  }
  document.addEventListener("waymark:show-panel", (e) => show(e.detail));
}

export function showPanel(name) {
  document.dispatchEvent(new CustomEvent("waymark:show-panel", { detail: name }));
  const sidebar = document.getElementById("sidebar");
  if (sidebar && sidebar.classList.contains("collapsed")) document.getElementById("toggle-panel")?.click();
}

function initSidebarToggle(ctx) {
  const toggle = document.getElementById("toggle-panel");
  const sidebar = document.getElementById("sidebar");
  if (!toggle || !sidebar) return;
  if (window.matchMedia("(max-width: 700px)").matches) {
    sidebar.classList.add("collapsed");
    toggle.setAttribute("aria-expanded", "false");
  }
  toggle.addEventListener("click", () => {
    const collapsed = sidebar.classList.toggle("collapsed");
    toggle.setAttribute("aria-expanded", String(!collapsed));
    setTimeout(() => ctx.map.invalidateSize(), 50);
  });
}

function initMenus() {
  document.addEventListener("click", (event) => {
    for (const menu of document.querySelectorAll("details.menu[open]")) {
      if (!menu.contains(event.target)) menu.open = false;
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    for (const menu of document.querySelectorAll("details.menu[open]")) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });
}

/** On a phone the header is one row: the map's title, the panel button and a "More" menu
 * holding the other actions (settings, share, export, account), so the map keeps the screen. */
function initPhoneHeader() {
  const nav = document.querySelector(".page-map .topbar nav");
  if (!nav || !window.matchMedia("(max-width: 700px)").matches) return;
  const list = el("ul", {});
  const menu = el("details", { class: "menu more-menu" }, el("summary", { "aria-label": "More actions" }, "More"), list);
  for (const node of [...nav.children]) {
    if (node.id === "toggle-panel" || node.classList.contains("hide-small")) continue;
    if (node.id === "export-menu") { // its formats become items of this menu
      for (const link of node.querySelectorAll("a")) {
        link.textContent = `Export ${link.textContent}`;
        list.append(el("li", {}, link));
      }
      node.remove();
      continue;
    }
    list.append(el("li", {}, node));
  }
  nav.append(menu); // buttons revealed later (share, settings) show up inside it
}

export function initControls(ctx) {
  const buttons = [
    controlButton("Fit to data", icon("fit"), () => {
      if (!ctx.fitToData()) notify("This map has no features to show yet.");
    }),
    controlButton("Show my location", icon("locate"), () => ctx.map.locate({ setView: true, maxZoom: 16, timeout: 10000 })),
    controlButton("Full screen", icon("fullscreen"), (b) => toggleFullscreen(ctx, b)),
  ];
  new ButtonBar({ buttons }).addTo(ctx.map);
  initLocate(ctx);
  initTabs();
  initSidebarToggle(ctx);
  initMenus();
  initPhoneHeader();
}
