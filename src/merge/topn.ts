/**
 * Top-N merge: every shard's `topn` partial (one row per group: event count and the metric's
 * moments, see src/kinds/topn.ts) → the global top `n`.
 *
 * Groups are combined by key with the aggregate merge (Chan's formula for the moments), then
 * scored and ranked. The same code is exact in both plan modes:
 * - by the shard key (`user_id`) every key lives on one shard, so the global top n is among the
 *   union of the shards' own top n lists (each shard ranks with the same score and tie-break);
 * - by any other key the shards send every group, so a key spread over many shards is scored on
 *   all of its events before it is ranked.
 * Scores: `count` = events in the group; `sum`/`mean`/`max` = over the non-null metric values,
 * and a group with no non-null value has no score and is left out. Ties: key ascending (Unicode
 * code point order, the byte order polars sorts UTF-8 strings in). Null keys are left out.
 */
import { aggregateGroupsFromPartial, mergeAggregateGroups, type AggregateGroup } from './aggregate.js';
import { decodePartial } from './decode-partial.js';
import { reportable } from './moments.js';
import { defineMerge } from './merge-def.js';

export const TOPN_AGGS = ['sum', 'count', 'mean', 'max'] as const;
export type TopNAgg = (typeof TOPN_AGGS)[number];
export const TOPN_ORDERS = ['desc', 'asc'] as const;
export type TopNOrder = (typeof TOPN_ORDERS)[number];

export interface TopNSpec {
  groupBy: string;
  metric: string | null;
  aggFunc: TopNAgg;
  n: number;
  order: TopNOrder;
}

export type TopNRow = Record<string, string | number>;

/**
 * Compares strings by Unicode code point (= UTF-8 byte order). JS `<` compares UTF-16 code units,
 * which differs only when a surrogate pair (code point ≥ U+10000) meets a unit in U+E000–U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** The score of a merged group, or null when it has none (no non-null metric value). */
export function topNScore(g: AggregateGroup, agg: TopNAgg): number | null {
  if (agg === 'count') return g.count;
  const m = g.metrics[0];
  if (!m || m.count === 0) return null;
  return agg === 'sum' ? m.sum : agg === 'mean' ? m.mean : m.max;
}

/** The column holding the score in answer rows: `<metric>_<aggFunc>`, or `count` without a metric. */
export function topNScoreName(spec: Pick<TopNSpec, 'metric' | 'aggFunc'>): string {
  return spec.metric === null ? 'count' : `${spec.metric}_${spec.aggFunc}`;
}

/** Ranks merged groups: the top `n` by score (desc or asc), ties by key ascending. Pure. */
export function rankTopN(groups: AggregateGroup[], spec: TopNSpec): TopNRow[] {
  const scored: Array<{ key: string; score: number; count: number }> = [];
  for (const g of groups) {
    const key = g.keys[0];
    if (key === null || key === undefined) continue;
    const score = topNScore(g, spec.aggFunc);
    if (score === null) continue;
    scored.push({ key, score, count: g.count });
  }
  const sign = spec.order === 'desc' ? -1 : 1;
  scored.sort((a, b) => (a.score !== b.score ? sign * (a.score < b.score ? -1 : 1) : compareCodePoints(a.key, b.key)));
  const name = topNScoreName(spec);
  return scored.slice(0, spec.n).map((s) => ({ [spec.groupBy]: s.key, [name]: reportable(s.score), count: s.count }));
}

/** Merge-pool entry: partials (Arrow IPC, one per shard) → `{results}`. */
export function mergeTopNTask(spec: TopNSpec, partials: Uint8Array[]): { results: TopNRow[] } {
  const aggSpec = { groupBy: [spec.groupBy], metrics: spec.metric === null ? [] : [spec.metric] };
  const parts = partials.map((ipc) => aggregateGroupsFromPartial(decodePartial(ipc), aggSpec));
  return { results: rankTopN(mergeAggregateGroups(parts, aggSpec.metrics.length), spec) };
}

export default defineMerge('topn', mergeTopNTask);
