// Reading the basemap's inputs: the places CSV and label points for country polygons.

/** Parse one CSV line (RFC 4180 quotes). */
function csvFields(line) {
  const out = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      out.push(field);
      field = "";
    } else field += c;
  }
  out.push(field);
  return out;
}

const NUMERIC = new Set(["lon", "lat", "scalerank", "min_zoom", "pop_max", "capital"]);

/** basemap/places.csv -> [{name, lon, lat, scalerank, min_zoom, pop_max, capital, adm1name, adm0name, iso_a2}] */
export function readPlaces(text) {
  const lines = text.split("\n").filter(Boolean);
  const header = csvFields(lines[0]);
  return lines.slice(1).map((line) => {
    const values = csvFields(line);
    return Object.fromEntries(header.map((name, i) => [name, NUMERIC.has(name) ? Number(values[i]) : values[i]]));
  });
}

function ringArea(ring) {
  let sum = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) sum += (ring[j][0] - ring[i][0]) * (ring[j][1] + ring[i][1]);
  return sum / 2;
}

function ringCentroid(ring) {
  let x = 0;
  let y = 0;
  let a = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const f = ring[j][0] * ring[i][1] - ring[i][0] * ring[j][1];
    x += (ring[j][0] + ring[i][0]) * f;
    y += (ring[j][1] + ring[i][1]) * f;
    a += f * 3;
  }
  return a ? [x / a, y / a] : ring[0];
}

function inRing([px, py], ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > py !== yj > py && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** A point inside the ring: its centroid, or else the middle of the widest chord through it. */
function labelPoint(ring) {
  const c = ringCentroid(ring);
  if (inRing(c, ring)) return c;
  const xs = [];
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > c[1] !== yj > c[1]) xs.push(xi + ((c[1] - yi) * (xj - xi)) / (yj - yi));
  }
  xs.sort((a, b) => a - b);
  let best = null;
  for (let k = 0; k + 1 < xs.length; k += 2) if (!best || xs[k + 1] - xs[k] > best[1] - best[0]) best = [xs[k], xs[k + 1]];
  return best ? [(best[0] + best[1]) / 2, c[1]] : c;
}

function bboxOf(rings) {
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  for (const ring of rings) for (const [x, y] of ring) {
    box[0] = Math.min(box[0], x);
    box[1] = Math.min(box[1], y);
    box[2] = Math.max(box[2], x);
    box[3] = Math.max(box[3], y);
  }
  return box.map((v) => Math.round(v * 100) / 100);
}

/** Countries (GeoJSON features with a name) -> label points with a rank and minimum zoom. */
export function countryLabels(features) {
  const out = [];
  for (const f of features) {
    const name = f.properties && f.properties.name;
    if (!name || !f.geometry) continue;
    const polygons = f.geometry.type === "Polygon" ? [f.geometry.coordinates] : f.geometry.coordinates;
    let largest = null;
    let area = 0;
    let total = 0;
    for (const polygon of polygons) {
      const a = Math.abs(ringArea(polygon[0]));
      total += a;
      if (a > area) {
        area = a;
        largest = polygon;
      }
    }
    if (!largest) continue;
    const [lon, lat] = labelPoint(largest[0]);
    let bbox = bboxOf(polygons.map((p) => p[0]));
    if (bbox[2] - bbox[0] > 180) bbox = bboxOf([largest[0]]); // across the antimeridian
    const rank = total > 400 ? 0 : total > 60 ? 1 : total > 8 ? 2 : 3;
    out.push({ name, lon: Math.round(lon * 1000) / 1000, lat: Math.round(lat * 1000) / 1000, rank, minzoom: rank + 1, bbox });
  }
  return out;
}
