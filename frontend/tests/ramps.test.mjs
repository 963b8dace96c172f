// Colour ramps: every ramp gives k distinct hex colours for 2..9 classes, in order.
import assert from "node:assert/strict";
import test from "node:test";
import { RAMPS, rampColors, toHex } from "../ramps.js";

test("every ramp gives k hex colours for 2 to 9 classes", () => {
  for (const name of Object.keys(RAMPS)) {
    for (let k = 2; k <= 9; k++) {
      const colors = rampColors(name, k);
      assert.equal(colors.length, k, `${name} ${k}`);
      for (const c of colors) assert.match(c, /^#[0-9a-f]{6}$/, `${name} ${k}: ${c}`);
      if (RAMPS[name].kind !== "categorical" || k <= 8) {
        assert.equal(new Set(colors).size, k, `${name} ${k}: ${colors}`);
      }
    }
  }
});

test("ColorBrewer classes are ColorBrewer's own colours; viridis runs dark to light", () => {
  assert.deepEqual(rampColors("blues", 3), ["#deebf7", "#9ecae1", "#3182bd"]);
  assert.deepEqual(rampColors("blues", 3, true), ["#3182bd", "#9ecae1", "#deebf7"]);
  const [first, , last] = rampColors("viridis", 3);
  assert.equal(first, "#440154");
  assert.equal(last, "#fde725");
  assert.equal(toHex("rgb(68, 1, 84)"), "#440154");
});
