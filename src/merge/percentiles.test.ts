import { readFileSync } from 'node:fs';
import { Float64, Int32, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { exactQuantile, mergePercentilesTask, type PercentilesSpec } from './percentiles.js';
import { digestFromValues, mergeDigests, quantile } from './tdigest.js';
import { percentileKey } from './percentiles.js';
import { rng } from '../../test/helpers/random-events.js';

const DELTA = 200;
const BOUND = (
  JSON.parse(readFileSync(new URL('../../test/vectors/tdigest.json', import.meta.url), 'utf8')) as {
    rankErrorBound: { q: number[]; continuous: number[]; atomsOrGapsCentroidWidths: number };
  }
).rankErrorBound;

/** The documented bound for any data: continuous bound, or two centroid widths at atoms/gaps. */
function anyDataBound(q: number): number {
  const i = BOUND.q.indexOf(q);
  const continuous = i >= 0 ? BOUND.continuous[i]! : Math.max(...BOUND.continuous);
  return Math.max(continuous, (BOUND.atomsOrGapsCentroidWidths * 2 * Math.PI * Math.sqrt(q * (1 - q))) / DELTA);
}

/** |rank(x)/n − q| where rank(x) is the interval [#(<x), #(≤x)] in the sorted data. */
function rankError(sorted: Float64Array, x: number, q: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  const lt = lo;
  hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  const n = sorted.length;
  const a = lt / n;
  const b = lo / n;
  return q < a ? a - q : q > b ? q - b : 0;
}

/** Brute force: polars' linear interpolation on the sorted values. */
function bruteLinear(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo] === sorted[hi] ? sorted[lo]! : (h - lo) * (sorted[hi]! - sorted[lo]!) + sorted[lo]!;
}

/** Skewed shard sizes: weights 2^(10u), up to ~1000× apart. */
function skewedSplit(n: number, shards: number, r: () => number): number[] {
  const w = Array.from({ length: shards }, () => 2 ** (10 * r()));
  const total = w.reduce((a, b) => a + b, 0);
  const sizes = w.map((x) => Math.floor((x / total) * n));
  sizes[0]! += n - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}

interface Row {
  key: string | null;
  v: number;
}

function ipc(columns: Record<string, { values: unknown[]; type: Float64 | Int32 | Utf8 }>): Uint8Array {
  const vectors = Object.fromEntries(Object.entries(columns).map(([k, c]) => [k, vectorFromArray(c.values, c.type)]));
  return tableToIPC(new Table(vectors), 'stream');
}

function groupsOf(rows: Row[]): Map<string | null, number[]> {
  const m = new Map<string | null, number[]>();
  for (const r of rows) {
    if (!m.has(r.key)) m.set(r.key, []);
    m.get(r.key)!.push(r.v);
  }
  return new Map([...m].sort(([a], [b]) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1)));
}

/** A shard's digest partial, built the way ops/percentiles.py builds it. */
function digestPartial(rows: Row[], grouped: boolean): Uint8Array {
  const cols = { group_key: [] as Array<string | null>, count: [] as number[], min: [] as number[], max: [] as number[], mean: [] as number[], weight: [] as number[] };
  for (const [key, values] of groupsOf(rows)) {
    const d = digestFromValues(values, DELTA);
    d.means.forEach((m, i) => {
      cols.group_key.push(key);
      cols.count.push(d.count);
      cols.min.push(d.min);
      cols.max.push(d.max);
      cols.mean.push(m);
      cols.weight.push(d.weights[i]!);
    });
  }
  return ipc({
    ...(grouped ? { group_key: { values: cols.group_key, type: new Utf8() } } : {}),
    count: { values: cols.count, type: new Int32() },
    min: { values: cols.min, type: new Float64() },
    max: { values: cols.max, type: new Float64() },
    mean: { values: cols.mean, type: new Float64() },
    weight: { values: cols.weight, type: new Int32() },
  });
}

/** A shard's exact partial: value counts per group, ascending by value (as shards send them) or in any order. */
function exactPartial(rows: Row[], grouped: boolean, ascending = false): Uint8Array {
  const cols = { group_key: [] as Array<string | null>, value: [] as number[], count: [] as number[] };
  for (const [key, values] of groupsOf(rows)) {
    const counts = new Map<number, number>();
    for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
    const entries = [...counts];
    if (ascending) entries.sort((a, b) => a[0] - b[0]);
    for (const [v, c] of entries) {
      cols.group_key.push(key);
      cols.value.push(v);
      cols.count.push(c);
    }
  }
  return ipc({
    ...(grouped ? { group_key: { values: cols.group_key, type: new Utf8() } } : {}),
    value: { values: cols.value, type: new Float64() },
    count: { values: cols.count, type: new Int32() },
  });
}

function randomRows(r: () => number, n: number, grouped: boolean): Row[] {
  const keys = ['a', 'b', 'c', null];
  const kind = Math.floor(r() * 3);
  return Array.from({ length: n }, () => {
    const u = r();
    // continuous; heavy duplicates; bimodal with a gap
    const v = kind === 0 ? u * 1000 - 200 : kind === 1 ? Math.floor(-5 * Math.log(1 - u)) : r() < 0.9 ? u : 1e6 + u;
    return { key: grouped ? keys[Math.floor(r() * r() * keys.length)]! : null, v };
  });
}

function splitRows(rows: Row[], r: () => number): Row[][] {
  const shards = 1 + Math.floor(r() * 8);
  const sizes = skewedSplit(rows.length, shards, r);
  const out: Row[][] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(rows.slice(at, at + s));
    at += s;
  }
  return out;
}

describe('percentile keys', () => {
  it('names each percentile p + 100·q without trailing zeros', () => {
    expect([0.5, 0.95, 0.99, 0.995, 0.999, 0.001, 0.145, 0, 1, 0.25].map(percentileKey)).toEqual([
      'p50', 'p95', 'p99', 'p99.5', 'p99.9', 'p0.1', 'p14.5', 'p0', 'p100', 'p25',
    ]);
  });
});

describe('exact percentiles merge', () => {
  it('equals polars-style linear interpolation on the whole data, for random splits over 1–8 shards', () => {
    const r = rng(11);
    for (let trial = 0; trial < 60; trial++) {
      const grouped = r() < 0.5;
      const rows = randomRows(r, 1 + Math.floor(r() * 3000), grouped);
      const qs = [0, 1, 0.5, 0.25, 0.999, ...Array.from({ length: 5 }, () => r())];
      const spec: PercentilesSpec = { groupBy: grouped ? 'event_type' : null, exact: true, percentiles: qs };
      // half the trials with every shard's values ascending, as shards send them (merged as sorted runs)
      const merged = mergePercentilesTask(spec, splitRows(rows, r).map((s) => exactPartial(s, grouped, trial % 2 === 0)));
      const whole = groupsOf(rows);
      expect(merged.map((g) => g.key)).toEqual([...whole.keys()]);
      for (const g of merged) {
        const sorted = [...whole.get(g.key)!].sort((a, b) => a - b);
        expect(g.count).toBe(sorted.length);
        for (const q of qs) expect(g.percentiles[percentileKey(q)]).toBe(bruteLinear(sorted, q));
      }
    }
  });

  it('walks ranks across repeated values', () => {
    const hist = { values: [1, 2, 10], counts: [3, 1, 2] }; // 1 1 1 2 10 10
    expect(exactQuantile(hist, 6, 0)).toBe(1);
    expect(exactQuantile(hist, 6, 0.5)).toBe(1.5); // h = 2.5 → between 1 and 2
    expect(exactQuantile(hist, 6, 0.7)).toBe(0.5 * (10 - 2) + 2); // h = 3.5
    expect(exactQuantile(hist, 6, 1)).toBe(10);
    expect(Number.isNaN(exactQuantile({ values: [], counts: [] }, 0, 0.5))).toBe(true);
  });
});

describe('digest percentiles merge', () => {
  it('has exact counts and rank error within the documented bound for random splits over 1–8 shards', () => {
    const r = rng(23);
    for (let trial = 0; trial < 40; trial++) {
      const grouped = r() < 0.5;
      const rows = randomRows(r, 1 + Math.floor(r() * 20_000), grouped);
      const qs = BOUND.q;
      const spec: PercentilesSpec = { groupBy: grouped ? 'event_type' : null, exact: false, percentiles: qs };
      const shards = splitRows(rows, r);
      const merged = mergePercentilesTask(spec, shards.map((s) => digestPartial(s, grouped)));
      const whole = groupsOf(rows);
      expect(merged.map((g) => g.key)).toEqual([...whole.keys()]);
      for (const g of merged) {
        const sorted = Float64Array.from(whole.get(g.key)!).sort();
        expect(g.count).toBe(sorted.length);
        for (const q of qs) {
          const x = g.percentiles[percentileKey(q)]!;
          expect(x).toBeGreaterThanOrEqual(sorted[0]!);
          expect(x).toBeLessThanOrEqual(sorted[sorted.length - 1]!);
          expect(rankError(sorted, x, q)).toBeLessThanOrEqual(anyDataBound(q));
        }
      }
    }
  });

  it('answers one empty group with null percentiles when nothing matched', () => {
    const spec: PercentilesSpec = { groupBy: null, exact: false, percentiles: [0.5, 0.99] };
    expect(mergePercentilesTask(spec, [digestPartial([], false), digestPartial([], false)])).toEqual([
      { key: null, count: 0, percentiles: { p50: null, p99: null } },
    ]);
    expect(mergePercentilesTask({ ...spec, groupBy: 'event_type' }, [digestPartial([], true)])).toEqual([]);
  });

  it('keeps the rank error within the continuous bound on 1,000,000 values over 8 skewed shards', () => {
    const r = rng(1_000_003);
    const n = 1_000_000;
    const report: string[] = [];
    for (const dist of ['uniform', 'lognormal'] as const) {
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const u = r();
        values[i] = dist === 'uniform' ? u * 1000 : Math.exp(2 * Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * r()));
      }
      const sizes = skewedSplit(n, 8, r);
      expect(Math.max(...sizes) / Math.min(...sizes)).toBeGreaterThan(5);
      const digests = [];
      let at = 0;
      for (const s of sizes) {
        digests.push(digestFromValues(values.subarray(at, at + s), DELTA));
        at += s;
      }
      const merged = mergeDigests(digests);
      const sorted = Float64Array.from(values).sort();
      expect(merged.count).toBe(n);
      expect(merged.min).toBe(sorted[0]);
      expect(merged.max).toBe(sorted[n - 1]);
      const errors = BOUND.q.map((q) => rankError(sorted, quantile(merged, q), q));
      errors.forEach((e, i) => expect(e).toBeLessThanOrEqual(BOUND.continuous[i]!));
      report.push(`${dist}: ${errors.map((e, i) => `q=${BOUND.q[i]} ${e.toFixed(5)}`).join(', ')}`);
    }
    if (process.env.PERCENTILES_REPORT) console.log(report.join('\n'));
  });
});
