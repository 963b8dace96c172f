// node --test frontend/tests  (run by tests/unit/test_frontend_js.py, so `make test` runs it)
//
// Known data with published breaks: employment density of the 58 California counties
// (mapclassify's example data set "calemp", calempdensity.csv, BSD-3-Clause; from Anselin
// and Rey), with the breaks and counts printed in mapclassify 2.8.1's documentation for
// Quantiles(k=5), EqualInterval(k=5) and FisherJenks(k=5) (Fisher-Jenks: the optimal,
// "natural breaks", classification).
import assert from "node:assert/strict";
import test from "node:test";
import {
  JENKS_SAMPLE, classBreaks, classCounts, classIndex, equalIntervalBreaks, jenksBreaks,
  quantileBreaks, toNumber,
} from "../classify.js";

const CALEMP = [329.92, 0.42, 5.9, 14.03, 2.78, 1.34, 181.27, 1.65, 10.03, 16.7, 1.32, 3.99,
  3.16, 0.22, 8.7, 6.56, 3.27, 0.33, 370.5, 4.51, 75.29, 0.99, 2.74, 8.68, 0.14, 0.92, 12.63,
  28.7, 12.02, 722.85, 36.68, 0.74, 29.82, 192.05, 3.38, 11.15, 110.74, 4111.45, 49.47, 10.33,
  317.11, 20.47, 264.93, 66.26, 5.39, 0.13, 0.61, 50.65, 40.48, 36.67, 13.09, 1.81, 0.2, 7.6,
  2.51, 57.26, 24.32, 6.97];

const close = (actual, expected, digits = 3) => {
  assert.equal(actual.length, expected.length, `${actual} vs ${expected}`);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]) < 10 ** -digits, `${actual} vs ${expected}`));
};

test("quantiles: mapclassify's published breaks and counts", () => {
  const breaks = quantileBreaks(CALEMP, 5);
  close(breaks.slice(1), [1.464, 5.798, 13.278, 54.616, 4111.45]);
  assert.equal(breaks[0], 0.13);
  assert.deepEqual(classCounts(CALEMP, breaks), [12, 11, 12, 11, 12]);
});

test("equal intervals: mapclassify's published breaks and counts", () => {
  const breaks = equalIntervalBreaks(CALEMP, 5);
  close(breaks.slice(1), [822.394, 1644.658, 2466.922, 3289.186, 4111.45]);
  assert.deepEqual(classCounts(CALEMP, breaks), [57, 0, 0, 0, 1]);
});

test("natural breaks (Jenks): mapclassify's published Fisher-Jenks breaks and counts", () => {
  const breaks = jenksBreaks(CALEMP, 5);
  assert.deepEqual(breaks, [0.13, 75.29, 192.05, 370.5, 722.85, 4111.45]);
  assert.deepEqual(classCounts(CALEMP, breaks), [49, 3, 4, 1, 1]);
});

test("natural breaks find obvious groups exactly", () => {
  const data = [1, 2, 3, 20, 21, 22, 23, 60, 61, 100];
  assert.deepEqual(jenksBreaks(data, 4), [1, 3, 23, 61, 100]);
  assert.deepEqual(jenksBreaks(data, 2), [1, 23, 100]);
});

test("natural breaks on a large layer use a sample and still separate the groups", () => {
  const values = [];
  for (let i = 0; i < 40000; i++) values.push(i % 2 ? 1000 + (i % 97) : i % 89);
  assert.ok(values.length > JENKS_SAMPLE);
  const breaks = jenksBreaks(values, 2);
  assert.equal(breaks[0], 0);
  assert.equal(breaks[2], 1096);
  assert.equal(breaks[1], 88); // the largest value of the low group
});

test("a value goes to the first class whose upper limit it does not exceed", () => {
  const breaks = [0, 10, 20, 30];
  assert.equal(classIndex(0, breaks), 0);
  assert.equal(classIndex(10, breaks), 0);
  assert.equal(classIndex(10.5, breaks), 1);
  assert.equal(classIndex(30, breaks), 2);
  assert.equal(classIndex(99, breaks), 2); // beyond the data (edited since): last class
  assert.equal(classIndex(-5, breaks), 0);
});

test("methods by name; manual breaks; fewer distinct values than classes", () => {
  assert.deepEqual(classBreaks(CALEMP, "jenks", 5), jenksBreaks(CALEMP, 5));
  assert.deepEqual(classBreaks(CALEMP, "manual", 3, [10, 100]), [0.13, 10, 100, 4111.45]);
  assert.deepEqual(classBreaks([5, 5, 5], "quantile", 4), [5, 5]);
  assert.deepEqual(classBreaks([1, 1, 1, 9], "equal", 2), [1, 5, 9]);
  assert.deepEqual(classBreaks([], "quantile", 5), []);
});

test("what counts as a number: No data for text, empty, null, booleans", () => {
  assert.equal(toNumber(3), 3);
  assert.equal(toNumber(" 12.5 "), 12.5); // CSV imports give text
  assert.equal(toNumber("-1e3"), -1000);
  for (const v of [null, undefined, "", "  ", "n/a", "12 km", true, NaN, Infinity, {}, [1]]) {
    assert.equal(toNumber(v), null, String(v));
  }
});
