import { Float64, Int32, Table, Utf8, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { compareCodePoints, mergeTopNTask, type TopNAgg, type TopNSpec } from './topn.js';
import { momentsOf } from './moments.js';
import { closeTo, rng } from '../../test/helpers/random-events.js';

interface Row {
  key: string | null;
  v: number | null;
}

const AGGS: TopNAgg[] = ['sum', 'count', 'mean', 'max'];

/** One shard's partial, built the way python/engine_polars/ops/topn.py builds it. */
function shardPartial(rows: Row[], spec: TopNSpec, shardTop: boolean): Uint8Array {
  const groups = new Map<string, Array<number | null>>();
  for (const r of rows) {
    if (r.key === null) continue;
    const list = groups.get(r.key) ?? [];
    list.push(r.v);
    groups.set(r.key, list);
  }
  let entries = [...groups].map(([key, vs]) => ({ key, count: vs.length, m: momentsOf(vs) }));
  if (shardTop) {
    const score = (e: (typeof entries)[number]): number | null =>
      spec.aggFunc === 'count' ? e.count : e.m.count === 0 ? null : spec.aggFunc === 'sum' ? e.m.sum : spec.aggFunc === 'mean' ? e.m.mean : e.m.max;
    entries = entries
      .filter((e) => score(e) !== null)
      .sort((a, b) => {
        const d = (score(a)! - score(b)!) * (spec.order === 'desc' ? -1 : 1);
        return d !== 0 ? d : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
      })
      .slice(0, spec.n);
  }
  const some = (f: (e: (typeof entries)[number]) => number | null) => entries.map(f);
  const cols: Record<string, Vector> = {
    [spec.groupBy]: vectorFromArray(entries.map((e) => e.key), new Utf8()),
    count: vectorFromArray(some((e) => e.count), new Int32()),
  };
  if (spec.metric !== null) {
    const m = spec.metric;
    const when = (f: (e: (typeof entries)[number]) => number) => some((e) => (e.m.count === 0 ? null : f(e)));
    cols[`${m}__count`] = vectorFromArray(some((e) => e.m.count), new Int32());
    cols[`${m}__sum`] = vectorFromArray(when((e) => e.m.sum), new Float64());
    cols[`${m}__min`] = vectorFromArray(when((e) => e.m.min), new Float64());
    cols[`${m}__max`] = vectorFromArray(when((e) => e.m.max), new Float64());
    cols[`${m}__mean`] = vectorFromArray(when((e) => e.m.mean), new Float64());
    cols[`${m}__m2`] = vectorFromArray(when((e) => e.m.m2), new Float64());
  }
  return tableToIPC(new Table(cols), 'stream');
}

/** Independent brute force on the whole data set: plain sums, sort, slice. */
function bruteTopN(rows: Row[], spec: TopNSpec): Array<{ key: string; score: number; count: number }> {
  const groups = new Map<string, { count: number; values: number[] }>();
  for (const r of rows) {
    if (r.key === null) continue;
    let g = groups.get(r.key);
    if (!g) groups.set(r.key, (g = { count: 0, values: [] }));
    g.count++;
    if (r.v !== null) g.values.push(r.v);
  }
  const out: Array<{ key: string; score: number; count: number }> = [];
  for (const [key, g] of groups) {
    const sum = g.values.reduce((a, b) => a + b, 0);
    let score: number | null;
    if (spec.aggFunc === 'count') score = g.count;
    else if (g.values.length === 0) score = null;
    else if (spec.aggFunc === 'sum') score = sum;
    else if (spec.aggFunc === 'mean') score = sum / g.values.length;
    else score = Math.max(...g.values);
    if (score !== null) out.push({ key, score, count: g.count });
  }
  out.sort((a, b) => (a.score !== b.score ? (spec.order === 'desc' ? b.score - a.score : a.score - b.score) : a.key < b.key ? -1 : 1));
  return out.slice(0, spec.n);
}

function expectSameRanking(spec: TopNSpec, got: Array<Record<string, string | number>>, want: ReturnType<typeof bruteTopN>, exactScores: boolean): void {
  const name = spec.metric === null ? 'count' : `${spec.metric}_${spec.aggFunc}`;
  expect(got.length).toBe(want.length);
  const byKey = new Map(want.map((w) => [w.key, w]));
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const key = g[spec.groupBy] as string;
    const score = g[name] as number;
    if (exactScores) {
      expect(key).toBe(want[i]!.key);
      expect(score).toBe(want[i]!.score);
    } else {
      expect(closeTo(score, want[i]!.score)).toBe(true);
      // A different key at the same rank is only allowed for a floating-point near-tie.
      if (key !== want[i]!.key) expect(closeTo(score, want[i]!.score, 1e-12)).toBe(true);
    }
    const w = byKey.get(key);
    if (w) expect(g.count).toBe(w.count);
  }
}

describe('top-N merge', () => {
  it('merges random data split over 1–8 shards to the brute-force top N on the whole (every agg, both orders, both modes)', () => {
    const r = rng(7);
    for (let trial = 0; trial < 400; trial++) {
      const integers = r() < 0.5; // integer values make sums exact, so ties must break by key exactly
      const keys = 1 + Math.floor(r() * 60);
      const n = 1 + Math.floor(r() * 12);
      const rows: Row[] = Array.from({ length: Math.floor(r() * 600) }, () => ({
        key: r() < 0.05 ? null : `k${Math.floor(r() * r() * keys)}`,
        v: r() < 0.15 ? null : integers ? Math.floor(r() * 20) - 5 : (r() - 0.3) * 10 ** Math.floor(r() * 4),
      }));
      const byUser = r() < 0.5;
      const shards = 1 + Math.floor(r() * 8);
      const aggFunc = AGGS[Math.floor(r() * AGGS.length)]!;
      const spec: TopNSpec = {
        groupBy: byUser ? 'user_id' : 'metadata.page',
        metric: aggFunc === 'count' && r() < 0.5 ? null : 'value',
        aggFunc,
        n,
        order: r() < 0.5 ? 'desc' : 'asc',
      };
      // Skewed shard sizes; by user every key lives on one shard (the shard key), else anywhere.
      const owner = new Map<string, number>();
      const parts: Row[][] = Array.from({ length: shards }, () => []);
      for (const row of rows) {
        let s = Math.floor(r() * r() * shards);
        if (byUser && row.key !== null) {
          if (!owner.has(row.key)) owner.set(row.key, s);
          s = owner.get(row.key)!;
        }
        parts[s]!.push(row);
      }
      const partials = parts.map((p) => shardPartial(p, spec, byUser));
      const { results } = mergeTopNTask(spec, partials);
      const exact = aggFunc === 'count' || aggFunc === 'max' || (integers && aggFunc === 'sum');
      expectSameRanking(spec, results, bruteTopN(rows, spec), exact);
    }
  });

  it('is exact for a key spread thinly over many shards, which per-shard top lists would miss', () => {
    // `thin` has 10 on each of 8 shards (80 in all); `fat-k` has 50 on shard k only.
    const parts: Row[][] = Array.from({ length: 8 }, (_, k) => [
      { key: 'thin', v: 10 },
      { key: `fat-${k}`, v: 50 },
    ]);
    const spec: TopNSpec = { groupBy: 'event_type', metric: 'value', aggFunc: 'sum', n: 1, order: 'desc' };
    const full = mergeTopNTask(spec, parts.map((p) => shardPartial(p, spec, false)));
    expect(full.results).toEqual([{ event_type: 'thin', value_sum: 80, count: 8 }]);
    expectSameRanking(spec, full.results, bruteTopN(parts.flat(), spec), true);
    // The same merge fed per-shard top-1 lists answers a wrong key: full groups are what make it exact.
    const truncated = mergeTopNTask(spec, parts.map((p) => shardPartial(p, spec, true)));
    expect(truncated.results[0]!.event_type).not.toBe('thin');
  });

  it('breaks ties by key ascending and leaves out null keys and groups with no values', () => {
    const rows: Row[] = [
      { key: 'b', v: 5 },
      { key: 'a', v: 5 },
      { key: 'c', v: null },
      { key: null, v: 100 },
      { key: 'd', v: 1 },
    ];
    const spec: TopNSpec = { groupBy: 'metadata.plan', metric: 'value', aggFunc: 'sum', n: 10, order: 'desc' };
    const { results } = mergeTopNTask(spec, [shardPartial(rows.slice(0, 2), spec, false), shardPartial(rows.slice(2), spec, false)]);
    expect(results).toEqual([
      { 'metadata.plan': 'a', value_sum: 5, count: 1 },
      { 'metadata.plan': 'b', value_sum: 5, count: 1 },
      { 'metadata.plan': 'd', value_sum: 1, count: 1 },
    ]);
    const counted = mergeTopNTask({ ...spec, aggFunc: 'count', metric: null, order: 'asc' }, [shardPartial(rows, { ...spec, metric: null }, false)]);
    expect(counted.results.map((x) => x['metadata.plan'])).toEqual(['a', 'b', 'c', 'd']);
  });

  it('answers no rows on an empty engine', () => {
    const spec: TopNSpec = { groupBy: 'user_id', metric: 'value', aggFunc: 'mean', n: 5, order: 'desc' };
    expect(mergeTopNTask(spec, [shardPartial([], spec, true), shardPartial([], spec, true)]).results).toEqual([]);
  });

  it('orders strings by code point, as polars sorts UTF-8', () => {
    const s = ['\u{1F600}', '\uFFFD', 'a', 'B', ''];
    const byBytes = [...s].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect([...s].sort(compareCodePoints)).toEqual(byBytes);
  });
});
