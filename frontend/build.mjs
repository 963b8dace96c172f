// Build the one browser bundle (JS + CSS + images) into src/waymark/static/dist/.
//
//   npm run build          one production build (minified, content-hashed, precompressed)
//   npm run watch          rebuild on change (development)
//
// Writes manifest.json ({"main.js": "main-HASH.js", "main.css": "main-HASH.css", ...}) from
// the esbuild metafile, so the server maps logical names to hashed files, and a .gz and .br
// copy of every text file, so the server sends compressed bytes without compressing per request.
// The built-in basemap (frontend/basemap/build.mjs, cached by input hash) is copied in as
// basemap/natural-earth-HASH.pmtiles ("basemap.pmtiles" in the manifest) and
// basemap/gazetteer.json (read by the server's offline place search). A second entry,
// density (marker clustering and heatmaps), is loaded by the map page only for layers
// that cluster or heat-map their points; the icon set (icons-build.mjs) is a folder of
// small SVGs ("icons/" in the manifest), fetched one by one as maps use them.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { BASEMAP_CACHE, buildBasemap } from "./basemap/build.mjs";
import { buildIcons } from "./icons-build.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, "src", "waymark", "static", "dist");
const watch = process.argv.includes("--watch");

const options = {
  absWorkingDir: root,
  entryPoints: { main: "frontend/main.js", density: "frontend/density.js" },
  bundle: true,
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  format: "iife",
  target: ["es2020"],
  outdir,
  publicPath: "/static/dist",
  entryNames: "[name]-[hash]",
  assetNames: "assets/[name]-[hash]",
  loader: { ".png": "file", ".svg": "file" },
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
};

/** Build (or reuse) the basemap and copy it into the bundle; returns its manifest entries. */
function addBasemap() {
  const info = buildBasemap();
  mkdirSync(join(outdir, "basemap"), { recursive: true });
  const archive = `basemap/natural-earth-${info.archive_sha256.slice(0, 12)}.pmtiles`;
  copyFileSync(join(BASEMAP_CACHE, "natural-earth.pmtiles"), join(outdir, archive));
  copyFileSync(join(BASEMAP_CACHE, "gazetteer.json"), join(outdir, "basemap", "gazetteer.json"));
  return { "basemap.pmtiles": archive };
}

function writeManifest(result) {
  const manifest = { ...basemapEntries };
  for (const [file, info] of Object.entries(result.metafile.outputs)) {
    const rel = relative(outdir, join(root, file)).split("\\").join("/");
    if (info.entryPoint) {
      const name = basename(info.entryPoint, ".js");
      manifest[`${name}.js`] = rel;
      if (info.cssBundle) {
        manifest[`${name}.css`] = relative(outdir, join(root, info.cssBundle)).split("\\").join("/");
      }
    } else if (rel.startsWith("assets/")) {
      const logical = basename(rel).replace(/-[A-Z0-9]{8}(\.\w+)$/, "$1");
      manifest["assets/" + logical] = rel;
    }
  }
  writeFileSync(join(outdir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}

function precompress(result) {
  for (const file of Object.keys(result.metafile.outputs)) {
    if (!/\.(js|css|svg|txt)$/.test(file)) continue;
    const path = join(root, file);
    const data = readFileSync(path);
    writeFileSync(path + ".gz", gzipSync(data, { level: 9 }));
    writeFileSync(path + ".br", brotliCompressSync(data, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length },
    }));
  }
}

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const { count: iconCount, ...iconEntries } = buildIcons(root, outdir);
const basemapEntries = { ...addBasemap(), ...iconEntries };

if (watch) {
  const ctx = await esbuild.context({
    ...options,
    plugins: [{
      name: "manifest",
      setup(build) {
        build.onEnd((result) => {
          if (result.metafile) writeManifest(result);
          console.log(`rebuilt ${new Date().toLocaleTimeString()}`);
        });
      },
    }],
  });
  await ctx.watch();
  console.log("watching frontend/ ...");
} else {
  const result = await esbuild.build(options);
  const manifest = writeManifest(result);
  precompress(result);
  for (const [name, file] of Object.entries(manifest)) {
    if (name === "icons/") console.log(`icons    ${file}  ${iconCount} icons`);
    else if (!name.startsWith("assets/") && !name.startsWith("basemap")) {
      const size = readFileSync(join(outdir, file)).length;
      const gz = readFileSync(join(outdir, file + ".gz")).length;
      console.log(`${name.padEnd(9)} ${file}  ${(size / 1024).toFixed(1)} KiB (${(gz / 1024).toFixed(1)} KiB gzip)`);
    }
  }
}
