// Readable popups: the feature's name, its description (imported HTML reduced to a small
// safe subset, never shown as code and never run), then its properties — those of the
// layer's popup template in its order and with its labels, or else every property that is
// not an importer's internal field. URLs become links; image URLs become images when the
// page's CSP lets them load (data-image-origins), links otherwise.
import { el } from "./ui.js";

/** Fields importers keep for round trips, not for people (GPX, KML, simplestyle). */
const INTERNAL = new Set(["coordinateProperties", "gpx_type", "sym", "styleUrl", "styleHash", "styleMapHash",
  "stroke", "stroke-width", "stroke-opacity", "fill", "fill-opacity", "marker-color", "marker-size",
  "marker-symbol", "label-text", "label-show", "icon", "visibility", "times", "coordTimes"]);
export const isInternal = (key) => key.startsWith("_") || INTERNAL.has(key);
const DESCRIPTION_KEYS = ["description", "desc"];
const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
const IMAGE_RE = /\.(png|jpe?g|gif|webp|svg|avif)(\?[^\s]*)?$/i;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;

// ---- safe HTML ----------------------------------------------------------------------
const KEEP = new Set(["P", "BR", "B", "STRONG", "I", "EM", "U", "UL", "OL", "LI", "A", "IMG", "TABLE", "THEAD",
  "TBODY", "TR", "TD", "TH", "SPAN", "DIV", "HR", "BLOCKQUOTE", "H1", "H2", "H3", "H4", "H5", "H6", "SMALL", "SUB", "SUP"]);
const DROP = new Set(["SCRIPT", "STYLE", "IFRAME", "OBJECT", "EMBED", "TEMPLATE", "NOSCRIPT", "SVG", "MATH",
  "FORM", "INPUT", "BUTTON", "SELECT", "TEXTAREA", "LINK", "META", "BASE", "FRAME", "FRAMESET", "AUDIO", "VIDEO"]);
const HEADINGS = new Set(["H1", "H2", "H3", "H4", "H5", "H6"]);
export const looksLikeHtml = (text) => /<\/?[a-zA-Z][\w-]*(\s[^<>]*)?\/?>|&[a-z]+;|&#\d+;/.test(text);

/** An absolute http(s) or mailto URL, else null (relative URLs in imported data lead nowhere). */
function safeUrl(raw) {
  if (!/^(https?:\/\/|mailto:)/i.test(raw.trim())) return null;
  try {
    const url = new URL(raw.trim());
    return ["http:", "https:", "mailto:"].includes(url.protocol) ? url : null;
  } catch {
    return null;
  }
}

/** Can the page show an image from this URL (same origin, or an origin the CSP allows)? */
function imageAllowed(url, imageOrigins) {
  return url.origin === window.location.origin || imageOrigins.some((o) => o === url.origin
    || (o.includes("*.") && url.protocol + "//" === o.split("*.")[0] && url.host.endsWith("." + o.split("*.")[1])));
}

function link(url, text) {
  return el("a", { href: url.href, target: "_blank", rel: "noopener noreferrer nofollow" }, text || url.href);
}

function image(url, alt) {
  return el("img", { src: url.href, alt: alt || "", loading: "lazy", class: "wm-popup-img", referrerpolicy: "no-referrer" });
}

/** Copy the allowed part of a parsed DOM node into fresh elements (no attributes but
 * checked href/src/alt; no styles, no handlers). */
function cleanNode(node, imageOrigins) {
  if (node.nodeType === Node.TEXT_NODE) return document.createTextNode(node.textContent);
  if (node.nodeType !== Node.ELEMENT_NODE || DROP.has(node.tagName)) return null;
  const children = () => [...node.childNodes].map((c) => cleanNode(c, imageOrigins)).filter(Boolean);
  if (!KEEP.has(node.tagName)) {
    const frag = document.createDocumentFragment();
    frag.append(...children());
    return frag;
  }
  if (node.tagName === "A") {
    const url = safeUrl(node.getAttribute("href") || "");
    const inner = children();
    if (!url) {
      const frag = document.createDocumentFragment();
      frag.append(...inner);
      return frag;
    }
    const a = link(url, "");
    a.textContent = "";
    a.append(...(inner.length ? inner : [url.href]));
    return a;
  }
  if (node.tagName === "IMG") {
    const url = safeUrl(node.getAttribute("src") || "");
    if (!url || url.protocol === "mailto:") return null;
    return imageAllowed(url, imageOrigins) ? image(url, node.getAttribute("alt")) : link(url, node.getAttribute("alt") || "image");
  }
  const tag = HEADINGS.has(node.tagName) ? "strong" : node.tagName.toLowerCase();
  const out = document.createElement(tag);
  out.append(...children());
  return out;
}

/** Imported HTML (e.g. a KML description) as safe DOM nodes. */
export function sanitizeHtml(html, imageOrigins = []) {
  // Rename handler attributes before parsing: the parsed document is inert, but the browser
  // would still report each handler as a CSP violation. Nothing of them is copied anyway.
  const defused = html.replace(/<[^>]*>/g, (tag) => tag.replace(/\s(on[a-z]+)\s*=/gi, " data-removed-$1="));
  const doc = new DOMParser().parseFromString(`<body>${defused}</body>`, "text/html");
  const box = el("div", { class: "wm-popup-html" });
  for (const child of [...doc.body.childNodes]) {
    const clean = cleanNode(child, imageOrigins);
    if (clean) box.append(clean);
  }
  return box;
}

// ---- values -------------------------------------------------------------------------
/** Plain text with its URLs as links (and an image when the whole value is an image URL). */
export function richText(text, imageOrigins = []) {
  const trimmed = text.trim();
  const whole = safeUrl(trimmed);
  if (whole && whole.protocol !== "mailto:" && /^https?:\/\/\S+$/.test(trimmed)) {
    if (IMAGE_RE.test(whole.pathname) && imageAllowed(whole, imageOrigins)) return image(whole, "");
    return link(whole);
  }
  const out = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    out.append(text.slice(last, match.index));
    const url = safeUrl(match[0]);
    out.append(url ? link(url) : match[0]);
    last = match.index + match[0].length;
  }
  out.append(text.slice(last));
  return out;
}

function valueNode(value, imageOrigins) {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") return value.toLocaleString();
  if (typeof value === "object") {
    const parts = Array.isArray(value) ? value.filter((v) => typeof v !== "object").map(String) : [];
    return parts.length && parts.length === value.length ? parts.join(", ") : null; // structured data: not for people
  }
  const text = String(value);
  if (ISO_TIME.test(text) && !Number.isNaN(Date.parse(text))) {
    return new Date(text).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
  return looksLikeHtml(text) ? sanitizeHtml(text, imageOrigins) : richText(text, imageOrigins);
}

/** Which properties the popup lists, in order: [[key, label], ...]. */
export function popupFields(props, template) {
  const shown = [];
  const used = new Set(["name"]);
  if (template && Array.isArray(template.fields) && template.fields.length) {
    for (const { key, label } of template.fields) {
      if (key in props && !used.has(key)) {
        shown.push([key, label || key]);
        used.add(key);
      }
    }
    if (!template.others) return shown;
  }
  for (const key of Object.keys(props)) {
    if (used.has(key) || isInternal(key)) continue;
    shown.push([key, key]);
    used.add(key);
  }
  return shown;
}

/** The popup of one feature of a layer (template: the layer's style.popup). */
export function popupContent(feature, template, imageOrigins = []) {
  const props = (feature && feature.properties) || {};
  const title = props.name !== undefined && props.name !== null && String(props.name).trim() !== "" ? String(props.name) : null;
  const box = el("div", { class: "wm-popup" }, el("h3", {}, title || "Untitled"));
  const rows = [];
  for (const [key, label] of popupFields(props, template)) {
    const value = props[key];
    if (DESCRIPTION_KEYS.includes(key) && typeof value === "string") {
      if (value.trim() && value.trim() !== title) {
        box.append(looksLikeHtml(value) ? sanitizeHtml(value, imageOrigins)
          : el("p", { class: "wm-popup-desc" }, richText(value, imageOrigins)));
      }
      continue;
    }
    const node = valueNode(value, imageOrigins);
    if (node !== null) rows.push(el("tr", {}, el("th", { scope: "row" }, label), el("td", {}, node)));
  }
  if (rows.length) box.append(el("table", { class: "wm-props" }, el("tbody", {}, rows.slice(0, 50))));
  return box;
}
