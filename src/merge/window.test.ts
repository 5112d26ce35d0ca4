import { describe, expect, it } from 'vitest';
import { Float64, Int64, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { finishWindows, mergeWindowPanes, mergeWindowTask, windowMoments, type WindowAggFunc, type WindowPane, type WindowSpec } from './window.js';
import { compareKey } from './aggregate.js';
import { momentsOf } from './moments.js';
import { digestFromValues, quantile } from './tdigest.js';
import { closeTo, rng } from '../../test/helpers/random-events.js';
import { rankError } from '../../test/helpers/rank-error.js';

interface Ev {
  ts: number;
  key: string | null;
  v: number | null;
}

const AGGS: WindowAggFunc[] = ['sum', 'mean', 'count', 'min', 'max', 'stddev', 'p50', 'p95', 'p99'];
const Q: Record<string, number> = { p50: 0.5, p95: 0.95, p99: 0.99 };

/** One shard's partial, built the way a shard builds it: per (pane, group) moments and digest. */
function shardPanes(events: Ev[], spec: WindowSpec): WindowPane[] {
  const byPane = new Map<string, { pane: number; key: string | null; evs: Ev[] }>();
  for (const e of events) {
    const pane = Math.floor(e.ts / spec.slideMs) * spec.slideMs;
    const id = JSON.stringify([pane, e.key]);
    let g = byPane.get(id);
    if (!g) byPane.set(id, (g = { pane, key: e.key, evs: [] }));
    g.evs.push(e);
  }
  return [...byPane.values()].map((g) => {
    const values = g.evs.map((e) => e.v);
    const d = digestFromValues(values);
    return { paneStart: g.pane, key: spec.groupBy === null ? null : g.key, count: g.evs.length, moments: momentsOf(values), means: d.means, weights: d.weights };
  });
}

/** Independent brute force: every window that holds an event, from the raw events. */
function brute(events: Ev[], spec: WindowSpec): Map<string, { count: number; values: number[] }> {
  const out = new Map<string, { count: number; values: number[] }>();
  const k = spec.windowMs / spec.slideMs;
  for (const e of events) {
    const last = Math.floor(e.ts / spec.slideMs) * spec.slideMs;
    for (let j = 0; j < k; j++) {
      const w = last - j * spec.slideMs;
      if (!(w <= e.ts && e.ts < w + spec.windowMs)) throw new Error('bad brute window');
      const id = JSON.stringify([w, spec.groupBy === null ? null : e.key]);
      let g = out.get(id);
      if (!g) out.set(id, (g = { count: 0, values: [] }));
      g.count++;
      if (e.v !== null) g.values.push(e.v);
    }
  }
  return out;
}


/** docs/api/window.md: two centroid widths (docs/TDIGEST.md, atoms or gaps) plus one value in n. */
function rankBound(q: number, n: number): number {
  return (2 * 2 * Math.PI * Math.sqrt(q * (1 - q))) / 200 + 1 / n;
}

function bruteValue(values: number[], agg: WindowAggFunc): number | null {
  const n = values.length;
  if (agg === 'count') return n;
  if (n === 0) return null;
  const sum = values.reduce((a, b) => a + b, 0);
  const mean = sum / n;
  switch (agg) {
    case 'sum':
      return sum;
    case 'mean':
      return mean;
    case 'min':
      return values.reduce((a, b) => (b < a ? b : a));
    case 'max':
      return values.reduce((a, b) => (b > a ? b : a));
    default:
      return Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / n);
  }
}

function randomCase(r: () => number, big: boolean) {
  const slide = [1, 7, 10, 250, 1000][Math.floor(r() * 5)]!;
  const k = r() < 0.4 ? 1 : 1 + Math.floor(r() * 6);
  const spec0 = { windowMs: slide * k, slideMs: slide, groupBy: r() < 0.3 ? null : 'g', metric: 'v' };
  const n = big ? 20_000 : 1 + Math.floor(r() * 600);
  const span = slide * (big ? 4 : 1 + Math.floor(r() * 30));
  // Negative timestamps too: panes must floor, not truncate, towards −∞.
  const origin = r() < 0.2 ? -span / 2 : 1_700_000_000_000;
  const events: Ev[] = Array.from({ length: n }, () => ({
    ts: Math.floor(origin + r() * span),
    key: r() < 0.1 ? null : `k${Math.floor(r() * r() * 5)}`,
    v: r() < 0.15 ? null : r() < 0.5 ? Math.round(r() * 20) : 1e6 + (r() - 0.5) * 10 ** Math.floor(r() * 4),
  }));
  return { spec0, events };
}

/** Panes of one shard with one entry per (pane, group), as a shard sends them (count 0 panes included). */
function combinedPanes(panes: WindowPane[]): WindowPane[] {
  return mergeWindowPanes([panes]);
}

/** A pane with the moments the aggFunc does not read NaN, as the merge reads the nulls a shard leaves there. */
function unreadAsNaN(spec: WindowSpec): (p: WindowPane) => WindowPane {
  const kept = new Set<string>(windowMoments(spec.aggFunc));
  return (p) => {
    if (p.moments.count === 0) return p;
    const m = { ...p.moments };
    for (const k of ['sum', 'min', 'max', 'mean', 'm2'] as const) if (!kept.has(k)) m[k] = NaN;
    return { ...p, moments: m };
  };
}

/** A pane as the merge reads it back from a partial without digests: unread moments NaN, no centroids. */
function asRead(spec: WindowSpec): (p: WindowPane) => WindowPane {
  const unread = unreadAsNaN(spec);
  return (p) => (p.moments.count === 0 ? p : { ...unread(p), means: [], weights: [] });
}

/** A shard's window partial (ops/window.py's columns) of these panes, moments the aggFunc does not read null. */
function windowPartial(panes: WindowPane[], spec: WindowSpec): Uint8Array {
  const kept = new Set<string>(windowMoments(spec.aggFunc));
  const moment = (k: 'sum' | 'min' | 'max' | 'mean' | 'm2') => vectorFromArray(panes.map((p) => (p.moments.count === 0 || !kept.has(k) ? null : p.moments[k])), new Float64());
  const big = (f: (p: WindowPane) => number) => vectorFromArray(panes.map((p) => BigInt(f(p))), new Int64());
  return tableToIPC(
    new Table({
      pane_start: big((p) => p.paneStart),
      ...(spec.groupBy === null ? {} : { [spec.groupBy]: vectorFromArray(panes.map((p) => p.key), new Utf8()) }),
      count: big((p) => p.count),
      [`${spec.metric}__count`]: big((p) => p.moments.count),
      [`${spec.metric}__sum`]: moment('sum'),
      [`${spec.metric}__min`]: moment('min'),
      [`${spec.metric}__max`]: moment('max'),
      [`${spec.metric}__mean`]: moment('mean'),
      [`${spec.metric}__m2`]: moment('m2'),
    }),
    'stream',
  );
}

describe('window merge', () => {
  it('merges random shard splits to the brute-force answer for every aggFunc (300 trials, 1–8 shards)', () => {
    const r = rng(7);
    for (let trial = 0; trial < 300; trial++) {
      const { spec0, events } = randomCase(r, false);
      const spec: WindowSpec = { ...spec0, aggFunc: AGGS[trial % AGGS.length]! };
      const shards = 1 + Math.floor(r() * 8);
      const parts: Ev[][] = Array.from({ length: shards }, () => []);
      // Skewed split: low shards get most events.
      for (const e of events) parts[Math.floor(r() * r() * shards)]!.push(e);
      const { rows, windowsSpanned } = finishWindows(mergeWindowPanes(parts.map((p) => shardPanes(p, spec))), spec);
      const want = brute(events, spec);
      expect(rows.length, `trial ${trial}`).toBe(want.size);
      const col = `v_${spec.aggFunc}`;
      let prev: [number, string | null] | null = null;
      for (const row of rows) {
        const key = spec.groupBy === null ? null : (row.g as string | null);
        const w = want.get(JSON.stringify([row.window_start, key]));
        expect(w, `trial ${trial} window ${row.window_start} ${key}`).toBeDefined();
        expect(row.window_end).toBe((row.window_start as number) + spec.windowMs);
        expect(row.count).toBe(w!.count);
        const q = Q[spec.aggFunc];
        if (q === undefined) {
          expect(closeTo(row[col] as number | null, bruteValue(w!.values, spec.aggFunc), 1e-9), `trial ${trial} ${col}: ${row[col]}`).toBe(true);
        } else if (w!.values.length === 0) {
          expect(row[col]).toBeNull();
        } else {
          const sorted = [...w!.values].sort((a, b) => a - b);
          expect(rankError(sorted, row[col] as number, q)).toBeLessThanOrEqual(rankBound(q, sorted.length));
          // Few values: every centroid is a single value, so the merge is the digest of the whole.
          if (sorted.length <= 40) expect(row[col]).toBe(quantile(digestFromValues(sorted), q));
        }
        // Sorted by window, then group with null last.
        if (prev) {
          const [pw, pk] = prev;
          const ok = pw < (row.window_start as number) || (pw === row.window_start && (key === null ? pk !== null : pk !== null && pk < key));
          expect(ok, `order at trial ${trial}`).toBe(true);
        }
        prev = [row.window_start as number, key];
      }
      const starts = rows.map((x) => x.window_start as number);
      if (rows.length) expect(windowsSpanned).toBe((Math.max(...starts) - Math.min(...starts)) / spec.slideMs + 1);
    }
  });

  it('answers every aggFunc the same when the shards leave the moments it does not read null (NaN here)', () => {
    const r = rng(11);
    for (let trial = 0; trial < 90; trial++) {
      const { spec0, events } = randomCase(r, false);
      const spec: WindowSpec = { ...spec0, aggFunc: AGGS[trial % AGGS.length]! };
      const shards = 1 + Math.floor(r() * 4);
      const parts: Ev[][] = Array.from({ length: shards }, () => []);
      for (const e of events) parts[Math.floor(r() * shards)]!.push(e);
      const full = parts.map((p) => shardPanes(p, spec));
      const some = full.map((panes) => panes.map(unreadAsNaN(spec)));
      expect(finishWindows(mergeWindowPanes(some), spec), `trial ${trial} ${spec.aggFunc}`).toEqual(finishWindows(mergeWindowPanes(full), spec));
    }
  });

  it('answers tumbling windows from the partials\' columns exactly as from pane objects, in order or not', () => {
    const r = rng(23);
    for (let trial = 0; trial < 120; trial++) {
      const { spec0, events } = randomCase(r, false);
      const aggFunc = (['sum', 'mean', 'count', 'min', 'max', 'stddev'] as const)[trial % 6]!;
      const spec: WindowSpec = { ...spec0, windowMs: spec0.slideMs, aggFunc };
      const shards = 1 + Math.floor(r() * 4);
      const parts: Ev[][] = Array.from({ length: shards }, () => []);
      for (const e of events) parts[Math.floor(r() * shards)]!.push(e);
      // one row per (pane, group), as a shard sends them: sorted, or (every third trial) shuffled
      const panes = parts.map((p) => combinedPanes(shardPanes(p, spec)).sort((a, b) => a.paneStart - b.paneStart || compareKey(a.key, b.key)));
      if (trial % 3 === 2) for (const p of panes) p.reverse();
      const partials = panes.map((p) => windowPartial(p, spec));
      expect(mergeWindowTask(spec, partials), `trial ${trial} ${aggFunc}`).toEqual(finishWindows(mergeWindowPanes(panes.map((p) => p.map(asRead(spec)))), spec));
    }
  });

  it('keeps percentile rank error within the documented bound for large windows merged from many panes and shards', () => {
    const r = rng(99);
    for (let trial = 0; trial < 6; trial++) {
      const { spec0, events } = randomCase(r, true);
      for (const aggFunc of ['p50', 'p95', 'p99'] as const) {
        const spec: WindowSpec = { ...spec0, aggFunc };
        const shards = 1 + Math.floor(r() * 8);
        const parts: Ev[][] = Array.from({ length: shards }, () => []);
        for (const e of events) parts[Math.floor(r() * r() * shards)]!.push(e);
        const { rows } = finishWindows(mergeWindowPanes(parts.map((p) => shardPanes(p, spec))), spec);
        const want = brute(events, spec);
        for (const row of rows) {
          const w = want.get(JSON.stringify([row.window_start, spec.groupBy === null ? null : row.g]))!;
          if (w.values.length === 0) continue;
          const sorted = [...w.values].sort((a, b) => a - b);
          expect(rankError(sorted, row[`v_${aggFunc}`] as number, Q[aggFunc]!)).toBeLessThanOrEqual(rankBound(Q[aggFunc]!, sorted.length));
        }
      }
    }
  });

  it('answers no rows and no windows for no panes', () => {
    expect(finishWindows(mergeWindowPanes([[], []]), { windowMs: 60_000, slideMs: 60_000, groupBy: null, metric: 'value', aggFunc: 'sum' })).toEqual({ rows: [], windowsSpanned: 0 });
  });

  it('gives a window whose values are all null a count and a null aggregate (value_count 0)', () => {
    const pane: WindowPane = { paneStart: 0, key: 'a', count: 3, moments: momentsOf([null, null]), means: [], weights: [] };
    const spec: WindowSpec = { windowMs: 10, slideMs: 10, groupBy: 'event_type', metric: 'value', aggFunc: 'mean' };
    expect(finishWindows([pane], spec).rows).toEqual([{ window_start: 0, window_end: 10, event_type: 'a', count: 3, value_mean: null }]);
    expect(finishWindows([pane], { ...spec, aggFunc: 'count' }).rows[0]!.value_count).toBe(0);
    expect(finishWindows([pane], { ...spec, aggFunc: 'p99' }).rows[0]!.value_p99).toBeNull();
  });
});
