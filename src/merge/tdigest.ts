/**
 * Merging t-digest (Dunning & Ertl, "Computing extremely accurate quantiles using t-digests",
 * the MergingDigest variant) with the k1 scale function k(q) = δ/(2π)·asin(2q − 1).
 *
 * A digest is a list of centroids (mean, weight) sorted by mean, plus the exact count, min and
 * max. Every operation here is a pure function and is mirrored step for step by
 * `python/engine_polars/tdigest.py`; `test/vectors/tdigest.json` holds the expected results both
 * test suites check. Keep the two files in lockstep: same sort order, same arithmetic in the same
 * order, so that the only possible difference is an ulp in `asin`/`sin` from libm. See
 * docs/TDIGEST.md for the measured error.
 */

/** δ: the digest keeps about δ/2 centroids (never more than δ + 1 ≤ 2δ). */
export const DEFAULT_COMPRESSION = 200;

export interface Digest {
  compression: number;
  /** Centroid means, ascending. */
  means: number[];
  /** Centroid weights (value counts), aligned with `means`; each ≥ 1. */
  weights: number[];
  /** Sum of `weights`: the number of values digested. */
  count: number;
  /** Smallest value digested; NaN for an empty digest. */
  min: number;
  /** Largest value digested; NaN for an empty digest. */
  max: number;
}

/** The JSON form: as {@link Digest}, but an empty digest has `min`/`max` null (JSON has no NaN). */
export interface DigestJSON {
  compression: number;
  means: number[];
  weights: number[];
  count: number;
  min: number | null;
  max: number | null;
}

function checkCompression(compression: number): number {
  if (!Number.isFinite(compression) || compression < 1) {
    throw new RangeError(`compression must be a finite number >= 1, got ${compression}`);
  }
  return compression;
}

/** k1 scale: k(q) = δ/(2π)·asin(2q − 1), written as `norm * asin(2q − 1)` with norm = δ/(2π). */
function kScale(q: number, norm: number): number {
  return norm * Math.asin(2 * q - 1);
}

/** An empty digest (count 0, no centroids, min/max NaN). */
export function makeDigest(compression: number = DEFAULT_COMPRESSION): Digest {
  return { compression: checkCompression(compression), means: [], weights: [], count: 0, min: NaN, max: NaN };
}

/**
 * Where the centroids end when `n` sorted unit-weight values are merged with the k1 greedy pass:
 * centroid j covers sorted positions [ends[j−1], ends[j]). This is exactly what
 * {@link mergeDigests} does to n singletons (a centroid starting at `left` grows to the largest
 * `right` with k(right/n) − k(left/n) ≤ 1, and always takes at least one value), but it costs
 * O(centroids) instead of O(n): the end is first guessed from the inverse of k and then corrected
 * with the same `asin` test the greedy pass uses, so the boundaries are identical to it.
 */
export function unitBucketEnds(n: number, compression: number = DEFAULT_COMPRESSION): number[] {
  const norm = checkCompression(compression) / (2 * Math.PI);
  const ends: number[] = [];
  let left = 0;
  while (left < n) {
    const kLeft = kScale(left / n, norm);
    const fits = (right: number): boolean => kScale(right / n, norm) - kLeft <= 1;
    const angle = (kLeft + 1) / norm;
    let right = angle >= Math.PI / 2 ? n : Math.floor((n * (Math.sin(angle) + 1)) / 2);
    right = Math.min(n, Math.max(left + 1, right));
    while (right < n && fits(right + 1)) right++;
    while (right > left + 1 && !fits(right)) right--;
    ends.push(right);
    left = right;
  }
  return ends;
}

/**
 * Digest of raw values. Null, undefined, NaN and ±Infinity are skipped. Definition (shared with
 * the polars side): sort the values, cut them at {@link unitBucketEnds}, and make one centroid per
 * bucket whose mean is the bucket's sum divided by its size. This equals {@link mergeDigests} over
 * one singleton digest per value.
 *
 * @example
 * const d = digestFromValues([3, 1, 2]);   // means [1, 2, 3], weights [1, 1, 1]
 * quantile(d, 0.5);                         // 2
 */
export function digestFromValues(
  values: ArrayLike<number | null | undefined>,
  compression: number = DEFAULT_COMPRESSION,
): Digest {
  const digest = makeDigest(compression);
  const sorted = new Float64Array(values.length);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === 'number' && Number.isFinite(v)) sorted[n++] = v;
  }
  if (n === 0) return digest;
  const xs = sorted.subarray(0, n).sort();
  let left = 0;
  for (const right of unitBucketEnds(n, compression)) {
    let sum = 0;
    for (let i = left; i < right; i++) sum += xs[i]!;
    digest.means.push(sum / (right - left));
    digest.weights.push(right - left);
    left = right;
  }
  digest.count = n;
  digest.min = xs[0]!;
  digest.max = xs[n - 1]!;
  return digest;
}

/**
 * Merges digests into one with Dunning's merging algorithm: all centroids are sorted by mean
 * (ties keep input order: digest order, then centroid order), then one left-to-right pass merges
 * the next centroid into the current one while k(q_right) − k(q_left) ≤ 1, where q_left is the
 * weight before the current centroid and q_right the weight up to the end of the merged centroid,
 * both over the total. A merged centroid's mean is its weighted sum over its weight. Count, min
 * and max are exact. `compression` defaults to the first digest's, else 200.
 */
export function mergeDigests(digests: readonly Digest[], compression?: number): Digest {
  const out = makeDigest(compression ?? digests[0]?.compression ?? DEFAULT_COMPRESSION);
  const means: number[] = [];
  const weights: number[] = [];
  let total = 0;
  for (const d of digests) {
    if (d.means.length !== d.weights.length) {
      throw new RangeError(`expected as many weights as means, got ${d.weights.length} and ${d.means.length}`);
    }
    if (d.count === 0) continue;
    for (let i = 0; i < d.means.length; i++) {
      means.push(d.means[i]!);
      weights.push(d.weights[i]!);
      total += d.weights[i]!;
    }
    out.min = out.count === 0 ? d.min : Math.min(out.min, d.min);
    out.max = out.count === 0 ? d.max : Math.max(out.max, d.max);
    out.count += d.count;
  }
  if (means.length === 0) return out;

  const order = Array.from(means.keys()).sort((a, b) => means[a]! - means[b]! || a - b);
  const norm = out.compression / (2 * Math.PI);
  let weightBefore = 0;
  let kLeft = kScale(0, norm);
  let curWeight = weights[order[0]!]!;
  let curSum = means[order[0]!]! * curWeight;
  for (let j = 1; j < order.length; j++) {
    const i = order[j]!;
    const proposed = curWeight + weights[i]!;
    if (kScale((weightBefore + proposed) / total, norm) - kLeft <= 1) {
      curWeight = proposed;
      curSum += means[i]! * weights[i]!;
    } else {
      out.means.push(curSum / curWeight);
      out.weights.push(curWeight);
      weightBefore += curWeight;
      kLeft = kScale(weightBefore / total, norm);
      curWeight = weights[i]!;
      curSum = means[i]! * curWeight;
    }
  }
  out.means.push(curSum / curWeight);
  out.weights.push(curWeight);
  return out;
}

/** (x1·w1 + x2·w2)/(w1 + w2), clamped to [min(x1, x2), max(x1, x2)] against rounding. */
function weightedAverage(x1: number, w1: number, x2: number, w2: number): number {
  if (x1 > x2) return weightedAverage(x2, w2, x1, w1);
  const x = (x1 * w1 + x2 * w2) / (w1 + w2);
  return Math.max(x1, Math.min(x, x2));
}

/**
 * The q-quantile (0 ≤ q ≤ 1) estimated from the digest, as MergingDigest.quantile does it: the
 * target rank q·count is interpolated between centroid centres; a unit-weight centroid is an exact
 * value and is returned as is near its rank; past the first and last centres the estimate is
 * interpolated towards the exact min and max (one value is known to sit at each). NaN when empty.
 */
export function quantile(digest: Digest, q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be in [0, 1], got ${q}`);
  const { means, weights, min, max } = digest;
  const n = means.length;
  if (n === 0 || digest.count === 0) return NaN;
  const total = digest.count;
  const index = q * total;
  if (index < 1) return min;
  const first = weights[0]!;
  if (first > 1 && index < first / 2) {
    return min + ((index - 1) / (first / 2 - 1)) * (means[0]! - min);
  }
  if (index > total - 1) return max;
  const last = weights[n - 1]!;
  if (last > 1 && total - index <= last / 2) {
    return max - ((total - index - 1) / (last / 2 - 1)) * (max - means[n - 1]!);
  }
  let weightSoFar = first / 2;
  for (let i = 0; i < n - 1; i++) {
    const dw = (weights[i]! + weights[i + 1]!) / 2;
    if (weightSoFar + dw > index) {
      let leftUnit = 0;
      if (weights[i] === 1) {
        if (index - weightSoFar < 0.5) return means[i]!;
        leftUnit = 0.5;
      }
      let rightUnit = 0;
      if (weights[i + 1] === 1) {
        if (weightSoFar + dw - index <= 0.5) return means[i + 1]!;
        rightUnit = 0.5;
      }
      const z1 = index - weightSoFar - leftUnit;
      const z2 = weightSoFar + dw - index - rightUnit;
      return weightedAverage(means[i]!, z2, means[i + 1]!, z1);
    }
    weightSoFar += dw;
  }
  // Only reachable if the weights do not add up to `count`: interpolate from the last centre to max.
  const z1 = Math.max(0, index - weightSoFar);
  const z2 = Math.max(0, total - index);
  return z1 + z2 === 0 ? max : weightedAverage(means[n - 1]!, z2, max, z1);
}

/** The JSON form of a digest (NaN min/max of an empty digest become null). */
export function digestToJSON(d: Digest): DigestJSON {
  return {
    compression: d.compression,
    means: [...d.means],
    weights: [...d.weights],
    count: d.count,
    min: d.count === 0 ? null : d.min,
    max: d.count === 0 ? null : d.max,
  };
}

/** Reads and checks a digest's JSON form; throws a RangeError naming the field that is wrong. */
export function digestFromJSON(json: DigestJSON): Digest {
  const { means, weights } = json;
  checkCompression(json.compression);
  if (!Array.isArray(means) || !Array.isArray(weights) || means.length !== weights.length) {
    throw new RangeError(`expected \`means\` and \`weights\` arrays of equal length, got ${String(means?.length)} and ${String(weights?.length)}`);
  }
  let total = 0;
  for (let i = 0; i < means.length; i++) {
    if (!Number.isFinite(means[i])) throw new RangeError(`expected a finite number at means[${i}], got ${means[i]}`);
    if (i > 0 && means[i]! < means[i - 1]!) throw new RangeError(`expected ascending means, got ${means[i]} after ${means[i - 1]}`);
    const w = weights[i]!;
    if (!Number.isInteger(w) || w < 1) throw new RangeError(`expected a positive integer at weights[${i}], got ${w}`);
    total += w;
  }
  if (json.count !== total) throw new RangeError(`expected count ${total} (sum of weights), got ${json.count}`);
  if (total === 0) return makeDigest(json.compression);
  if (!Number.isFinite(json.min) || !Number.isFinite(json.max) || !(json.min! <= json.max!)) {
    throw new RangeError(`expected finite min <= max, got min ${json.min} and max ${json.max}`);
  }
  return { compression: json.compression, means: [...means], weights: [...weights], count: total, min: json.min!, max: json.max! };
}
