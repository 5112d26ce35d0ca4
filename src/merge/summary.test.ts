import { Float64, Int32, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { mergeSummaryTask, type SummarySpec } from './summary.js';
import { momentsOf } from './moments.js';
import { digestFromValues } from './tdigest.js';
import { closeTo, rng } from '../../test/helpers/random-events.js';

interface Ev {
  ts: number;
  type: string;
  user: string;
  v: number | null;
  /** False: held by the shard but outside the filter (counts only in rows_held). */
  matches: boolean;
}

type Col = { values: unknown[]; type: Float64 | Int32 | Utf8 };

function ipc(columns: Record<string, Col>): Uint8Array {
  return tableToIPC(new Table(Object.fromEntries(Object.entries(columns).map(([k, c]) => [k, vectorFromArray(c.values, c.type)]))), 'stream');
}

const f64 = (v: number | null): Col => ({ values: [v], type: new Float64() });
const i32 = (v: number | null): Col => ({ values: [v], type: new Int32() });

/** The three partials one shard sends, built the way ops/summary.py, ops/aggregate.py and ops/percentiles.py build them. */
function shardPartials(held: Ev[]): [Uint8Array, Uint8Array, Uint8Array] {
  const evs = held.filter((e) => e.matches);
  const values = evs.map((e) => e.v).filter((v): v is number => v !== null);
  const m = momentsOf(values);
  const some = m.count > 0;
  const ts = evs.map((e) => e.ts);
  const summary = ipc({
    count: i32(evs.length),
    rows_held: i32(held.length),
    distinct_users: i32(new Set(evs.map((e) => e.user)).size),
    first_timestamp: f64(ts.length ? Math.min(...ts) : null),
    last_timestamp: f64(ts.length ? Math.max(...ts) : null),
    value__count: i32(m.count),
    value__null_count: i32(evs.length - m.count),
    value__sum: f64(some ? m.sum : null),
    value__min: f64(some ? m.min : null),
    value__max: f64(some ? m.max : null),
    value__mean: f64(some ? m.mean : null),
    value__m2: f64(some ? m.m2 : null),
  });
  const types = [...new Set(evs.map((e) => e.type))];
  const eventTypes = ipc({ event_type: { values: types, type: new Utf8() }, count: { values: types.map(() => 1), type: new Int32() } });
  const d = digestFromValues(values);
  const digest = ipc({
    count: { values: d.means.map(() => d.count), type: new Int32() },
    min: { values: d.means.map(() => d.min), type: new Float64() },
    max: { values: d.means.map(() => d.max), type: new Float64() },
    mean: { values: d.means, type: new Float64() },
    weight: { values: d.weights, type: new Int32() },
  });
  return [summary, eventTypes, digest];
}

function rankError(sorted: number[], x: number, q: number): number {
  const lt = sorted.filter((v) => v < x).length / sorted.length;
  const le = sorted.filter((v) => v <= x).length / sorted.length;
  return q < lt ? lt - q : q > le ? q - le : 0;
}

describe('summary merge', () => {
  it('equals the brute force on the whole data for random splits over 1–8 shards (users on one shard each)', () => {
    const r = rng(7);
    for (let trial = 0; trial < 80; trial++) {
      const n = Math.floor(r() * 4000);
      const shards = 1 + Math.floor(r() * 8);
      const users = 1 + Math.floor(r() * 300);
      const evs: Ev[] = Array.from({ length: n }, () => ({
        ts: 1_700_000_000_000 + Math.floor(r() * 1e7),
        type: `t${Math.floor(r() * r() * 7)}`,
        user: `u${Math.floor(r() * r() * users)}`,
        v: r() < 0.15 ? null : r() < 0.3 ? Math.floor(r() * 10) : (r() - 0.3) * 1e4,
        matches: r() < 0.8,
      }));
      // Skewed routing by user: shard = a skewed function of the user's number.
      const held: Ev[][] = Array.from({ length: shards }, () => []);
      for (const e of evs) held[Math.floor(((Number(e.user.slice(1)) * 2654435761) % 1000) ** 2 / 1e6 * shards)]!.push(e);
      const parts = held.map(shardPartials);
      const spec: SummarySpec = { columns: ['value'], shards };
      const stats = mergeSummaryTask(spec, [...parts.map((p) => p[0]), ...parts.map((p) => p[1]), ...parts.map((p) => p[2])]);

      const match = evs.filter((e) => e.matches);
      const values = match.map((e) => e.v).filter((v): v is number => v !== null);
      const sorted = [...values].sort((a, b) => a - b);
      const mean = values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
      const stddev = mean === null ? null : Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
      expect(stats.count).toBe(match.length);
      expect(stats.rows_held).toBe(n);
      expect(stats.null_count).toBe(match.length - values.length);
      expect(stats.value_count).toBe(values.length);
      expect(stats.distinct_users).toBe(new Set(match.map((e) => e.user)).size);
      expect(stats.distinct_event_types).toBe(new Set(match.map((e) => e.type)).size);
      expect(stats.first_timestamp).toBe(match.length ? Math.min(...match.map((e) => e.ts)) : null);
      expect(stats.last_timestamp).toBe(match.length ? Math.max(...match.map((e) => e.ts)) : null);
      expect(stats.min).toBe(sorted.length ? sorted[0] : null);
      expect(stats.max).toBe(sorted.length ? sorted[sorted.length - 1] : null);
      expect(closeTo(stats.mean as number | null, mean)).toBe(true);
      expect(closeTo(stats.stddev as number | null, stddev, 1e-8)).toBe(true);
      expect(stats.columns.value).toEqual({
        count: stats.value_count, null_count: stats.null_count, mean: stats.mean, stddev: stats.stddev,
        min: stats.min, max: stats.max, p25: stats.p25, p50: stats.p50, p75: stats.p75,
      });
      for (const [q, x] of [[0.25, stats.p25], [0.5, stats.p50], [0.75, stats.p75]] as const) {
        if (sorted.length === 0) expect(x).toBeNull();
        // Atoms (integers 0..9) are allowed: two centroid widths at q (docs/TDIGEST.md).
        else expect(rankError(sorted, x!, q)).toBeLessThanOrEqual(Math.max(0.006, (2 * 2 * Math.PI * Math.sqrt(q * (1 - q))) / 200));
      }
    }
  });

  it('answers counts 0 and nulls for an empty engine', () => {
    const parts = [shardPartials([]), shardPartials([])];
    const stats = mergeSummaryTask({ columns: ['value'], shards: 2 }, [...parts.map((p) => p[0]), ...parts.map((p) => p[1]), ...parts.map((p) => p[2])]);
    expect(stats).toMatchObject({
      count: 0, null_count: 0, value_count: 0, mean: null, stddev: null, min: null, max: null, p25: null, p50: null, p75: null,
      distinct_users: 0, distinct_event_types: 0, first_timestamp: null, last_timestamp: null, rows_held: 0,
    });
  });

  it('rejects a partial list that does not match the plan layout', () => {
    expect(() => mergeSummaryTask({ columns: ['value'], shards: 2 }, [])).toThrow(/expected 6 summary partials, got 0/);
  });
});
