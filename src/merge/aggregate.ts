/**
 * Aggregate partials → answer rows. Each shard's partial has one row per group with the event
 * count and per-metric moments (see src/kinds/aggregate.ts); groups are keyed by their key tuple and
 * merged with Chan's formula.
 */
import { emptyMoments, finishMoments, mergeMoments, type Moments } from './moments.js';
import { decodePartial, requireColumn, type DecodedPartial } from './decode-partial.js';
import { defineMerge } from './merge-def.js';

export interface AggregateGroup {
  keys: Array<string | null>;
  count: number;
  metrics: Moments[];
}

/** The statistics an answer row has per metric (after `m_count`), in this order. */
export const AGGREGATE_STATS = ['sum', 'mean', 'min', 'max', 'stddev'] as const;
export type AggregateStat = (typeof AGGREGATE_STATS)[number];

export interface AggregateSpec {
  groupBy: string[];
  metrics: string[];
  /** With a `window` group key: the window size (ms), for `window_end`. */
  windowMs?: number;
  /** The statistics the rows have per metric, in AGGREGATE_STATS order; absent: all of them. */
  stats?: AggregateStat[];
}

/** The statistics of `spec`'s rows, in AGGREGATE_STATS order. */
export function statsOf(spec: AggregateSpec): readonly AggregateStat[] {
  return spec.stats ?? AGGREGATE_STATS;
}

/** The partial column of a group key: `window` → `window_start` (Int64), a dimension → itself. */
export function keyColumn(key: string): string {
  return key === 'window' ? 'window_start' : key;
}

/** Reads a decoded partial into groups. */
export function aggregateGroupsFromPartial(p: DecodedPartial, spec: AggregateSpec): AggregateGroup[] {
  const keyCols = spec.groupBy.map((k) => requireColumn(p, keyColumn(k)));
  const count = requireColumn(p, 'count');
  const metricCols = spec.metrics.map((m) => ({
    count: requireColumn(p, `${m}__count`),
    sum: requireColumn(p, `${m}__sum`),
    min: requireColumn(p, `${m}__min`),
    max: requireColumn(p, `${m}__max`),
    mean: requireColumn(p, `${m}__mean`),
    m2: requireColumn(p, `${m}__m2`),
  }));
  const groups: AggregateGroup[] = [];
  for (let i = 0; i < p.rows; i++) {
    groups.push({
      keys: keyCols.map((c) => (c[i] === null ? null : String(c[i]))),
      count: Number(count[i]),
      metrics: metricCols.map((c) => {
        const n = Number(c.count[i] ?? 0);
        if (n === 0) return emptyMoments();
        return { count: n, sum: Number(c.sum[i]), min: Number(c.min[i]), max: Number(c.max[i]), mean: Number(c.mean[i]), m2: Number(c.m2[i]) };
      }),
    });
  }
  return groups;
}

/**
 * Merges groups from any number of shards; equal key tuples are combined. Pure.
 *
 * With `disjoint` (the caller knows no key tuple occurs on two shards: every tuple containing
 * `user_id`, the shard key) the merge is a concatenation. A single key is used as the map key
 * directly (the null group kept apart) instead of a JSON string per group: both mattered for
 * by-user answers with tens of thousands of groups.
 */
export function mergeAggregateGroups(parts: AggregateGroup[][], metricCount: number, disjoint = false): AggregateGroup[] {
  if (parts.length === 1 || disjoint) return parts.flat();
  const byKey = new Map<string, AggregateGroup>();
  let nullGroup: AggregateGroup | null = null;
  const fold = (acc: AggregateGroup, g: AggregateGroup) => {
    acc.count += g.count;
    for (let m = 0; m < metricCount; m++) mergeMoments(acc.metrics[m]!, g.metrics[m]!);
  };
  const fresh = (g: AggregateGroup): AggregateGroup => ({ keys: g.keys, count: 0, metrics: Array.from({ length: metricCount }, emptyMoments) });
  for (const part of parts) {
    for (const g of part) {
      if (g.keys.length === 1 && g.keys[0] === null) {
        nullGroup ??= fresh(g);
        fold(nullGroup, g);
        continue;
      }
      const key = g.keys.length === 1 ? g.keys[0]! : JSON.stringify(g.keys);
      let acc = byKey.get(key);
      if (!acc) {
        acc = fresh(g);
        byKey.set(key, acc);
      }
      fold(acc, g);
    }
  }
  const out = [...byKey.values()];
  if (nullGroup) out.push(nullGroup);
  return out;
}

/** Compares one group key: ascending, null last (the order of every answer's groups). */
export function compareKey(x: string | null, y: string | null): number {
  if (x === y) return 0;
  if (x === null) return 1;
  if (y === null) return -1;
  return x < y ? -1 : 1;
}

/** Compares key tuples: {@link compareKey} key by key. */
export function compareKeys(a: Array<string | null>, b: Array<string | null>): number {
  for (let i = 0; i < a.length; i++) {
    const c = compareKey(a[i] ?? null, b[i] ?? null);
    if (c !== 0) return c;
  }
  return 0;
}

export type AggregateRow = Record<string, string | number | null>;

/** Like {@link compareKeys}, but the `window` key (a decimal epoch-ms string) compares as a number. */
function compareGroups(groupBy: string[]): (a: AggregateGroup, b: AggregateGroup) => number {
  const w = groupBy.indexOf('window');
  if (w < 0) return (a, b) => compareKeys(a.keys, b.keys);
  return (a, b) => {
    for (let i = 0; i < groupBy.length; i++) {
      const c = i === w ? Number(a.keys[i]) - Number(b.keys[i]) : compareKey(a.keys[i] ?? null, b.keys[i] ?? null);
      if (c !== 0) return c;
    }
    return 0;
  };
}

/**
 * Answer rows: the group keys, `count` (events), and per metric m `m_count` (non-null values),
 * `m_sum`, `m_mean`, `m_min`, `m_max`, `m_stddev` (population), or those of `spec.stats`. Sorted by keys (null last; the
 * window by time). A `window` key answers `window_start` and `window_end` (epoch ms). With no
 * group keys there is always exactly one row, even on an empty engine.
 */
export function finishAggregate(groups: AggregateGroup[], spec: AggregateSpec): AggregateRow[] {
  if (spec.groupBy.length === 0 && groups.length === 0) {
    groups = [{ keys: [], count: 0, metrics: spec.metrics.map(emptyMoments) }];
  }
  const sorted = [...groups].sort(compareGroups(spec.groupBy));
  const stats = statsOf(spec);
  return sorted.map((g) => {
    const row: AggregateRow = {};
    spec.groupBy.forEach((k, i) => {
      if (k !== 'window') {
        row[k] = g.keys[i] ?? null;
        return;
      }
      const start = Number(g.keys[i]);
      row.window_start = start;
      row.window_end = start + (spec.windowMs ?? 0);
    });
    row.count = g.count;
    spec.metrics.forEach((m, i) => {
      const f = finishMoments(g.metrics[i]!);
      row[`${m}_count`] = f.count;
      for (const s of stats) row[`${m}_${s}`] = f[s];
    });
    return row;
  });
}

/** Every shard's aggregate partial → `{rows}`. */
export function mergeAggregateTask(spec: AggregateSpec, partials: Uint8Array[]): { rows: AggregateRow[] } {
  const parts = partials.map((ipc) => aggregateGroupsFromPartial(decodePartial(ipc), spec));
  // Users live on exactly one shard, so tuples containing user_id never meet across shards.
  return { rows: finishAggregate(mergeAggregateGroups(parts, spec.metrics.length, spec.groupBy.includes('user_id')), spec) };
}

export default defineMerge('aggregate', mergeAggregateTask);
