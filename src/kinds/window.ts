/**
 * POST /query/window: event-time tumbling and hopping windows, one row per (window, group).
 *
 * Request (seed shape `{windowSize, groupBy, metric, aggFunc}`): `windowSize` (a duration),
 * `slide` (hopping windows; default = windowSize, a divisor of it, at most maxPanesPerWindow
 * panes per window), `groupBy` (one dimension, or a list of at most one), `metric` (`value`),
 * `aggFunc` (sum, mean, count, min, max, stddev, p50, p95, p99), `filter`.
 *
 * Answer: `{results: [row], windowSize, slide, groupBy, metric, aggFunc}`, rows with the group,
 * `window_start`, `window_end` and `<metric>_<aggFunc>`.
 *
 * Every shard cuts its events into panes of size `slide` (see windows.ts) and returns per
 * (pane, group) moments, plus the pane's t-digest for percentile aggFuncs; src/merge/window.ts
 * combines each window's `windowSize / slide` panes over every shard.
 *
 * Partial (python/engine_polars/ops/window.py), sorted by pane_start then group:
 *   pane_start Int64 · <group_by> LargeUtf8 (only with a group key) · count Int64 ·
 *   <m>__count Int64 · <m>__sum|min|max|mean|m2 Float64 (null when <m>__count is 0, and for
 *   the moments the plan's `moments` leaves out: the aggFunc never reads them) ·
 *   with `digest`: digest_mean Float64, digest_weight Int64 (centroid rows with count 0).
 */
import windowMerge from '../merge/window.js';
import { z } from 'zod';
import { windowMoments, type WindowAggFunc, type WindowMoment } from '../merge/window.js';
import { defineKind } from './kind.js';
import { BUILTIN, type RequestLimits } from './limits.js';
import { dimension, duration, filterDimensionFields, filterSchema, measure, type PlanFilter } from './schemas.js';
import { checkFilterSpan } from './windows.js';

export const WINDOW_AGGS = ['sum', 'mean', 'count', 'min', 'max', 'stddev', 'p50', 'p95', 'p99'] as const satisfies readonly WindowAggFunc[];
const PERCENTILE_AGGS: readonly WindowAggFunc[] = ['p50', 'p95', 'p99'];

export interface WindowPlan {
  kind: 'window';
  filter: PlanFilter;
  /** Pane size = slide (= window size when tumbling), ms. */
  pane_ms: number;
  /** windowSize / slide: panes per window (1 when tumbling). */
  panes_per_window: number;
  group_by: string | null;
  metric: string;
  /** Whether shards add each pane's t-digest (percentile aggFuncs). */
  digest: boolean;
  /** A shard whose filtered data spans more windows than this answers BAD_PLAN naming `windowSize`. */
  max_windows: number;
  max_cells?: number;
  /** The moments the merge reads for the aggFunc (windowMoments); shards leave the others null. */
  moments: WindowMoment[];
}

export interface WindowRequest {
  plan: WindowPlan;
  windowMs: number;
  slideMs: number;
  aggFunc: WindowAggFunc;
}

function schema(limits: RequestLimits) {
  return z
    .strictObject({
      windowSize: duration,
      slide: duration.nullish(),
      // One dimension; a list of at most one (as /query/aggregate takes them) is accepted too.
      groupBy: z.union([dimension, z.array(dimension).max(1, { error: 'at most one dimension' })]).nullish(),
      metric: measure.nullish(),
      aggFunc: z.enum(WINDOW_AGGS).nullish(),
      filter: filterSchema(limits),
    })
    .transform((b, ctx): WindowRequest => {
      const windowMs = b.windowSize;
      const slideMs = b.slide ?? windowMs;
      if (slideMs > windowMs) ctx.addIssue({ code: 'custom', path: ['slide'], message: `(${slideMs} ms) must not be longer than \`windowSize\` (${windowMs} ms)` });
      else if (windowMs % slideMs !== 0) ctx.addIssue({ code: 'custom', path: ['windowSize'], message: `(${windowMs} ms) must be a whole multiple of \`slide\` (${slideMs} ms)` });
      const panes = Math.max(1, Math.floor(windowMs / slideMs));
      if (panes > BUILTIN.maxPanesPerWindow) {
        ctx.addIssue({ code: 'custom', path: ['slide'], message: `windowSize / slide is ${panes}; at most ${BUILTIN.maxPanesPerWindow} panes per window` });
      }
      if (slideMs <= windowMs && windowMs % slideMs === 0) checkFilterSpan(b.filter, windowMs, slideMs, ctx);
      const aggFunc = b.aggFunc ?? 'sum';
      const groupBy = Array.isArray(b.groupBy) ? (b.groupBy[0] ?? null) : (b.groupBy ?? null);
      return {
        plan: {
          kind: 'window',
          filter: b.filter,
          pane_ms: slideMs,
          panes_per_window: panes,
          group_by: groupBy,
          metric: b.metric ?? 'value',
          digest: PERCENTILE_AGGS.includes(aggFunc),
          max_windows: BUILTIN.maxWindows,
          moments: windowMoments(aggFunc),
          // Every hopping window merges `panes` pane digests, so for percentiles the work is cells
          // × panes: the bound shrinks by the same factor (docs/api/limits.md).
          max_cells: PERCENTILE_AGGS.includes(aggFunc) ? Math.max(1, Math.floor(limits.maxResultCells / panes)) : limits.maxResultCells,
        },
        windowMs,
        slideMs,
        aggFunc,
      };
    });
}

export type WindowInput = z.input<ReturnType<typeof schema>>;

export default defineKind<WindowRequest>({
  name: 'window',
  method: 'POST',
  path: '/query/window',
  input: 'body',
  summary: 'Tumbling and hopping event-time windows per group: sum, mean, count, min, max, stddev or percentiles',
  schema,
  dimensions: (r) => [...(r.plan.group_by ? [['groupBy', r.plan.group_by] as [string, string]] : []), ...filterDimensionFields(r.plan.filter)],
  async run(req, rt) {
    const partials = await rt.fanOut(req.plan);
    const spec = { windowMs: req.windowMs, slideMs: req.slideMs, groupBy: req.plan.group_by, metric: req.plan.metric, aggFunc: req.aggFunc };
    return {
      results: await rt.mergeJson(windowMerge, spec, partials, 'rows'),
      windowSize: req.windowMs,
      slide: req.slideMs,
      groupBy: req.plan.group_by,
      metric: req.plan.metric,
      aggFunc: req.aggFunc,
    };
  },
});
