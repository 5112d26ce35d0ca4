/**
 * Moments of one metric: the aggregate state every numeric partial carries, defined once and
 * reused by aggregate, window and top-N merges. Variance state is (count, mean, M2), merged with
 * Chan et al.'s pairwise formula, which stays accurate where the naive sum of squares cancels.
 */

export interface Moments {
  /** Non-null values. */
  count: number;
  sum: number;
  min: number;
  max: number;
  mean: number;
  /** Sum of squared deviations from the mean. */
  m2: number;
}

/**
 * A float64 sum of finite values can overflow (two values near 1.8e308 add up to Infinity), and
 * JSON has no Infinity: `JSON.stringify` would silently write null. Such results are reported as
 * the strings "Infinity" / "-Infinity" ("NaN" for ∞ − ∞) instead, as docs/API.md says.
 */
export type NonFinite = 'Infinity' | '-Infinity' | 'NaN';

/** `x`, or its name when it is not finite (see NonFinite). */
export function reportable(x: number): number | NonFinite {
  return Number.isFinite(x) ? x : (String(x) as NonFinite);
}

export interface FinishedMoments {
  count: number;
  sum: number | NonFinite | null;
  mean: number | NonFinite | null;
  min: number | null;
  max: number | null;
  /** Population standard deviation (ddof = 0). */
  stddev: number | NonFinite | null;
}

export function emptyMoments(): Moments {
  return { count: 0, sum: 0, min: Infinity, max: -Infinity, mean: 0, m2: 0 };
}

/** Folds `b` into `a` (mutates and returns `a`). */
export function mergeMoments(a: Moments, b: Moments): Moments {
  if (b.count === 0) return a;
  if (a.count === 0) {
    Object.assign(a, b);
    return a;
  }
  const n = a.count + b.count;
  const delta = b.mean - a.mean;
  a.mean += (delta * b.count) / n;
  a.m2 += b.m2 + (delta * delta * a.count * b.count) / n;
  a.count = n;
  a.sum += b.sum;
  if (b.min < a.min) a.min = b.min;
  if (b.max > a.max) a.max = b.max;
  return a;
}

/** Moments of raw values (tests and brute force use this, not the merge path). */
export function momentsOf(values: Iterable<number | null>): Moments {
  const m = emptyMoments();
  for (const v of values) {
    if (v === null) continue;
    m.count++;
    m.sum += v;
    const d = v - m.mean;
    m.mean += d / m.count;
    m.m2 += d * (v - m.mean);
    if (v < m.min) m.min = v;
    if (v > m.max) m.max = v;
  }
  return m;
}

export function finishMoments(m: Moments): FinishedMoments {
  if (m.count === 0) return { count: 0, sum: null, mean: null, min: null, max: null, stddev: null };
  return { count: m.count, sum: reportable(m.sum), mean: reportable(m.mean), min: m.min, max: m.max, stddev: reportable(Math.sqrt(Math.max(0, m.m2) / m.count)) };
}
