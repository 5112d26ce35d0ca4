/**
 * POST /query/window body → `window` plan. Seed shape `{windowSize, groupBy, metric, aggFunc}`
 * plus `slide` (hopping windows) and the common `filter`.
 *
 * Windows are on event time and aligned to the epoch: a window starts at a multiple of `slide`
 * (= `windowSize` when tumbling) and covers [start, start + windowSize). Every shard cuts its
 * events into panes of size `slide` (pane start = floor(ts / slide) · slide) and returns per
 * (pane, group) moments, plus the pane's t-digest for percentile aggFuncs; src/merge/window.ts
 * combines each window's `windowSize / slide` panes over every shard.
 *
 * Partial (python/engine_polars/ops/window.py), sorted by pane_start then group:
 *   pane_start     Int64    epoch ms, a multiple of pane_ms
 *   <group_by>     Utf8     only with a group key (null: the event has no such dimension)
 *   count          Int64    events in the pane and group
 *   <m>__count     Int64    non-null values of the metric
 *   <m>__sum|min|max|mean|m2  Float64 (null when <m>__count is 0)
 * With `digest` (percentile aggFuncs) also `digest_mean` Float64 and `digest_weight` Int64: the
 * pane's digest centroids as extra rows with `count` 0, `<m>__count` 0 and null moments; the
 * summary row of each pane has them null.
 */
import type { EnrichmentCatalog } from './dimensions.js';
import { parseDimension } from './dimensions.js';
import { parseFilter } from './filter.js';
import type { PlanFilter } from './plan.js';
import { durationField, enumField, requireFields } from './request-fields.js';
import { badRequest } from '../router/http-error.js';

export const WINDOW_AGGS = ['sum', 'mean', 'count', 'min', 'max', 'stddev', 'p50', 'p95', 'p99'] as const;
export type WindowAgg = (typeof WINDOW_AGGS)[number];
export const PERCENTILE_AGGS: Partial<Record<WindowAgg, number>> = { p50: 0.5, p95: 0.95, p99: 0.99 };
/** Most windows one request may produce (counted over the filter range or the data range). */
export const MAX_WINDOWS = 100_000;
/** Most panes in one hopping window (windowSize / slide): bounds the merge's work per window. */
export const MAX_PANES_PER_WINDOW = 1_000;
const METRICS = ['value'] as const;
const FIELDS = ['windowSize', 'slide', 'groupBy', 'metric', 'aggFunc', 'filter'];
/** A window is at most 366 days: anything longer is not a window query. */
const MAX_WINDOW_MS = 366 * 86_400_000;

export interface WindowPlan {
  kind: 'window';
  filter: PlanFilter;
  /** Pane size = slide (= window size when tumbling), ms. */
  pane_ms: number;
  /** windowSize / slide: panes per window (1 when tumbling). */
  panes_per_window: number;
  /** One dimension or null for no grouping. */
  group_by: string | null;
  metric: string;
  /** Whether shards add each pane's t-digest (percentile aggFuncs). */
  digest: boolean;
  /** A shard whose filtered data spans more windows than this answers BAD_PLAN naming `windowSize`. */
  max_windows: number;
}

export interface WindowRequest {
  plan: WindowPlan;
  windowMs: number;
  slideMs: number;
  aggFunc: WindowAgg;
}

/** Windows [w, w + size) with w a multiple of `slide` holding any instant in [first, last] (integers). */
export function windowsSpanned(first: number, last: number, slideMs: number, panesPerWindow: number): number {
  return Math.floor(last / slideMs) - Math.floor(first / slideMs) + panesPerWindow;
}

export function tooManyWindows(windows: number, windowMs: number, slideMs: number, over: string): Error {
  const what = windowMs === slideMs ? `windowSize ${windowMs} ms` : `windowSize ${windowMs} ms with slide ${slideMs} ms`;
  return badRequest(`\`windowSize\`: ${what} gives ${windows} windows over ${over}; at most ${MAX_WINDOWS}: use a larger windowSize or slide, or a narrower filter`, [
    { field: 'windowSize', reason: `${windows} windows > ${MAX_WINDOWS}` },
  ]);
}

export function parseWindowRequest(body: unknown, catalog?: EnrichmentCatalog): WindowRequest {
  const obj = requireFields(body, FIELDS);
  const windowMs = durationField(obj.windowSize, 'windowSize', { maxMs: MAX_WINDOW_MS });
  const slideMs = obj.slide === undefined || obj.slide === null ? windowMs : durationField(obj.slide, 'slide', { maxMs: MAX_WINDOW_MS });
  if (slideMs > windowMs) {
    throw badRequest(`\`slide\` (${slideMs} ms) must not be longer than \`windowSize\` (${windowMs} ms)`, [{ field: 'slide', reason: 'longer than windowSize' }]);
  }
  if (windowMs % slideMs !== 0) {
    throw badRequest(`\`windowSize\` (${windowMs} ms) must be a whole multiple of \`slide\` (${slideMs} ms)`, [{ field: 'windowSize', reason: 'not a multiple of slide' }]);
  }
  const panes = windowMs / slideMs;
  if (panes > MAX_PANES_PER_WINDOW) {
    throw badRequest(`\`slide\`: windowSize / slide is ${panes}; at most ${MAX_PANES_PER_WINDOW} panes per window`, [{ field: 'slide', reason: `${panes} panes per window` }]);
  }
  // One dimension; a list of at most one (as /query/aggregate takes them) is accepted too.
  let rawGroup = obj.groupBy;
  if (Array.isArray(rawGroup)) {
    if (rawGroup.length > 1) throw badRequest(`\`groupBy\`: at most one dimension, got ${rawGroup.length}`, [{ field: 'groupBy', reason: 'more than one dimension' }]);
    rawGroup = rawGroup[0];
  }
  const groupBy = rawGroup === undefined || rawGroup === null ? null : parseDimension(rawGroup, 'groupBy', catalog);
  const metric = enumField(obj.metric, 'metric', METRICS, 'value');
  const aggFunc = enumField(obj.aggFunc, 'aggFunc', WINDOW_AGGS, 'sum');
  const filter = parseFilter(obj.filter, 'filter', catalog);
  if (filter.from !== undefined && filter.to !== undefined && filter.to > filter.from) {
    // Integer timestamps in [from, to): first = ceil(from), last = ceil(to) − 1.
    const first = Math.ceil(filter.from);
    const last = Math.ceil(filter.to) - 1;
    if (last >= first) {
      const n = windowsSpanned(first, last, slideMs, panes);
      if (n > MAX_WINDOWS) throw tooManyWindows(n, windowMs, slideMs, 'the filter range');
    }
  }
  return {
    plan: {
      kind: 'window',
      filter,
      pane_ms: slideMs,
      panes_per_window: panes,
      group_by: groupBy,
      metric,
      digest: aggFunc in PERCENTILE_AGGS,
      max_windows: MAX_WINDOWS,
    },
    windowMs,
    slideMs,
    aggFunc,
  };
}
