// The bundled icon set: Maki (@mapbox/maki) and Temaki (@rapideditor/temaki), both CC0, from
// npm. Written at build time into the bundle as one small SVG per icon under
// icons/<hash>/<name>.svg (the hash of the whole set: the files cache forever and a new set
// gets a new folder) and an index.json with each icon's name, set and search words (Temaki's
// groups). The page loads only the icons a map uses, and the index when the icon picker opens.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const SETS = [
  ["maki", "node_modules/@mapbox/maki/icons", null],
  ["temaki", "node_modules/@rapideditor/temaki/icons", "node_modules/@rapideditor/temaki/data/icons.json"],
];

/** One icon file as a compact SVG: its viewBox and the path data (every icon of both sets is
 * made of <path> elements only; entity-encoded whitespace in the data is normalised). */
function compact(text) {
  const viewBox = (/viewBox="([^"]+)"/.exec(text) || [])[1] || "0 0 15 15";
  const paths = [...text.matchAll(/\sd="([^"]*)"/g)]
    .map((m) => m[1].replace(/&#x[0-9a-fA-F]+;/g, " ").replace(/\s+/g, " ").trim());
  const body = paths.map((d) => `<path d="${d}"/>`).join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="${viewBox}">${body}</svg>`;
}

/** Write the set into outdir/icons/<hash>/; returns its manifest entries. */
export function buildIcons(root, outdir) {
  const icons = new Map(); // name -> {set, svg, words}
  for (const [set, dir, meta] of SETS) {
    const groups = meta ? JSON.parse(readFileSync(join(root, meta), "utf8")) : {};
    for (const file of readdirSync(join(root, dir)).sort()) {
      const name = file.replace(/\.svg$/, "");
      if (!file.endsWith(".svg") || icons.has(name)) continue; // Maki first
      const svg = compact(readFileSync(join(root, dir, file), "utf8"));
      icons.set(name, { set, svg, words: (groups[name] && groups[name].groups) || [] });
    }
  }
  const hash = createHash("sha256");
  for (const [name, icon] of icons) hash.update(`${name}\n${icon.svg}\n`);
  const folder = `icons/${hash.digest("hex").slice(0, 12)}`;
  mkdirSync(join(outdir, folder), { recursive: true });
  for (const [name, icon] of icons) writeFileSync(join(outdir, folder, `${name}.svg`), icon.svg);
  const index = [...icons].map(([name, icon]) => [name, icon.set, icon.words.join(" ")]);
  writeFileSync(join(outdir, folder, "index.json"), JSON.stringify(index));
  return { "icons/": `${folder}/`, count: icons.size };
}
