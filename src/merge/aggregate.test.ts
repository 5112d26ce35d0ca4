import { describe, expect, it } from 'vitest';
import { finishAggregate, mergeAggregateGroups, type AggregateGroup } from './aggregate.js';
import { momentsOf, emptyMoments } from './moments.js';
import { rng } from '../../test/helpers/random-events.js';

function close(a: number | null, b: number | null, rel = 1e-9): void {
  if (a === null || b === null) {
    expect(a).toBe(b);
    return;
  }
  expect(Math.abs(a - b)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(b)));
}

/** Partial groups of one shard, computed the way a shard does: moments of its own rows. */
function partialOf(rows: Array<{ key: string; v: number | null }>): AggregateGroup[] {
  const byKey = new Map<string, Array<number | null>>();
  for (const r of rows) {
    const list = byKey.get(r.key) ?? [];
    list.push(r.v);
    byKey.set(r.key, list);
  }
  return [...byKey].map(([k, vs]) => ({ keys: [k], count: vs.length, metrics: [momentsOf(vs)] }));
}

describe('aggregate merge', () => {
  it('merges random partitions of random data to the answer on the whole (200 trials, 1–8 shards)', () => {
    const r = rng(42);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(r() * 400);
      const rows = Array.from({ length: n }, () => ({
        key: `k${Math.floor(r() * 6)}`,
        // Large offsets make naive variance formulas fail; Chan's merge must not.
        v: r() < 0.1 ? null : 1e6 + (r() - 0.5) * 10 ** Math.floor(r() * 4),
      }));
      const shards = 1 + Math.floor(r() * 8);
      const parts: Array<typeof rows> = Array.from({ length: shards }, () => []);
      for (const row of rows) parts[Math.floor(r() * r() * shards)]!.push(row);
      const merged = finishAggregate(mergeAggregateGroups(parts.map(partialOf), 1), { groupBy: ['k'], metrics: ['v'] });
      const whole = finishAggregate(mergeAggregateGroups([partialOf(rows)], 1), { groupBy: ['k'], metrics: ['v'] });
      expect(merged.map((x) => x.k)).toEqual(whole.map((x) => x.k));
      for (let i = 0; i < merged.length; i++) {
        const m = merged[i]!;
        const keyRows = rows.filter((x) => x.key === m.k);
        const values = keyRows.map((x) => x.v).filter((v): v is number => v !== null);
        // Independent two-pass brute force.
        const mean = values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
        const sd = mean === null ? null : Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
        expect(m.count).toBe(keyRows.length);
        expect(m.v_count).toBe(values.length);
        close(m.v_mean as number | null, mean);
        close(m.v_stddev as number | null, sd, 1e-7);
        close(m.v_sum as number | null, values.length ? values.reduce((a, b) => a + b, 0) : null);
        expect(m.v_min).toBe(values.length ? Math.min(...values) : null);
        expect(m.v_max).toBe(values.length ? Math.max(...values) : null);
      }
    }
  });

  it('answers one zero row for a global aggregate over nothing', () => {
    const rows = finishAggregate(mergeAggregateGroups([[], []], 1), { groupBy: [], metrics: ['value'] });
    expect(rows).toEqual([{ count: 0, value_count: 0, value_sum: null, value_mean: null, value_min: null, value_max: null, value_stddev: null }]);
  });

  it('keeps groups whose metric is all null, with a count and null moments', () => {
    const groups: AggregateGroup[] = [{ keys: ['a'], count: 3, metrics: [emptyMoments()] }];
    const [row] = finishAggregate(mergeAggregateGroups([groups, groups], 1), { groupBy: ['event_type'], metrics: ['value'] });
    expect(row).toMatchObject({ event_type: 'a', count: 6, value_count: 0, value_mean: null });
  });

  it('sorts groups by key with the null group last', () => {
    const g = (k: string | null): AggregateGroup => ({ keys: [k], count: 1, metrics: [] });
    const rows = finishAggregate(mergeAggregateGroups([[g('b'), g(null)], [g('a')]], 0), { groupBy: ['x'], metrics: [] });
    expect(rows.map((r) => r.x)).toEqual(['a', 'b', null]);
  });
});

describe('aggregate merge with window and metadata keys', () => {
  it('sorts the window key by time (not as text), answers window_start/window_end, null groups last', () => {
    const g = (w: number, k: string | null): AggregateGroup => ({ keys: [String(w), k], count: 1, metrics: [] });
    const spec = { groupBy: ['window', 'metadata.plan'], metrics: [], windowMs: 100 };
    const rows = finishAggregate(mergeAggregateGroups([[g(1000, 'pro'), g(-100, null)], [g(900, null), g(900, 'free'), g(1000, 'pro')]], 0), spec);
    expect(rows).toEqual([
      { window_start: -100, window_end: 0, 'metadata.plan': null, count: 1 },
      { window_start: 900, window_end: 1000, 'metadata.plan': 'free', count: 1 },
      { window_start: 900, window_end: 1000, 'metadata.plan': null, count: 1 },
      { window_start: 1000, window_end: 1100, 'metadata.plan': 'pro', count: 2 },
    ]);
  });
});

describe('aggregate merge of disjoint partials (grouped by the shard key)', () => {
  it('gives the same rows as the keyed merge when no key occurs on two shards', () => {
    const r = rng(7);
    const rows = Array.from({ length: 3000 }, () => ({ key: `u${Math.floor(r() * 500)}`, v: r() < 0.2 ? null : r() * 100 }));
    // Partition by key, as routing by user does.
    const parts: Array<typeof rows> = [[], [], []];
    for (const row of rows) parts[Number(row.key.slice(1)) % 3]!.push(row);
    const partials = parts.map((p) => {
      const byKey = new Map<string, Array<number | null>>();
      for (const x of p) byKey.set(x.key, [...(byKey.get(x.key) ?? []), x.v]);
      return [...byKey].map(([k, vs]) => ({ keys: [k], count: vs.length, metrics: [momentsOf(vs)] }));
    });
    const spec = { groupBy: ['user_id'], metrics: ['value'] };
    expect(finishAggregate(mergeAggregateGroups(partials, 1, true), spec)).toEqual(finishAggregate(mergeAggregateGroups(partials, 1, false), spec));
  });
});

describe('float64 overflow', () => {
  it('reports a sum beyond ±1.8e308 as "Infinity", never as a silent null', async () => {
    const { finishMoments, momentsOf, reportable } = await import('./moments.js');
    const big = momentsOf([1.7e308, 1.7e308, -1e300]);
    const f = finishMoments(big);
    expect(f.sum).toBe('Infinity');
    expect(JSON.parse(JSON.stringify(f)).sum).toBe('Infinity');
    expect(finishMoments(momentsOf([-1.7e308, -1.7e308])).sum).toBe('-Infinity');
    expect(reportable(Infinity - Infinity)).toBe('NaN');
    // Finite results are untouched.
    expect(finishMoments(momentsOf([1, 2, 3])).sum).toBe(6);
  });
});
