// The bundled icon set (Maki and Temaki, built by icons-build.mjs): each icon is a small SVG
// file, fetched the first time a map uses it; the index (names and search words) is fetched
// when the icon picker opens. Nothing is loaded for maps without icons.

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;
const shapes = new Map(); // name -> {viewBox, paths} | null (no such icon) | Promise
const listeners = [];
let base = null;
let index = null;

/** Where the icon set is (the map's data-icons, a content-hashed folder). */
export function initIcons(root) {
  base = (root && root.dataset.icons) || null;
}

export const validIconName = (name) => typeof name === "string" && NAME.test(name);

export function iconUrl(name) {
  return `${base}${encodeURIComponent(name)}.svg`;
}

/** Call fn() whenever icons finish loading (markers that waited for them redraw). */
export function onIconsLoaded(fn) {
  listeners.push(fn);
}

let pending = 0;
function loaded() {
  pending -= 1;
  if (pending === 0) for (const fn of listeners) fn();
}

/** An icon's shape ({viewBox, paths}) when it is loaded; null when there is no such icon;
 * undefined while it loads (the first call starts loading it). */
export function iconShape(name) {
  if (!validIconName(name) || !base) return null;
  const known = shapes.get(name);
  if (known === undefined) {
    pending += 1;
    shapes.set(name, fetch(iconUrl(name), { credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : null))
      .then((text) => {
        const svg = text && new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
        const paths = svg ? [...svg.querySelectorAll("path")].map((p) => p.getAttribute("d")).filter(Boolean) : [];
        shapes.set(name, paths.length ? { viewBox: svg.getAttribute("viewBox") || "0 0 15 15", paths } : null);
      })
      .catch(() => shapes.set(name, null))
      .finally(loaded));
    return undefined;
  }
  return known instanceof Promise ? undefined : known;
}

/** Wait until these icons are loaded (or known to be missing). */
export async function loadIcons(names) {
  for (const name of names) iconShape(name);
  await Promise.all(names.map((n) => shapes.get(n)).filter((v) => v instanceof Promise));
}

/** [[name, set, words], ...] of every bundled icon (for the picker's search). */
export async function iconIndex() {
  if (!index) {
    index = fetch(`${base}index.json`, { credentials: "same-origin" }).then((r) => {
      if (!r.ok) throw new Error(`icon list not available (HTTP ${r.status})`);
      return r.json();
    });
    index.catch(() => {
      index = null;
    });
  }
  return index;
}

/** A readable name for an icon: "bicycle-share" -> "bicycle share". */
export const iconLabel = (name) => name.replace(/[-_]/g, " ");
