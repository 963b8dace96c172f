// Geodesic length and area (on a sphere, as @turf/length and @turf/area compute them) and
// their display in metric and imperial units together, so nobody has to pick a setting.

const LENGTH_RADIUS = 6371008.8; // mean earth radius (m), for great-circle distances
const AREA_RADIUS = 6378137; // WGS84 equatorial radius (m), for spherical polygon areas
const rad = (deg) => (deg * Math.PI) / 180;

/** Great-circle length (m) of a path of [lon, lat] positions. */
export function pathLength(coords) {
  let total = 0;
  for (let i = 1; i < coords.length; i++) {
    const [lon1, lat1] = coords[i - 1];
    const [lon2, lat2] = coords[i];
    const a = Math.sin(rad(lat2 - lat1) / 2) ** 2
      + Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(rad(lon2 - lon1) / 2) ** 2;
    total += 2 * LENGTH_RADIUS * Math.atan2(Math.sqrt(a), Math.sqrt(1 - a));
  }
  return total;
}

/** Area (m²) of one ring of [lon, lat] positions (Chamberlain & Duquette, as turf). */
export function ringArea(coords) {
  const n = coords.length;
  if (n < 3) return 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const lower = coords[i];
    const middle = coords[(i + 1) % n];
    const upper = coords[(i + 2) % n];
    total += (rad(upper[0]) - rad(lower[0])) * Math.sin(rad(middle[1]));
  }
  return Math.abs((total * AREA_RADIUS * AREA_RADIUS) / 2);
}

function polygonArea(rings) {
  return rings.reduce((sum, ring, i) => sum + (i === 0 ? ringArea(ring) : -ringArea(ring)), 0);
}

/** {length, area} of a GeoJSON geometry in m and m² (length of an area is its perimeter). */
export function measureGeometry(geometry) {
  const out = { length: 0, area: 0 };
  if (!geometry) return out;
  const add = (g) => {
    if (g.type === "LineString") out.length += pathLength(g.coordinates);
    else if (g.type === "MultiLineString") g.coordinates.forEach((c) => { out.length += pathLength(c); });
    else if (g.type === "Polygon") {
      out.area += polygonArea(g.coordinates);
      out.length += pathLength(g.coordinates[0]);
    } else if (g.type === "MultiPolygon") {
      g.coordinates.forEach((p) => {
        out.area += polygonArea(p);
        out.length += pathLength(p[0]);
      });
    } else if (g.type === "GeometryCollection") g.geometries.forEach(add);
  };
  add(geometry);
  return out;
}

function num(value, digits) {
  return value.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** "1.24 km (0.77 mi)" */
export function formatLength(m) {
  const metric = m < 1000 ? `${num(m, m < 10 ? 1 : 0)} m` : `${num(m / 1000, m < 100000 ? 2 : m < 1e6 ? 1 : 0)} km`;
  const feet = m / 0.3048;
  const miles = m / 1609.344;
  const imperial = miles < 0.1 ? `${num(feet, 0)} ft` : `${num(miles, miles < 100 ? 2 : 0)} mi`;
  return `${metric} (${imperial})`;
}

/** "3.2 ha (7.91 acres)" */
export function formatArea(m2) {
  const metric = m2 < 10000 ? `${num(m2, 0)} m²` : m2 < 1e6 ? `${num(m2 / 10000, 2)} ha` : `${num(m2 / 1e6, m2 < 1e8 ? 2 : 0)} km²`;
  const acres = m2 / 4046.8564224;
  const imperial = acres < 1 ? `${num(m2 * 10.7639104, 0)} ft²` : acres < 640 ? `${num(acres, 2)} acres` : `${num(acres / 640, 2)} mi²`;
  return `${metric} (${imperial})`;
}

/** One line for a geometry: "Length …" for lines, "Area … · perimeter …" for areas. */
export function describeSize(geometry) {
  const { length, area } = measureGeometry(geometry);
  if (area > 0) return `Area ${formatArea(area)} · perimeter ${formatLength(length)}`;
  if (length > 0) return `Length ${formatLength(length)}`;
  return "";
}

/** A geodesic circle as a closed ring of [lon, lat] positions (`steps` sides). */
export function circleRing([lon, lat], radius, steps = 64) {
  const d = radius / LENGTH_RADIUS;
  const lat1 = rad(lat);
  const lon1 = rad(lon);
  const ring = [];
  for (let i = 0; i < steps; i++) {
    const bearing = (2 * Math.PI * i) / steps;
    const lat2 = Math.asin(Math.sin(lat1) * Math.cos(d) + Math.cos(lat1) * Math.sin(d) * Math.cos(bearing));
    const lon2 = lon1 + Math.atan2(Math.sin(bearing) * Math.sin(d) * Math.cos(lat1), Math.cos(d) - Math.sin(lat1) * Math.sin(lat2));
    ring.push([Number(((lon2 * 180) / Math.PI).toFixed(7)), Number(((lat2 * 180) / Math.PI).toFixed(7))]);
  }
  ring.push(ring[0]);
  return ring;
}

/** The radius (m) of a polygon that is a circle as the circle tool draws it — one ring of
 * at least 16 vertices, all at the same great-circle distance from their centre within 1% —
 * else null. */
export function circleRadius(geometry) {
  if (!geometry || geometry.type !== "Polygon" || geometry.coordinates.length !== 1) return null;
  const ring = geometry.coordinates[0].slice(0, -1);
  if (ring.length < 16) return null;
  let x = 0;
  let y = 0;
  let z = 0;
  for (const [lon, lat] of ring) { // the centre: the mean of the vertices on the sphere
    x += Math.cos(rad(lat)) * Math.cos(rad(lon));
    y += Math.cos(rad(lat)) * Math.sin(rad(lon));
    z += Math.sin(rad(lat));
  }
  const centre = [(Math.atan2(y, x) * 180) / Math.PI, (Math.atan2(z, Math.hypot(x, y)) * 180) / Math.PI];
  const distances = ring.map((p) => pathLength([centre, p]));
  const mean = distances.reduce((a, b) => a + b, 0) / distances.length;
  if (!(mean > 0) || distances.some((d) => Math.abs(d - mean) > 0.01 * mean)) return null;
  return Math.round(mean * 10) / 10;
}

/** What saving a new shape of `feature` sends: {geometry}, and for a circle (a polygon with
 * a numeric `radius` that was a circle) its properties with `radius` brought up to date —
 * or removed, when the new shape is no longer a circle. */
export function shapeChanges(feature, geometry) {
  const props = feature.properties || {};
  if (typeof props.radius !== "number" || circleRadius(feature.geometry) === null) return { geometry };
  const radius = circleRadius(geometry);
  if (radius === props.radius) return { geometry };
  const properties = { ...props };
  if (radius === null) delete properties.radius;
  else properties.radius = radius;
  return { geometry, properties };
}
