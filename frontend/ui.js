// Small DOM helpers shared by the pages.

/** el("button", {class: "x", onclick: fn}, "text", child) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A message in a live region: kind is "info", "ok" or "error". */
export function notify(message, kind = "info", { timeout = 6000 } = {}) {
  let region = document.getElementById("notices");
  if (!region) {
    region = el("div", { id: "notices", class: "notices", "aria-live": "polite" });
    document.body.append(region);
  }
  const note = el("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" },
    el("span", {}, message),
    el("button", { type: "button", class: "notice-close", "aria-label": "Dismiss", onclick: () => note.remove() }, "×"));
  region.append(note);
  if (timeout && kind !== "error") setTimeout(() => note.remove(), timeout);
  return note;
}

export function formatWhen(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

const ICONS = {
  fit: "M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5M9 10h6v4H9z",
  locate: "M12 2v3M12 19v3M2 12h3M19 12h3M12 7a5 5 0 1 0 0 10a5 5 0 1 0 0-10z",
  fullscreen: "M14 4h6v6M20 4l-7 7M10 20H4v-6M4 20l7-7",
  table: "M3 5h18v14H3zM3 10h18M3 15h18M9 10v9",
  trash: "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6",
  up: "M6 15l6-6 6 6",
  down: "M6 9l6 6 6-6",
};

/** A small stroked SVG icon (decorative: the button carries the label). */
export function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "wm-icon");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

/** Who saved the state a 412 returned (its details.updated_by): "you (in another window)",
 * their name, or "someone else". */
export function changedBy(details) {
  const who = details && details.updated_by;
  const me = document.querySelector('meta[name="user-id"]')?.content;
  if (who && me && String(who.id) === me) return "you (in another window)";
  return (who && who.display_name) || "someone else";
}
