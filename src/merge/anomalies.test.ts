import { Float64, Int32, Table, Utf8, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { mergeAnomalyEvents, mergeAnomalyMoments, stddevOf, usableGroups, type GroupMomentsSpec } from './anomalies.js';
import { momentsOf } from './moments.js';
import { closeTo, rng } from '../../test/helpers/random-events.js';

interface Ev {
  timestamp: number;
  event_type: string;
  user_id: string;
  value: number | null;
  metadata: string | null;
  group: string | null;
}

const ipc = (cols: Record<string, Vector>) => tableToIPC(new Table(cols), 'stream');

/** A shard's phase-1 partial (aggregate schema), grouped by `group` when grouped. */
function momentsPartial(rows: Ev[], grouped: boolean): Uint8Array {
  const groups = new Map<string, { key: string | null; vs: Array<number | null> }>();
  for (const e of rows) {
    const k = grouped ? e.group : null;
    const id = JSON.stringify(k);
    if (!groups.has(id)) groups.set(id, { key: k, vs: [] });
    groups.get(id)!.vs.push(e.value);
  }
  if (!grouped && groups.size === 0) groups.set('null', { key: null, vs: [] });
  const g = [...groups.values()].map((x) => ({ key: x.key, count: x.vs.length, m: momentsOf(x.vs) }));
  const when = (f: (m: (typeof g)[number]['m']) => number) => g.map((x) => (x.m.count === 0 ? null : f(x.m)));
  return ipc({
    ...(grouped ? { grp: vectorFromArray(g.map((x) => x.key), new Utf8()) } : {}),
    count: vectorFromArray(g.map((x) => x.count), new Int32()),
    value__count: vectorFromArray(g.map((x) => x.m.count), new Int32()),
    value__sum: vectorFromArray(when((m) => m.sum), new Float64()),
    value__min: vectorFromArray(when((m) => m.min), new Float64()),
    value__max: vectorFromArray(when((m) => m.max), new Float64()),
    value__mean: vectorFromArray(when((m) => m.mean), new Float64()),
    value__m2: vectorFromArray(when((m) => m.m2), new Float64()),
  });
}

/** Independent order: |z| desc, then timestamp, user_id, event_type, z, metadata (null last). */
function order(a: Ev & { z: number }, b: Ev & { z: number }): number {
  const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return (
    Math.abs(b.z) - Math.abs(a.z) ||
    a.timestamp - b.timestamp ||
    cmp(a.user_id, b.user_id) ||
    cmp(a.event_type, b.event_type) ||
    a.z - b.z ||
    (a.metadata === b.metadata ? 0 : a.metadata === null ? 1 : b.metadata === null ? -1 : cmp(a.metadata, b.metadata))
  );
}

/** A shard's phase-2 partial, built like python/engine_polars/ops/anomalies.py. */
function eventsPartial(rows: Ev[], groups: GroupMomentsSpec[], grouped: boolean, threshold: number, limit: number): Uint8Array {
  const byKey = new Map(groups.map((g) => [grouped ? g.key : null, g]));
  const hits: Array<Ev & { z: number }> = [];
  for (const e of rows) {
    if (e.value === null) continue;
    const g = byKey.get(grouped ? e.group : null);
    if (!g) continue;
    const z = (e.value - g.mean) / g.stddev;
    if (Math.abs(z) > threshold) hits.push({ ...e, z });
  }
  const top = hits.sort(order).slice(0, limit);
  return ipc({
    timestamp: vectorFromArray(top.map((e) => e.timestamp), new Float64()),
    event_type: vectorFromArray(top.map((e) => e.event_type), new Utf8()),
    user_id: vectorFromArray(top.map((e) => e.user_id), new Utf8()),
    value: vectorFromArray(top.map((e) => e.value), new Float64()),
    metadata: vectorFromArray(top.map((e) => e.metadata), new Utf8()),
    z_score: vectorFromArray(top.map((e) => e.z), new Float64()),
    ...(grouped ? { group_key: vectorFromArray(top.map((e) => e.group), new Utf8()) } : {}),
    total: vectorFromArray(top.map(() => hits.length), new Int32()),
  });
}

/** Two-pass brute force on the whole: per-group mean and stddev, then every |z| > threshold. */
function brute(events: Ev[], grouped: boolean, ddof: 0 | 1, threshold: number) {
  const groups = new Map<string | null, number[]>();
  for (const e of events) {
    if (e.value === null) continue;
    const k = grouped ? e.group : null;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(e.value);
  }
  const stats = new Map<string | null, { mean: number; sd: number | null; n: number }>();
  for (const [k, vs] of groups) {
    const mean = vs.reduce((a, b) => a + b, 0) / vs.length;
    const ss = vs.reduce((a, v) => a + (v - mean) ** 2, 0);
    stats.set(k, { mean, sd: vs.length - ddof > 0 ? Math.sqrt(ss / (vs.length - ddof)) : null, n: vs.length });
  }
  const hits: Array<Ev & { z: number }> = [];
  let borderline = false;
  for (const e of events) {
    if (e.value === null) continue;
    const s = stats.get(grouped ? e.group : null)!;
    if (s.n < 2 || s.sd === null || s.sd === 0) continue;
    const z = (e.value - s.mean) / s.sd;
    if (Math.abs(Math.abs(z) - threshold) < 1e-9 * threshold) borderline = true;
    if (Math.abs(z) > threshold) hits.push({ ...e, z });
  }
  return { stats, hits: hits.sort(order), borderline };
}

function randomEvents(r: () => number, n: number): Ev[] {
  const offset = r() < 0.3 ? 1e6 : 0;
  return Array.from({ length: n }, (_, i) => {
    const roll = r();
    return {
      timestamp: 1_700_000_000_000 + Math.floor(r() * 50),
      event_type: ['view', 'click', 'buy'][Math.floor(r() * 3)]!,
      user_id: `u${Math.floor(r() * 30)}`,
      // Mostly normal-ish values with a few far outliers; some exact repeats make |z| ties.
      value: roll < 0.1 ? null : roll < 0.15 ? offset + 1000 * (r() < 0.5 ? -1 : 1) : offset + Math.round((r() + r() + r() - 1.5) * 100),
      metadata: r() < 0.5 ? null : `{"i":${i % 7}}`,
      group: r() < 0.1 ? null : `g${Math.floor(r() * r() * 5)}`,
    };
  });
}

describe('anomalies merge', () => {
  it('merges random splits over 1–8 shards to the brute-force anomalies on the whole (both ddofs, grouped or not, truncated by limit)', () => {
    const r = rng(11);
    let checked = 0;
    for (let trial = 0; trial < 300; trial++) {
      const events = randomEvents(r, Math.floor(r() * 500));
      const grouped = r() < 0.5;
      const ddof: 0 | 1 = r() < 0.5 ? 0 : 1;
      const threshold = 0.5 + r() * 2.5;
      const limit = 1 + Math.floor(r() * 40);
      const shards = 1 + Math.floor(r() * 8);
      // Events of one user stay on one shard, as the engine routes them; shard sizes are skewed.
      const owner = new Map<string, number>();
      const parts: Ev[][] = Array.from({ length: shards }, () => []);
      for (const e of events) {
        if (!owner.has(e.user_id)) owner.set(e.user_id, Math.floor(r() * r() * shards));
        parts[owner.get(e.user_id)!]!.push(e);
      }
      const groupBy = grouped ? 'grp' : null;
      const moments = mergeAnomalyMoments({ phase: 'moments', groupBy, column: 'value', ddof }, parts.map((p) => momentsPartial(p, grouped)));
      const usable = usableGroups(moments);
      const merged = mergeAnomalyEvents({ phase: 'events', groupBy, limit }, parts.map((p) => eventsPartial(p, usable, grouped, threshold, limit)));
      const want = brute(events, grouped, ddof, threshold);

      expect(moments.length).toBe(want.stats.size);
      for (const m of moments) {
        const s = want.stats.get(m.key)!;
        expect(m.count).toBe(s.n);
        expect(closeTo(m.mean, s.mean)).toBe(true);
        expect(closeTo(m.stddev, s.sd, 1e-7)).toBe(true);
      }
      if (want.borderline) continue; // a |z| within rounding of the threshold may fall either side
      checked++;
      expect(merged.count).toBe(want.hits.length);
      const top = want.hits.slice(0, limit);
      expect(merged.anomalies.length).toBe(top.length);
      merged.anomalies.forEach((a, i) => {
        const w = top[i]!;
        expect(closeTo(a.z_score, w.z, 1e-7)).toBe(true);
        // Equal |z| in exact arithmetic may round apart; the rows must then at least tie.
        if (a.timestamp !== w.timestamp || a.user_id !== w.user_id) expect(closeTo(Math.abs(a.z_score), Math.abs(w.z), 1e-9)).toBe(true);
        else expect([a.event_type, a.value]).toEqual([w.event_type, w.value]);
        if (grouped) expect(a.grp).toBe(w.group);
      });
    }
    expect(checked).toBeGreaterThan(250);
  });

  it('uses sample stddev for ddof 1 and population for ddof 0, and none below two values', () => {
    expect(stddevOf(4, 12, 1)).toBe(2);
    expect(stddevOf(4, 12, 0)).toBeCloseTo(Math.sqrt(3), 15);
    expect(stddevOf(1, 0, 1)).toBeNull();
    expect(usableGroups([{ key: 'a', count: 1, mean: 3, stddev: 0 }, { key: 'b', count: 5, mean: 3, stddev: 0 }, { key: null, count: 2, mean: 1, stddev: 1 }])).toEqual([
      { key: null, mean: 1, stddev: 1 },
    ]);
  });

  it('counts every anomaly even when each shard sends only its top `limit`', () => {
    const rows = (user: string): Ev[] =>
      [10, -10, 9, 0, 0, 0, 0, 0, 0, 0].map((v, i) => ({ timestamp: i, event_type: 'x', user_id: user, value: v, metadata: i === 0 ? '{"a":1}' : null, group: null }));
    const groups = [{ key: null, mean: 0, stddev: 1 }];
    const out = mergeAnomalyEvents({ phase: 'events', groupBy: null, limit: 2 }, ['u1', 'u2', 'u3'].map((u) => eventsPartial(rows(u), groups, false, 5, 2)));
    expect(out.count).toBe(9);
    expect(out.anomalies).toEqual([
      { timestamp: 0, event_type: 'x', user_id: 'u1', value: 10, z_score: 10, metadata: { a: 1 } },
      { timestamp: 0, event_type: 'x', user_id: 'u2', value: 10, z_score: 10, metadata: { a: 1 } },
    ]);
  });

  it('answers nothing on an empty engine', () => {
    const moments = mergeAnomalyMoments({ phase: 'moments', groupBy: null, column: 'value', ddof: 1 }, [momentsPartial([], false)]);
    expect(moments).toEqual([]);
    expect(mergeAnomalyEvents({ phase: 'events', groupBy: null, limit: 5 }, [eventsPartial([], [], false, 3, 5)])).toEqual({ anomalies: [], count: 0 });
  });
});
