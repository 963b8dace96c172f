// Reading the basemap's inputs: the places CSV, and label points (with names) for countries
// and first-level areas.

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

const polygonsOf = (geometry) => (geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates);

/** Bounding box of a Polygon or MultiPolygon [west, south, east, north]. */
export const geometryBbox = (geometry) => bboxOf(polygonsOf(geometry).map((p) => p[0]));

/** Where to write the name of an area: a point inside its largest polygon, its total area
 * (square degrees) and its bounding box (of the largest polygon across the antimeridian). */
function labelAnchor(geometry) {
  const polygons = polygonsOf(geometry);
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
  if (!largest) return null;
  const [lon, lat] = labelPoint(largest[0]);
  let bbox = bboxOf(polygons.map((p) => p[0]));
  if (bbox[2] - bbox[0] > 180) bbox = bboxOf([largest[0]]); // across the antimeridian
  return { lon: Math.round(lon * 1000) / 1000, lat: Math.round(lat * 1000) / 1000, total, bbox };
}

/** Countries (GeoJSON features with a name) -> label points with a rank and minimum zoom. */
export function countryLabels(features) {
  const out = [];
  for (const f of features) {
    const name = f.properties && f.properties.name;
    const anchor = name && f.geometry && labelAnchor(f.geometry);
    if (!anchor) continue;
    const rank = anchor.total > 400 ? 0 : anchor.total > 60 ? 1 : anchor.total > 8 ? 2 : 3;
    out.push({ name, lon: anchor.lon, lat: anchor.lat, rank, minzoom: rank + 1, bbox: anchor.bbox });
  }
  return out;
}

const inPolygon = (point, polygon) => inRing(point, polygon[0]) && !polygon.slice(1).some((hole) => inRing(point, hole));

/** The name of a first-level area, from the populated places (readPlaces) in it: their
 * most common admin-1 name, a capital counting three times (Natural Earth misspells a few,
 * "Amapi" for Amapá; a place near a border may fall on the wrong side at 1:50m); for an area
 * with no place inside (Prince Edward Island at 1:50m), that of an admin-1 capital within 1
 * degree of its label point; null when none. */
function regionName(geometry, anchor, places) {
  const polygons = polygonsOf(geometry);
  const [west, south, east, north] = geometryBbox(geometry);
  const votes = new Map();
  for (const p of places) {
    if (!p.adm1name || p.lon < west || p.lon > east || p.lat < south || p.lat > north) continue;
    if (polygons.some((polygon) => inPolygon([p.lon, p.lat], polygon))) {
      votes.set(p.adm1name, (votes.get(p.adm1name) || 0) + (p.capital > 0 ? 3 : 1));
    }
  }
  const [best] = [...votes].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  if (best) return best[0];
  const near = places.find((p) => p.capital === 1 && Math.hypot(p.lon - anchor.lon, p.lat - anchor.lat) < 1);
  return near ? near.adm1name : null;
}

/** First-level areas (GeoJSON features of basemap/admin1.topo.json: name and country `gu`;
 * an area without a name is named from its places, see regionName) -> named label points
 * with a minimum (data) zoom by size (regionZoom; protomaps-leaflet draws zoom z from the
 * data tiles of z - 1, so they show from zoom 4 to 7). */
export function regionLabels(features, places) {
  const out = [];
  for (const f of features) {
    const anchor = f.geometry && labelAnchor(f.geometry);
    const name = anchor && (f.properties.name || regionName(f.geometry, anchor, places));
    if (!name) continue;
    out.push({ name, country: f.properties.gu, lon: anchor.lon, lat: anchor.lat, minzoom: regionZoom(anchor.total),
      bbox: anchor.bbox });
  }
  return out;
}

/** The minimum (data) zoom of a first-level area's name by its total area (square degrees):
 * 3 for the larger ones to 6 for the smallest; its borders come one zoom earlier. */
export const regionZoom = (total) => (total > 20 ? 3 : total > 3 ? 4 : total > 0.3 ? 5 : 6);

/** Total area of a (Multi)Polygon's outer rings, square degrees. */
export const areaOf = (geometry) => polygonsOf(geometry).reduce((sum, p) => sum + Math.abs(ringArea(p[0])), 0);

/** A ring or line of world-atlas (spherical: it may cross the antimeridian) made continuous
 * in longitude (values past ±180 are fine: geojson-vt wraps them). A ring around a pole
 * (Antarctica) is closed along the pole. Without this, a crossing becomes an edge across
 * the whole map (Chukotka at 66° N, Fiji at 17° S). */
function unwrap(coords, ring) {
  const out = [coords[0].slice()];
  let offset = 0;
  for (let i = 1; i < coords.length; i++) {
    let lon = coords[i][0] + offset;
    const prev = out[out.length - 1][0];
    if (lon - prev > 180) {
      offset -= 360;
      lon -= 360;
    } else if (lon - prev < -180) {
      offset += 360;
      lon += 360;
    }
    out.push([lon, coords[i][1]]);
  }
  if (ring && Math.abs(offset) >= 180) { // around a pole
    const pole = out.reduce((sum, c) => sum + c[1], 0) < 0 ? -90 : 90;
    const last = out[out.length - 1][0];
    out.push([last, pole], [out[0][0], pole], out[0].slice());
  }
  return out;
}

/** The same geometry with its rings and lines unwrapped (see unwrap). */
export function unwrapGeometry(geometry) {
  const rings = (polygon) => polygon.map((ring) => unwrap(ring, true));
  switch (geometry.type) {
    case "Polygon": return { ...geometry, coordinates: rings(geometry.coordinates) };
    case "MultiPolygon": return { ...geometry, coordinates: geometry.coordinates.map(rings) };
    case "LineString": return { ...geometry, coordinates: unwrap(geometry.coordinates, false) };
    case "MultiLineString": return { ...geometry, coordinates: geometry.coordinates.map((l) => unwrap(l, false)) };
    default: return geometry;
  }
}

/** A FeatureCollection, Feature or geometry with unwrapped geometries. */
export function unwrapped(data) {
  if (data.type === "FeatureCollection") return { ...data, features: data.features.map(unwrapped) };
  if (data.type === "Feature") return { ...data, geometry: data.geometry && unwrapGeometry(data.geometry) };
  return unwrapGeometry(data);
}
