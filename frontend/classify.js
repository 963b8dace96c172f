// Classification of a numeric property into classes, for graduated (choropleth) styles.
// The one implementation: the map draws with it, the legend is made from it, and
// frontend/tests/classify.test.mjs checks it against published breaks (mapclassify).
// Pure functions, no DOM: node runs the tests on this very file.
//
// Breaks are the class limits [min, upper1, upper2, ..., max] (k + 1 numbers for k classes);
// a value belongs to the first class whose upper limit it does not exceed (the first class
// also holds the minimum), as in mapclassify and QGIS.

/** The number a property value stands for, or null ("No data"): numbers, and text that is
 * a number ("12.5", as CSV imports give them); not empty text, booleans, other text, NaN. */
export function toNumber(value) {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value !== "string" || value.trim() === "") return null;
  const n = Number(value.trim());
  return Number.isFinite(n) ? n : null;
}

const ascending = (a, b) => a - b;

/** The p-quantile (0..1) of sorted values, interpolated linearly between the two nearest
 * ranks (R's type 7, numpy's default, scipy's scoreatpercentile). */
export function quantile(sorted, p) {
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** Classes holding about the same number of values each. */
export function quantileBreaks(values, k) {
  const sorted = [...values].sort(ascending);
  const breaks = [sorted[0]];
  for (let i = 1; i <= k; i++) breaks.push(quantile(sorted, i / k));
  return breaks;
}

/** Classes of the same width from the minimum to the maximum. */
export function equalIntervalBreaks(values, k) {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const width = (max - min) / k;
  const breaks = [min];
  for (let i = 1; i < k; i++) breaks.push(min + width * i);
  breaks.push(max);
  return breaks;
}

/** Above this many values, natural breaks are computed on this many evenly spaced order
 * statistics of the sorted values (the minimum and maximum always included): the exact
 * optimisation costs k·n² steps, too slow for a 40,000-point layer in a browser. */
export const JENKS_SAMPLE = 3000;

/** Natural breaks (Jenks): the classes that minimise the sum of squared deviations from
 * their means (Fisher's exact optimisation, by dynamic programming on the sorted values). */
export function jenksBreaks(values, k) {
  let sorted = [...values].sort(ascending);
  if (sorted.length > JENKS_SAMPLE) {
    const step = (sorted.length - 1) / (JENKS_SAMPLE - 1);
    sorted = Array.from({ length: JENKS_SAMPLE }, (_, i) => sorted[Math.round(i * step)]);
  }
  const n = sorted.length;
  k = Math.min(k, n);
  // prefix sums: the squared deviation of sorted[i..j] is O(1)
  const sum = new Float64Array(n + 1);
  const sumSq = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) {
    sum[i + 1] = sum[i] + sorted[i];
    sumSq[i + 1] = sumSq[i] + sorted[i] * sorted[i];
  }
  const ssd = (i, j) => { // values i..j inclusive
    const s = sum[j + 1] - sum[i];
    return sumSq[j + 1] - sumSq[i] - (s * s) / (j - i + 1);
  };
  // cost[c][j]: best cost of c+1 classes over sorted[0..j]; start[c][j]: where the last begins
  let prev = new Float64Array(n);
  for (let j = 0; j < n; j++) prev[j] = ssd(0, j);
  const start = [new Int32Array(n)];
  for (let c = 1; c < k; c++) {
    const cost = new Float64Array(n).fill(Infinity);
    const from = new Int32Array(n);
    for (let j = c; j < n; j++) {
      for (let i = c; i <= j; i++) {
        const total = prev[i - 1] + ssd(i, j);
        if (total < cost[j]) {
          cost[j] = total;
          from[j] = i;
        }
      }
    }
    start.push(from);
    prev = cost;
  }
  const uppers = [];
  let end = n - 1;
  for (let c = k - 1; c >= 0; c--) {
    uppers.unshift(sorted[end]);
    end = start[c][end] - 1;
  }
  return [sorted[0], ...uppers];
}

/** Breaks of a classification method: "quantile", "equal", "jenks", or "manual" with the
 * given inner limits. Fewer distinct values than classes give fewer (distinct) classes. */
export function classBreaks(values, method, k, manual = []) {
  if (!values.length) return [];
  let breaks;
  if (method === "manual") {
    const sorted = [...values].sort(ascending);
    breaks = [sorted[0], ...manual, sorted[sorted.length - 1]];
  } else if (method === "equal") breaks = equalIntervalBreaks(values, k);
  else if (method === "jenks") breaks = jenksBreaks(values, k);
  else breaks = quantileBreaks(values, k);
  return breaks.filter((b, i) => i === 0 || b > breaks[i - 1] || (i === 1 && b === breaks[0]));
}

/** The class (0-based) of a number for these breaks: the first whose upper limit it does
 * not exceed; values beyond the limits go to the first or the last class. */
export function classIndex(value, breaks) {
  const last = breaks.length - 2;
  for (let i = 0; i < last; i++) if (value <= breaks[i + 1]) return i;
  return Math.max(last, 0);
}

/** How many values fall in each class. */
export function classCounts(values, breaks) {
  const counts = new Array(Math.max(breaks.length - 1, 0)).fill(0);
  for (const v of values) counts[classIndex(v, breaks)] += 1;
  return counts;
}
