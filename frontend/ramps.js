// Colour ramps for data-driven styles, from d3-scale-chromatic (ColorBrewer, viridis & co.)
// plus the Okabe-Ito palette. The names are those the API accepts (maps/styles.py RAMPS;
// tests/unit/test_frontend_js.py checks both lists agree). Defaults are colour-blind safe:
// viridis for numbers, Okabe-Ito for categories.
import {
  interpolateCividis, interpolateInferno, interpolateMagma, interpolatePlasma, interpolateViridis,
  schemeBlues, schemeBrBG, schemeBuPu, schemeDark2, schemeGnBu, schemeGreens, schemeGreys,
  schemeOrRd, schemeOranges, schemePRGn, schemePaired, schemePiYG, schemePuBuGn, schemePuOr,
  schemePurples, schemeRdBu, schemeRdPu, schemeRdYlBu, schemeReds, schemeSet2, schemeTableau10,
  schemeYlGn, schemeYlGnBu, schemeYlOrBr, schemeYlOrRd,
} from "d3-scale-chromatic";

// Okabe & Ito (2008), "Color Universal Design": eight colours told apart with any colour vision
const OKABE_ITO = ["#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7", "#000000"];

const sampled = (interpolate, from = 0, to = 1) => (k) =>
  Array.from({ length: k }, (_, i) => interpolate(k === 1 ? to : from + ((to - from) * i) / (k - 1)));
// ColorBrewer schemes come in 3 to 9 (11 for diverging) classes; 2 classes: the ends of 3
const brewer = (scheme) => (k) => (k < 3 ? [scheme[3][0], scheme[3][2]].slice(0, k) : scheme[Math.min(k, scheme.length - 1)].slice());
const cycled = (colors) => (k) => Array.from({ length: k }, (_, i) => colors[i % colors.length]);

/** name -> {label, kind ("sequential" | "diverging" | "categorical"), colors(k), safe}
 * (safe: readable with the common colour-vision deficiencies, per ColorBrewer/the authors). */
export const RAMPS = {
  viridis: { label: "Viridis", kind: "sequential", colors: sampled(interpolateViridis), safe: true },
  cividis: { label: "Cividis", kind: "sequential", colors: sampled(interpolateCividis), safe: true },
  magma: { label: "Magma", kind: "sequential", colors: sampled(interpolateMagma, 0.1, 0.95), safe: true },
  inferno: { label: "Inferno", kind: "sequential", colors: sampled(interpolateInferno, 0.1, 0.95), safe: true },
  plasma: { label: "Plasma", kind: "sequential", colors: sampled(interpolatePlasma, 0, 0.95), safe: true },
  blues: { label: "Blues", kind: "sequential", colors: brewer(schemeBlues), safe: true },
  greens: { label: "Greens", kind: "sequential", colors: brewer(schemeGreens), safe: true },
  greys: { label: "Greys", kind: "sequential", colors: brewer(schemeGreys), safe: true },
  oranges: { label: "Oranges", kind: "sequential", colors: brewer(schemeOranges), safe: true },
  purples: { label: "Purples", kind: "sequential", colors: brewer(schemePurples), safe: true },
  reds: { label: "Reds", kind: "sequential", colors: brewer(schemeReds), safe: true },
  ylgnbu: { label: "Yellow-Green-Blue", kind: "sequential", colors: brewer(schemeYlGnBu), safe: true },
  ylorrd: { label: "Yellow-Orange-Red", kind: "sequential", colors: brewer(schemeYlOrRd), safe: true },
  ylorbr: { label: "Yellow-Orange-Brown", kind: "sequential", colors: brewer(schemeYlOrBr), safe: true },
  bupu: { label: "Blue-Purple", kind: "sequential", colors: brewer(schemeBuPu), safe: true },
  gnbu: { label: "Green-Blue", kind: "sequential", colors: brewer(schemeGnBu), safe: true },
  orrd: { label: "Orange-Red", kind: "sequential", colors: brewer(schemeOrRd), safe: true },
  pubugn: { label: "Purple-Blue-Green", kind: "sequential", colors: brewer(schemePuBuGn), safe: true },
  rdpu: { label: "Red-Purple", kind: "sequential", colors: brewer(schemeRdPu), safe: true },
  ylgn: { label: "Yellow-Green", kind: "sequential", colors: brewer(schemeYlGn), safe: true },
  rdylbu: { label: "Red-Yellow-Blue", kind: "diverging", colors: brewer(schemeRdYlBu), safe: true },
  rdbu: { label: "Red-Blue", kind: "diverging", colors: brewer(schemeRdBu), safe: true },
  puor: { label: "Purple-Orange", kind: "diverging", colors: brewer(schemePuOr), safe: true },
  brbg: { label: "Brown-Blue-Green", kind: "diverging", colors: brewer(schemeBrBG), safe: true },
  prgn: { label: "Purple-Green", kind: "diverging", colors: brewer(schemePRGn), safe: true },
  piyg: { label: "Pink-Yellow-Green", kind: "diverging", colors: brewer(schemePiYG), safe: true },
  okabeito: { label: "Okabe-Ito", kind: "categorical", colors: cycled(OKABE_ITO), safe: true },
  tableau10: { label: "Tableau 10", kind: "categorical", colors: cycled(schemeTableau10), safe: false },
  set2: { label: "Set 2", kind: "categorical", colors: cycled(schemeSet2), safe: true },
  dark2: { label: "Dark 2", kind: "categorical", colors: cycled(schemeDark2), safe: true },
  paired: { label: "Paired", kind: "categorical", colors: cycled(schemePaired), safe: false },
};

export const DEFAULT_NUMERIC_RAMP = "viridis";
export const DEFAULT_CATEGORY_RAMP = "okabeito";

/** k colours of a ramp ("#rrggbb"), light to dark (or reversed). */
export function rampColors(name, k, reverse = false) {
  const ramp = RAMPS[name] || RAMPS[DEFAULT_NUMERIC_RAMP];
  const colors = ramp.colors(k).map(toHex);
  return reverse ? colors.reverse() : colors;
}

/** "rgb(68, 1, 84)" or "#440154" -> "#440154" (colour inputs and KML want hex). */
export function toHex(color) {
  if (color.startsWith("#")) return color.toLowerCase();
  const m = /rgb\((\d+),\s*(\d+),\s*(\d+)\)/.exec(color);
  return m ? "#" + m.slice(1, 4).map((c) => Number(c).toString(16).padStart(2, "0")).join("") : color;
}
