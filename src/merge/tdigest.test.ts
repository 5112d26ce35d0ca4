import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { rng } from '../../test/helpers/random-events.js';
import {
  digestFromJSON,
  digestFromValues,
  digestToJSON,
  makeDigest,
  mergeDigests,
  quantile,
  unitBucketEnds,
  type Digest,
  type DigestJSON,
} from './tdigest.js';

// ---------------------------------------------------------------------------------------------
// Shared vectors (test/vectors/tdigest.json, written by python/tests/gen_tdigest_vectors.py)
// ---------------------------------------------------------------------------------------------

interface VectorPart {
  values?: Array<number | null>;
  lcg?: { seed: number; n: number; transform: 'int1000' | 'square' | 'centered' };
}
interface VectorCase {
  name: string;
  compression: number;
  parts: VectorPart[];
  digests: DigestJSON[];
  merged: DigestJSON;
  mergedQuantiles: number[] | null;
}
interface VectorFile {
  quantiles: number[];
  rankErrorBound: { compression: number; q: number[]; continuous: number[]; atomsOrGapsCentroidWidths: number };
  cases: VectorCase[];
}

const vectors = JSON.parse(
  readFileSync(new URL('../../test/vectors/tdigest.json', import.meta.url), 'utf8'),
) as VectorFile;

/** MINSTD, stepped before each value; the transforms use only exact-in-both-languages arithmetic. */
function lcgValues(seed: number, n: number, transform: string): number[] {
  const out: number[] = [];
  let state = seed;
  for (let i = 0; i < n; i++) {
    state = (state * 48271) % 2147483647;
    const u = state / 2147483647;
    if (transform === 'int1000') out.push(state % 1000);
    else if (transform === 'square') out.push(1000 * u * u);
    else if (transform === 'centered') out.push((u - 0.5) * 100);
    else throw new Error(`unknown lcg transform ${transform}`);
  }
  return out;
}

function partValues(p: VectorPart): Array<number | null> {
  return p.values ?? lcgValues(p.lcg!.seed, p.lcg!.n, p.lcg!.transform);
}

/** Floats agree to 1e-9 relative (asin/sin in V8 and libm may differ by an ulp). */
function expectClose(actual: number | null, expected: number | null, what: string): void {
  if (expected === null || actual === null) {
    expect(actual, what).toBe(expected);
    return;
  }
  const tol = 1e-9 * Math.max(Math.abs(actual), Math.abs(expected));
  if (!(Math.abs(actual - expected) <= tol)) expect.fail(`${what}: expected ${expected}, got ${actual}`);
}

function expectDigest(actual: Digest, expected: DigestJSON, what: string): void {
  const json = digestToJSON(actual);
  expect(json.compression, `${what} compression`).toBe(expected.compression);
  expect(json.count, `${what} count`).toBe(expected.count);
  expect(json.weights, `${what} weights`).toEqual(expected.weights);
  expectClose(json.min, expected.min, `${what} min`);
  expectClose(json.max, expected.max, `${what} max`);
  expect(json.means.length, `${what} centroids`).toBe(expected.means.length);
  json.means.forEach((m, i) => expectClose(m, expected.means[i]!, `${what} means[${i}]`));
}

describe('t-digest shared vectors', () => {
  for (const c of vectors.cases) {
    it(`builds, merges and reads quantiles like the Python side: ${c.name}`, () => {
      const digests = c.parts.map((p) => digestFromValues(partValues(p), c.compression));
      digests.forEach((d, i) => expectDigest(d, c.digests[i]!, `part ${i}`));
      // Merge from the vector's own digests, so a construction bug cannot hide a merge bug.
      const merged = mergeDigests(c.digests.map(digestFromJSON), c.compression);
      expectDigest(merged, c.merged, 'merged');
      if (c.mergedQuantiles === null) {
        expect(vectors.quantiles.every((q) => Number.isNaN(quantile(merged, q)))).toBe(true);
      } else {
        vectors.quantiles.forEach((q, i) => expectClose(quantile(merged, q), c.mergedQuantiles![i]!, `q=${q}`));
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Exact small cases and contracts
// ---------------------------------------------------------------------------------------------

const single = (v: number, compression = 200): Digest => ({
  compression,
  means: [v],
  weights: [1],
  count: 1,
  min: v,
  max: v,
});

describe('t-digest construction and quantiles', () => {
  it('keeps a handful of distinct values as exact singletons and returns them as quantiles', () => {
    const d = digestFromValues([5, 1, 4, 2, 3]);
    expect(d).toEqual({ compression: 200, means: [1, 2, 3, 4, 5], weights: [1, 1, 1, 1, 1], count: 5, min: 1, max: 5 });
    expect([0, 0.1, 0.3, 0.5, 0.7, 0.9, 1].map((q) => quantile(d, q))).toEqual([1, 1, 2, 3, 4, 5, 5]);
  });

  it('skips null, undefined, NaN and infinities', () => {
    const d = digestFromValues([2, null, NaN, undefined, Infinity, -Infinity, 1]);
    expect(d.count).toBe(2);
    expect([d.min, d.max]).toEqual([1, 2]);
  });

  it('answers NaN for an empty digest and writes its min/max as null in JSON', () => {
    const d = makeDigest();
    expect(Number.isNaN(quantile(d, 0.5))).toBe(true);
    expect(digestToJSON(d)).toEqual({ compression: 200, means: [], weights: [], count: 0, min: null, max: null });
    expect(digestFromJSON(digestToJSON(d)).count).toBe(0);
    expect(mergeDigests([d, makeDigest()]).count).toBe(0);
  });

  it('builds from values exactly what the greedy merge makes of one singleton per value', () => {
    for (const compression of [1, 3, 10, 57.5, 200, 1000]) {
      for (const n of [1, 2, 3, 7, 50, 199, 1000, 4321, 20_000]) {
        const values = Array.from({ length: n }, (_, i) => ((i * 7919) % n) - n / 3);
        const fromValues = digestFromValues(values, compression);
        const greedy = mergeDigests(values.map((v) => single(v, compression)), compression);
        expect(fromValues.weights, `δ=${compression} n=${n}`).toEqual(greedy.weights);
        fromValues.means.forEach((m, i) => expectClose(m, greedy.means[i]!, `δ=${compression} n=${n} means[${i}]`));
      }
    }
  });

  it('cuts a million unit weights into about δ/2 centroids', () => {
    const ends = unitBucketEnds(1_000_000, 200);
    expect(ends.length).toBeGreaterThanOrEqual(100);
    expect(ends.length).toBeLessThanOrEqual(101);
    expect(ends.at(-1)).toBe(1_000_000);
    // The first centroid ends where k(q) − k(0) = 1, i.e. q = sin²(π/δ): 246 of a million values.
    expect(ends[0]).toBe(Math.floor(1_000_000 * Math.sin(Math.PI / 200) ** 2));
  });

  it('round-trips through JSON and rejects malformed digests naming the field', () => {
    const d = digestFromValues(lcgValues(3, 5000, 'square'));
    expect(digestFromJSON(JSON.parse(JSON.stringify(digestToJSON(d))) as DigestJSON)).toEqual(d);
    const good = digestToJSON(d);
    expect(() => digestFromJSON({ ...good, count: good.count + 1 })).toThrow(/expected count 5000/);
    expect(() => digestFromJSON({ ...good, weights: good.weights.slice(1) })).toThrow(/equal length/);
    expect(() => digestFromJSON({ ...good, weights: [0.5, ...good.weights.slice(1)] })).toThrow(/weights\[0\]/);
    expect(() => digestFromJSON({ ...good, means: [...good.means].reverse() })).toThrow(/ascending means/);
    expect(() => digestFromJSON({ ...good, min: null })).toThrow(/min <= max/);
  });

  it('rejects a compression below 1 and a quantile outside [0, 1]', () => {
    expect(() => makeDigest(0)).toThrow(/compression must be a finite number >= 1, got 0/);
    expect(() => digestFromValues([1], NaN)).toThrow(/compression/);
    expect(() => quantile(digestFromValues([1]), 1.5)).toThrow(/quantile must be in \[0, 1\], got 1.5/);
    expect(() => quantile(digestFromValues([1]), NaN)).toThrow(/quantile/);
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests: shards digested separately, merged, compared with exact ranks of the whole
// ---------------------------------------------------------------------------------------------

// mulberry32 from the test helpers: seeded, so every run checks the same data.
const makeRandom = rng;

type Draw = (rnd: () => number) => number;
const normal: Draw = (rnd) => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());

interface Distribution {
  draw: Draw;
  /** Atoms (repeated values) or an empty gap: interpolation can land between two data values. */
  atomsOrGaps: boolean;
}
const DISTRIBUTIONS: Record<string, Distribution> = {
  uniform: { draw: (rnd) => rnd() * 100 - 50, atomsOrGaps: false },
  normal: { draw: normal, atomsOrGaps: false },
  exponential: { draw: (rnd) => -Math.log(1 - rnd()), atomsOrGaps: false },
  lognormal: { draw: (rnd) => Math.exp(2 * normal(rnd)), atomsOrGaps: false },
  'many duplicates': { draw: (rnd) => Math.floor(-Math.log(1 - rnd()) * 5), atomsOrGaps: true },
  bimodal: { draw: (rnd) => (rnd() < 0.9 ? normal(rnd) : 1000 + normal(rnd)), atomsOrGaps: true },
};

/**
 * The documented bound on |rank(estimate)/n − q| (docs/TDIGEST.md, kept in the vector file so the
 * Python suite asserts the same numbers): per q for continuous data; data with atoms or gaps can
 * have the estimate fall between two data values while q sits inside a block of equal values, so
 * there the bound is a number of centroid widths, a centroid spanning Δk = 1, i.e.
 * Δq = 2π·√(q(1 − q))/δ.
 */
const { rankErrorBound } = vectors;
const QS = rankErrorBound.q;
const RANK_ERROR_BOUND: Record<number, number> = Object.fromEntries(QS.map((q, i) => [q, rankErrorBound.continuous[i]!]));
function atomOrGapBound(q: number, compression: number): number {
  const width = (2 * Math.PI * Math.sqrt(q * (1 - q))) / compression;
  return Math.max(RANK_ERROR_BOUND[q]!, rankErrorBound.atomsOrGapsCentroidWidths * width);
}

function lowerBound(xs: Float64Array, x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Distance from q to the rank interval [#(< x)/n, #(≤ x)/n] of x in the sorted data. */
function rankError(sorted: Float64Array, x: number, q: number): number {
  const n = sorted.length;
  const below = lowerBound(sorted, x) / n;
  let atOrBelow = lowerBound(sorted, x);
  while (atOrBelow < n && sorted[atOrBelow] === x) atOrBelow++;
  const upper = atOrBelow / n;
  return q < below ? below - q : q > upper ? q - upper : 0;
}

/** Part sizes with weights 2^(10·u): up to ~1000× between the largest and the smallest part. */
function skewedSizes(n: number, parts: number, rnd: () => number): number[] {
  const w = Array.from({ length: parts }, () => 2 ** (10 * rnd()));
  const total = w.reduce((a, b) => a + b, 0);
  const sizes = w.map((x) => Math.floor((n * x) / total));
  sizes[parts - 1]! += n - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}

/** Splits values into parts: at random (as routing by user does) or by value range (worst case). */
function split(values: Float64Array, sizes: number[], byRange: boolean, rnd: () => number): Float64Array[] {
  let source = values;
  if (byRange) source = Float64Array.from(values).sort();
  else {
    source = Float64Array.from(values);
    for (let i = source.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [source[i], source[j]] = [source[j]!, source[i]!];
    }
  }
  const out: Float64Array[] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(source.subarray(at, at + s));
    at += s;
  }
  return out;
}

/**
 * Measuring mode for docs/TDIGEST.md: `TDIGEST_REPORT=1 TDIGEST_TRIALS=200 npx vitest run
 * src/merge/tdigest.test.ts` prints the worst rank error per distribution and q instead of
 * failing on the bound.
 */
const REPORT = Boolean(process.env.TDIGEST_REPORT);
const TRIALS = Number(process.env.TDIGEST_TRIALS ?? 6);
const worst: Record<string, Record<number, number>> = {};

interface TrialResult {
  violations: string[];
}

function runTrial(name: string, dist: Distribution, seed: number, n: number): TrialResult {
  const rnd = makeRandom(seed);
  const values = Float64Array.from({ length: n }, () => dist.draw(rnd));
  const parts = 1 + Math.floor(rnd() * 8);
  const byRange = rnd() < 0.25;
  const shards = split(values, skewedSizes(n, parts, rnd), byRange, rnd);
  const merged = mergeDigests(shards.map((s) => digestFromValues(s)));
  const sorted = Float64Array.from(values).sort();
  const violations: string[] = [];
  const where = `${name} seed=${seed} n=${n} parts=${parts}${byRange ? ' by range' : ''}`;
  if (merged.count !== n) violations.push(`${where}: count ${merged.count}`);
  if (merged.min !== sorted[0] || merged.max !== sorted[n - 1]) violations.push(`${where}: min/max`);
  if (merged.means.length > 2 * merged.compression) violations.push(`${where}: ${merged.means.length} centroids`);
  if (merged.weights.reduce((a, b) => a + b, 0) !== n) violations.push(`${where}: weights do not sum to n`);
  const row = (worst[`${name}, n = ${n}`] ??= {});
  for (const q of QS) {
    const err = rankError(sorted, quantile(merged, q), q);
    row[q] = Math.max(row[q] ?? 0, err);
    const bound = dist.atomsOrGaps ? atomOrGapBound(q, merged.compression) : RANK_ERROR_BOUND[q]!;
    if (err > bound && !REPORT) violations.push(`${where}: q=${q} rank error ${err}`);
  }
  return { violations };
}

describe('t-digest merged from skewed shards', () => {
  afterAll(() => {
    if (!REPORT) return;
    const all: Record<number, number> = {};
    for (const row of Object.values(worst)) for (const q of QS) all[q] = Math.max(all[q] ?? 0, row[q] ?? 0);
    console.log(`max |rank/n − q| over ${TRIALS} trials per distribution and size (n = 2e3, 2e4, 1e5)`);
    console.table({ ...worst, all });
  });

  for (const [name, dist] of Object.entries(DISTRIBUTIONS)) {
    const which = dist.atomsOrGaps ? 'the atoms-or-gaps bound' : 'the documented bound';
    it(`keeps rank error within ${which}, count/min/max exact and ≤ 2δ centroids: ${name}`, () => {
      const violations: string[] = [];
      for (let t = 0; t < TRIALS; t++) {
        for (const n of [2_000, 20_000, 100_000]) {
          violations.push(...runTrial(name, dist, (t + 1) * 1_000_003 + n + 17 * name.length, n).violations);
        }
      }
      expect(violations).toEqual([]);
    });
  }

  it('merges a million values from eight shards of very different sizes within the bound', () => {
    const rnd = makeRandom(20240601);
    const n = 1_000_000;
    const values = Float64Array.from({ length: n }, () => Math.exp(normal(rnd)));
    // Shard shares 1 : 2 : 4 : … : 128 of the whole.
    const sizes = Array.from({ length: 8 }, (_, i) => Math.floor((n * 2 ** i) / 255));
    sizes[7]! += n - sizes.reduce((a, b) => a + b, 0);
    const shards = split(values, sizes, false, rnd);
    // Merge in two levels, as a multi-instance deployment would.
    const halves = [mergeDigests(shards.slice(0, 4).map((s) => digestFromValues(s))), mergeDigests(shards.slice(4).map((s) => digestFromValues(s)))];
    const merged = mergeDigests(halves);
    const sorted = Float64Array.from(values).sort();
    expect(merged.count).toBe(n);
    expect([merged.min, merged.max]).toEqual([sorted[0], sorted[n - 1]]);
    expect(merged.means.length).toBeLessThanOrEqual(2 * merged.compression);
    for (const q of QS) expect(rankError(sorted, quantile(merged, q), q), `q=${q}`).toBeLessThanOrEqual(RANK_ERROR_BOUND[q]!);
  });
});
