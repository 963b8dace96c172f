// Data-driven styles: a layer's style.rule (maps/styles.py documents it) applied to its
// features. compileRule() looks at the layer's data once (classes, value range) and gives
// the class of each feature and the legend. Values that are missing, empty or — for the
// numeric rules — not numbers are "No data": their own visible class, in the legend too.
import { classBreaks, classIndex, toNumber } from "./classify.js";
import { rampColors } from "./ramps.js";

const NO_DATA_COLOR = "#cccccc";
const DEFAULT_OTHER = "#9e9e9e";

/** Short, readable numbers for class labels: 1,234,568 · 12.3 · 0.0042. */
export function formatNumber(n) {
  const abs = Math.abs(n);
  const digits = abs >= 100 || Number.isInteger(n) ? 0 : abs >= 1 ? 2 : 4;
  return n.toLocaleString(undefined, { maximumFractionDigits: digits });
}

const valueOf = (feature, property) => (feature && feature.properties ? feature.properties[property] : undefined);
const isMissing = (v) => v === undefined || v === null || (typeof v === "string" && v.trim() === "");

function noDataClass(rule) {
  return { key: "nodata", color: rule.noDataColor || NO_DATA_COLOR, label: rule.noDataLabel || "No data", noData: true };
}

function categorized(rule) {
  const byValue = new Map((rule.categories || []).map((c, i) => [c.value, {
    key: `c${i}`, color: c.color, symbol: c.symbol, label: c.label || c.value }]));
  const other = { key: "other", color: rule.otherColor || DEFAULT_OTHER, label: rule.otherLabel || "Other" };
  const noData = noDataClass(rule);
  return {
    classOf(feature) {
      const v = valueOf(feature, rule.property);
      if (isMissing(v)) return noData;
      return byValue.get(typeof v === "object" ? JSON.stringify(v) : String(v)) || other;
    },
    classes: [...byValue.values(), other, noData],
  };
}

function graduated(rule, features) {
  const values = [];
  for (const f of features) {
    const n = toNumber(valueOf(f, rule.property));
    if (n !== null) values.push(n);
  }
  const breaks = classBreaks(values, rule.method || "quantile", rule.classes || 5, rule.breaks || []);
  const count = Math.max(breaks.length - 1, 0);
  const colors = count ? rampColors(rule.ramp || "viridis", count, Boolean(rule.reverse)) : [];
  const classes = colors.map((color, i) => ({
    key: `g${i}`, color,
    label: `${formatNumber(breaks[i])} – ${formatNumber(breaks[i + 1])}`,
    min: breaks[i], max: breaks[i + 1],
  }));
  const noData = noDataClass(rule);
  return {
    classOf(feature) {
      const n = toNumber(valueOf(feature, rule.property));
      return n === null || !classes.length ? noData : classes[classIndex(n, breaks)];
    },
    classes: [...classes, noData],
    breaks,
  };
}

function proportional(rule, features) {
  let max = 0;
  for (const f of features) {
    const n = toNumber(valueOf(f, rule.property));
    if (n !== null && Math.abs(n) > max) max = Math.abs(n);
  }
  const minR = rule.minRadius || 4;
  const maxR = rule.maxRadius || 30;
  // circle area proportional to the value: r = maxR * sqrt(|v| / max), at least minR
  const radius = (n) => (max ? Math.max(minR, maxR * Math.sqrt(Math.abs(n) / max)) : minR);
  const color = rule.color || null;
  const noData = { ...noDataClass(rule), radius: minR };
  const cache = new Map();
  const sizes = max ? [max, max / 4, max / 16].map((v) => ({ key: `p${v}`, color, radius: radius(v), label: formatNumber(v) })) : [];
  return {
    classOf(feature) {
      const n = toNumber(valueOf(feature, rule.property));
      if (n === null) return noData;
      const r = Math.round(radius(n) * 10) / 10;
      if (!cache.has(r)) cache.set(r, { key: `r${r}`, color, radius: r });
      return cache.get(r);
    },
    classes: [...sizes, noData],
  };
}

/** The compiled rule of a layer ({classOf(feature), legend(features)}), or null. */
export function compileRule(rule, features) {
  if (!rule || !rule.property) return null;
  const compiled = rule.type === "categorized" ? categorized(rule)
    : rule.type === "graduated" ? graduated(rule, features)
      : rule.type === "proportional" ? proportional(rule, features) : null;
  if (!compiled) return null;
  compiled.rule = rule;
  /** Legend rows: every class with its number of features; empty "Other"/"No data" rows
   * are left out (but a class of the ramp stays, so the scale reads whole). */
  compiled.legend = (list) => {
    const counts = new Map();
    for (const f of list) {
      const c = compiled.classOf(f);
      counts.set(c.key, (counts.get(c.key) || 0) + 1);
    }
    return compiled.classes.map((c) => ({ ...c, count: counts.get(c.key) || 0 }))
      .filter((c) => c.count || !(c.noData || c.key === "other"));
  };
  return compiled;
}

/** Suggested categories for a property: its most common values (at most `max`), coloured
 * from a categorical ramp; the rest fall in "Other". */
export function suggestCategories(features, property, ramp = "okabeito", max = 8) {
  const counts = new Map();
  for (const f of features) {
    const v = valueOf(f, property);
    if (isMissing(v)) continue;
    const key = typeof v === "object" ? JSON.stringify(v) : String(v);
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  const top = [...counts].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0]))).slice(0, max);
  const colors = rampColors(ramp, top.length || 1);
  return top.map(([value], i) => ({ value: value.slice(0, 200), color: colors[i] }));
}

/** Properties of these features whose values are mostly numbers (for graduated styles). */
export function numericProperties(features, keys) {
  return keys.filter((key) => {
    let numbers = 0;
    let seen = 0;
    for (const f of features) {
      const v = valueOf(f, key);
      if (isMissing(v)) continue;
      seen += 1;
      if (toNumber(v) !== null) numbers += 1;
      if (seen >= 200) break;
    }
    return seen > 0 && numbers / seen >= 0.8;
  });
}
