// Circles (the circle tool's 64-sided polygons with a `radius` property): the radius is
// found again from the shape, follows a move and goes when the shape is no longer a circle.
import assert from "node:assert/strict";
import test from "node:test";
import { circleRadius, circleRing, shapeChanges } from "../measure.js";

const polygon = (ring) => ({ type: "Polygon", coordinates: [ring] });

test("a drawn circle's radius is found from its shape, at any latitude", () => {
  for (const [centre, radius] of [[[-3.19, 55.95], 500], [[10, 0], 25000], [[20, 70], 120]]) {
    const found = circleRadius(polygon(circleRing(centre, radius)));
    assert.ok(Math.abs(found - radius) <= 0.001 * radius, `${centre} ${radius}: ${found}`);
  }
});

test("a square, a dragged vertex or a small polygon is not a circle", () => {
  assert.equal(circleRadius(polygon([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]])), null);
  const ring = circleRing([-3.19, 55.95], 500);
  ring[10] = [ring[10][0] + 0.002, ring[10][1]]; // one vertex pulled out ~125 m
  assert.equal(circleRadius(polygon(ring)), null);
  assert.equal(circleRadius(polygon(circleRing([0, 0], 500, 8))), null);
  assert.equal(circleRadius({ type: "LineString", coordinates: circleRing([0, 0], 500) }), null);
});

test("saving a new shape updates or drops the radius of a circle, and only of a circle", () => {
  const circle = { geometry: polygon(circleRing([-3.19, 55.95], 500)), properties: { name: "Zone", radius: 500 } };
  const bigger = polygon(circleRing([-3.19, 55.95], 650));
  assert.deepEqual(shapeChanges(circle, bigger), { geometry: bigger, properties: { name: "Zone", radius: 650 } });
  const moved = polygon(circleRing([-3.0, 55.95], 500));
  assert.deepEqual(shapeChanges(circle, moved), { geometry: moved }); // same radius: shape only
  const ring = circleRing([-3.19, 55.95], 500);
  ring[3] = [-3.17, 55.96];
  const reshaped = polygon(ring);
  assert.deepEqual(shapeChanges(circle, reshaped), { geometry: reshaped, properties: { name: "Zone" } });
  // a square whose data has a "radius" column keeps it
  const square = { geometry: polygon([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]), properties: { radius: 3 } };
  assert.deepEqual(shapeChanges(square, reshaped), { geometry: reshaped });
});
