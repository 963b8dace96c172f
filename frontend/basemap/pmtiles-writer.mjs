// A small PMTiles v3 writer (the `pmtiles` npm package only reads): clustered tile data,
// identical tiles stored once (run-length for neighbours), gzip-compressed directories with
// leaf directories when the root would not fit in the first 16 KiB.
// Spec: https://github.com/protomaps/PMTiles/blob/main/spec/v3/spec.md
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { zxyToTileId } from "pmtiles";

const HEADER_BYTES = 127;
const ROOT_MAX = 16384 - HEADER_BYTES;
const GZIP = 2;
const MVT = 1;

function varint(out, value) {
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

function serializeDirectory(entries) {
  const out = [];
  varint(out, entries.length);
  let last = 0;
  for (const e of entries) {
    varint(out, e.tileId - last);
    last = e.tileId;
  }
  for (const e of entries) varint(out, e.runLength);
  for (const e of entries) varint(out, e.length);
  entries.forEach((e, i) => {
    const prev = entries[i - 1];
    varint(out, i > 0 && e.offset === prev.offset + prev.length ? 0 : e.offset + 1);
  });
  return gzipSync(Buffer.from(out), { level: 9 });
}

/** Root directory bytes and leaf directory bytes for these entries. */
function directories(entries) {
  const root = serializeDirectory(entries);
  if (root.length <= ROOT_MAX) return { root, leaves: Buffer.alloc(0) };
  for (let leafSize = 4096; ; leafSize *= 2) {
    const rootEntries = [];
    const leaves = [];
    let offset = 0;
    for (let i = 0; i < entries.length; i += leafSize) {
      const leaf = serializeDirectory(entries.slice(i, i + leafSize));
      rootEntries.push({ tileId: entries[i].tileId, offset, length: leaf.length, runLength: 0 });
      leaves.push(leaf);
      offset += leaf.length;
    }
    const rootBytes = serializeDirectory(rootEntries);
    if (rootBytes.length <= ROOT_MAX) return { root: rootBytes, leaves: Buffer.concat(leaves) };
  }
}

function u64(buf, value, at) {
  buf.writeBigUInt64LE(BigInt(value), at);
}

/**
 * tiles: [{z, x, y, data: Buffer (already gzip-compressed MVT)}] -> the archive as a Buffer.
 * options: {metadata, minZoom, maxZoom, bounds: [w, s, e, n], center: [lon, lat, zoom]}
 */
export function writePmtiles(tiles, { metadata = {}, minZoom = 0, maxZoom = 0, bounds = [-180, -85, 180, 85], center = [0, 20, 2] } = {}) {
  const sorted = tiles.map((t) => ({ ...t, tileId: zxyToTileId(t.z, t.x, t.y) })).sort((a, b) => a.tileId - b.tileId);
  const entries = [];
  const chunks = [];
  const seen = new Map(); // content hash -> {offset, length}
  let offset = 0;
  let previousHash = null;
  for (const tile of sorted) {
    const hash = createHash("sha256").update(tile.data).digest("hex");
    const last = entries[entries.length - 1];
    if (last && hash === previousHash && tile.tileId === last.tileId + last.runLength) {
      last.runLength += 1;
      continue;
    }
    let stored = seen.get(hash);
    if (!stored) {
      stored = { offset, length: tile.data.length };
      seen.set(hash, stored);
      chunks.push(tile.data);
      offset += tile.data.length;
    }
    entries.push({ tileId: tile.tileId, offset: stored.offset, length: stored.length, runLength: 1 });
    previousHash = hash;
  }
  const tileData = Buffer.concat(chunks);
  const { root, leaves } = directories(entries);
  const meta = gzipSync(Buffer.from(JSON.stringify(metadata)), { level: 9 });

  const header = Buffer.alloc(HEADER_BYTES);
  header.write("PMTiles", 0, "ascii");
  header.writeUInt8(3, 7);
  const rootOffset = HEADER_BYTES;
  const metaOffset = rootOffset + root.length;
  const leafOffset = metaOffset + meta.length;
  const dataOffset = leafOffset + leaves.length;
  u64(header, rootOffset, 8);
  u64(header, root.length, 16);
  u64(header, metaOffset, 24);
  u64(header, meta.length, 32);
  u64(header, leafOffset, 40);
  u64(header, leaves.length, 48);
  u64(header, dataOffset, 56);
  u64(header, tileData.length, 64);
  u64(header, sorted.length, 72); // addressed tiles
  u64(header, entries.length, 80); // tile entries
  u64(header, seen.size, 88); // tile contents
  header.writeUInt8(1, 96); // clustered
  header.writeUInt8(GZIP, 97); // internal compression
  header.writeUInt8(GZIP, 98); // tile compression
  header.writeUInt8(MVT, 99);
  header.writeUInt8(minZoom, 100);
  header.writeUInt8(maxZoom, 101);
  header.writeInt32LE(Math.round(bounds[0] * 1e7), 102);
  header.writeInt32LE(Math.round(bounds[1] * 1e7), 106);
  header.writeInt32LE(Math.round(bounds[2] * 1e7), 110);
  header.writeInt32LE(Math.round(bounds[3] * 1e7), 114);
  header.writeUInt8(center[2], 118);
  header.writeInt32LE(Math.round(center[0] * 1e7), 119);
  header.writeInt32LE(Math.round(center[1] * 1e7), 123);
  return Buffer.concat([header, root, meta, leaves, tileData]);
}
