/**
 * Window partials → answer rows. Every shard returns per (pane, group) the event count and the
 * metric's moments, and for percentiles the pane's t-digest centroids (schema in
 * src/kinds/window.ts). Panes are `slide` long and aligned to the epoch, so a window
 * [w, w + size) is exactly the panes w, w + slide, …, w + size − slide: moments are merged with
 * Chan's formula (exact up to rounding) and digests with Dunning's merge over every centroid of
 * the window's panes on every shard (one merge, not a chain, so no digest is compressed twice).
 */
import { requireColumn, decodePartial, type DecodedPartial } from './decode-partial.js';
import { emptyMoments, finishMoments, mergeMoments, type Moments, type NonFinite } from './moments.js';
import { mergeDigests, quantile, type Digest } from './tdigest.js';
import { compareKeys } from './aggregate.js';
import { defineMerge } from './merge-def.js';

export type WindowAggFunc = 'sum' | 'mean' | 'count' | 'min' | 'max' | 'stddev' | 'p50' | 'p95' | 'p99';
const QUANTILE: Partial<Record<WindowAggFunc, number>> = { p50: 0.5, p95: 0.95, p99: 0.99 };

export interface WindowSpec {
  windowMs: number;
  slideMs: number;
  groupBy: string | null;
  metric: string;
  aggFunc: WindowAggFunc;
}

/** One pane of one group, merged over shards. */
export interface WindowPane {
  paneStart: number;
  key: string | null;
  count: number;
  moments: Moments;
  /** Digest centroids (any order), percentile aggFuncs only. */
  means: number[];
  weights: number[];
}

export type WindowRow = Record<string, string | number | null>;

export interface WindowAnswer {
  rows: WindowRow[];
  /** Windows between the first and the last pane with data (what the window limit counts). */
  windowsSpanned: number;
}

/** Reads one decoded partial into panes. */
export function windowPanesFromPartial(p: DecodedPartial, spec: WindowSpec): WindowPane[] {
  const m = spec.metric;
  const pane = requireColumn(p, 'pane_start');
  const key = spec.groupBy === null ? null : requireColumn(p, spec.groupBy);
  const count = requireColumn(p, 'count');
  const cols = ['count', 'sum', 'min', 'max', 'mean', 'm2'].map((f) => requireColumn(p, `${m}__${f}`));
  const digest = QUANTILE[spec.aggFunc] !== undefined;
  const dMean = digest ? requireColumn(p, 'digest_mean') : null;
  const dWeight = digest ? requireColumn(p, 'digest_weight') : null;
  const out: WindowPane[] = [];
  for (let i = 0; i < p.rows; i++) {
    const n = Number(cols[0]![i] ?? 0);
    const moments =
      n === 0
        ? emptyMoments()
        : { count: n, sum: Number(cols[1]![i]), min: Number(cols[2]![i]), max: Number(cols[3]![i]), mean: Number(cols[4]![i]), m2: Number(cols[5]![i]) };
    const pn: WindowPane = { paneStart: Number(pane[i]), key: key === null || key[i] === null ? null : String(key[i]), count: Number(count[i]), moments, means: [], weights: [] };
    if (dMean && dWeight && dMean[i] !== null && dWeight[i] !== null) {
      pn.means.push(Number(dMean[i]));
      pn.weights.push(Number(dWeight[i]));
    }
    out.push(pn);
  }
  return out;
}

/** Combines equal (pane, group) entries from any number of shards. Pure. */
export function mergeWindowPanes(parts: WindowPane[][]): WindowPane[] {
  const byKey = new Map<string, WindowPane>();
  for (const part of parts) {
    for (const p of part) {
      const id = `${p.paneStart}|${p.key === null ? '\u0000' : `=${p.key}`}`;
      let acc = byKey.get(id);
      if (!acc) byKey.set(id, (acc = { paneStart: p.paneStart, key: p.key, count: 0, moments: emptyMoments(), means: [], weights: [] }));
      acc.count += p.count;
      mergeMoments(acc.moments, p.moments);
      for (let i = 0; i < p.means.length; i++) {
        acc.means.push(p.means[i]!);
        acc.weights.push(p.weights[i]!);
      }
    }
  }
  return [...byKey.values()];
}

function paneDigest(p: WindowPane): Digest {
  let count = 0;
  for (const w of p.weights) count += w;
  return { compression: 200, means: p.means, weights: p.weights, count, min: p.moments.min, max: p.moments.max };
}

/**
 * Panes → one row per (window, group) with data, sorted by window start then group (null last):
 * `window_start`, `window_end`, the group key, `count` (events) and `<metric>_<aggFunc>`.
 */
export function finishWindows(panes: WindowPane[], spec: WindowSpec): WindowAnswer {
  const k = spec.windowMs / spec.slideMs;
  const q = QUANTILE[spec.aggFunc];
  const windows = new Map<string, { start: number; key: string | null; count: number; moments: Moments; panes: WindowPane[] }>();
  let first = Infinity;
  let last = -Infinity;
  // Panes in time order, so a window's digests are merged in a fixed (deterministic) order.
  const ordered = [...panes].sort((a, b) => a.paneStart - b.paneStart || compareKeys([a.key], [b.key]));
  for (const p of ordered) {
    if (p.paneStart < first) first = p.paneStart;
    if (p.paneStart > last) last = p.paneStart;
    for (let j = 0; j < k; j++) {
      const start = p.paneStart - j * spec.slideMs;
      const id = `${start}|${p.key === null ? '\u0000' : `=${p.key}`}`;
      let w = windows.get(id);
      if (!w) windows.set(id, (w = { start, key: p.key, count: 0, moments: emptyMoments(), panes: [] }));
      w.count += p.count;
      mergeMoments(w.moments, p.moments);
      if (q !== undefined && p.means.length > 0) w.panes.push(p);
    }
  }
  const sorted = [...windows.values()].sort((a, b) => a.start - b.start || compareKeys([a.key], [b.key]));
  const column = `${spec.metric}_${spec.aggFunc}`;
  const rows = sorted.map((w) => {
    const row: WindowRow = { window_start: w.start, window_end: w.start + spec.windowMs };
    if (spec.groupBy !== null) row[spec.groupBy] = w.key;
    row.count = w.count;
    row[column] = aggregateValue(w.moments, w.panes, spec.aggFunc, q);
    return row;
  });
  const windowsSpanned = panes.length === 0 ? 0 : Math.round((last - first) / spec.slideMs) + k;
  return { rows, windowsSpanned };
}

function aggregateValue(m: Moments, panes: WindowPane[], aggFunc: WindowAggFunc, q: number | undefined): number | NonFinite | null {
  if (q !== undefined) {
    if (panes.length === 0) return null;
    const v = quantile(mergeDigests(panes.map(paneDigest)), q);
    return Number.isFinite(v) ? v : null;
  }
  const f = finishMoments(m);
  switch (aggFunc) {
    case 'count':
      return f.count;
    case 'sum':
      return f.sum;
    case 'mean':
      return f.mean;
    case 'min':
      return f.min;
    case 'max':
      return f.max;
    default:
      return f.stddev;
  }
}

/** Merge-pool task: every shard's partial → the answer. */
export function mergeWindowTask(spec: WindowSpec, partials: Uint8Array[]): WindowAnswer {
  const parts = partials.map((ipc) => windowPanesFromPartial(decodePartial(ipc), spec));
  return finishWindows(mergeWindowPanes(parts), spec);
}

export default defineMerge('window', mergeWindowTask);
