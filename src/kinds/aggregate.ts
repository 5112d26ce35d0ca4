/**
 * POST /query/aggregate: event count and per-metric moments per group.
 *
 * Request (seed shape `{groupBy: [...], metrics: [...]}`): `groupBy` — at most `maxGroupByKeys`
 * of `event_type`, `user_id`, `metadata.<key>`, `<table>.<column>` and `window` (the tumbling
 * event-time window of `windowSize`, see windows.ts); `metrics` (default `["value"]`); `stats`
 * (default all of `sum`, `mean`, `min`, `max`, `stddev`); `filter`.
 *
 * Answer: `{results: [row]}`, a row per group: the keys (`window` → `window_start`,
 * `window_end`), `count` (events), and per metric m `m_count` (non-null values), `m_sum`,
 * `m_mean`, `m_min`, `m_max`, `m_stddev` (population; only those `stats` names, in this order),
 * sorted by keys. No groupBy → one row. A shard skips what no named statistic needs when it
 * finishes its rows itself (e.g. `m2` without `stddev`); partials merged across shards always
 * carry every moment.
 *
 * Partial (python/engine_polars/ops/aggregate.py), one row per group: the keys (LargeUtf8;
 * `window` → `window_start` Int64), `count` Int64, and per metric `<m>__count` Int64,
 * `<m>__sum|min|max|mean|m2` Float64 (null when `<m>__count` is 0). Merged by key with Chan's
 * formula (src/merge/aggregate.ts).
 *
 * With `user_id` among the keys no group is on two shards (routing is by user), so the plan asks
 * for `finish`: each shard answers its rows finished, as JSON text sorted by the keys, and the
 * merge only interleaves them (src/merge/aggregate-rows.ts). The plan then also carries
 * `max_bytes`, so a shard whose rows alone are over `maxResponseBytes` refuses before sending them.
 *
 * `format: "arrow"` answers the rows as an Arrow IPC stream instead (same columns and order,
 * src/merge/aggregate-arrow.ts; the envelope's fields in headers). A `finish` plan then also asks
 * for `columns`: each shard sends its finished rows as the answer's columns, no JSON text made.
 */
import aggregateMerge, { AGGREGATE_STATS, type AggregateStat } from '../merge/aggregate.js';
import aggregateRowsMerge, { RowsMerge } from '../merge/aggregate-rows.js';
import { z } from 'zod';
import aggregateArrowMerge, { STREAM_ARROW_FROM } from '../merge/aggregate-arrow.js';
import { BytesAnswer, defineKind, JsonStream, type KindRuntime } from './kind.js';
import type { RequestLimits } from './limits.js';
import { boundedList, dimension, duration, filterDimensionFields, filterSchema, measure, type PlanFilter } from './schemas.js';
import { checkFilterSpan } from './windows.js';
import { STREAM_ROWS_FROM } from './stream-rows.js';

export interface AggregatePlan {
  kind: 'aggregate';
  filter: PlanFilter;
  /** Dimensions and `window`. */
  group_by: string[];
  metrics: string[];
  /** With a `window` group key: the tumbling window size in ms. */
  window_ms?: number;
  /** A shard whose estimated result cells exceed this answers RESULT_TOO_LARGE. */
  max_cells?: number;
  /** The shard answers its finished rows as JSON text: set when no group can be on two shards. */
  finish?: boolean;
  /**
   * With `finish`: `maxResponseBytes`. A shard whose rows alone are more bytes of JSON answers
   * RESULT_TOO_LARGE instead of sending them (the whole answer would be refused anyway).
   */
  max_bytes?: number;
  /** With `finish`: the shard answers its finished rows as the answer's columns (an Arrow answer), no JSON text. */
  columns?: boolean;
  /** The statistics the answer rows have per metric, in AGGREGATE_STATS order; absent: all. */
  stats?: AggregateStat[];
}

export const AGGREGATE_FORMATS = ['json', 'arrow'] as const;
/** The content type of an Arrow answer (also the export's). */
export const ARROW_STREAM = 'application/vnd.apache.arrow.stream';

/** The request: the shards' plan and how the answer is written (never sent to a shard). */
export interface AggregateRequest extends AggregatePlan {
  format: (typeof AGGREGATE_FORMATS)[number];
}

const groupKey = z.union([z.literal('window'), dimension]);

function oneOrMany<T extends z.ZodType>(item: T, max: number, limitKey: string) {
  return z.union([item.transform((v) => [v]), boundedList(item, max, limitKey, 0)]);
}

function distinct(list: string[], field: string, ctx: z.RefinementCtx): void {
  list.forEach((v, i) => {
    if (list.indexOf(v) !== i) ctx.addIssue({ code: 'custom', path: [field, i], message: `duplicate entry ${JSON.stringify(v)}` });
  });
}

function schema(limits: RequestLimits) {
  return z
    .strictObject({
      groupBy: oneOrMany(groupKey, limits.maxGroupByKeys, 'maxGroupByKeys').nullish(),
      metrics: oneOrMany(measure, 8, 'metrics').nullish(),
      stats: z.array(z.enum(AGGREGATE_STATS)).min(1, `needs at least one of ${AGGREGATE_STATS.join(', ')}`).nullish(),
      filter: filterSchema(limits),
      windowSize: duration.nullish(),
      format: z.enum(AGGREGATE_FORMATS).nullish(),
    })
    .transform((b, ctx): AggregateRequest => {
      const groupBy = b.groupBy ?? [];
      const metrics = b.metrics ?? ['value'];
      distinct(groupBy, 'groupBy', ctx);
      distinct(metrics, 'metrics', ctx);
      const plan: AggregateRequest = { kind: 'aggregate', filter: b.filter, group_by: groupBy, metrics, max_cells: limits.maxResultCells, format: b.format ?? 'json' };
      if (b.stats != null) {
        distinct(b.stats, 'stats', ctx);
        // in the answer's order; all of them is the default (the plan then says nothing)
        if (b.stats.length < AGGREGATE_STATS.length) plan.stats = AGGREGATE_STATS.filter((s) => b.stats!.includes(s));
      }
      // Every user lives on one shard: a group keyed by user_id is on that shard only.
      if (groupBy.includes('user_id')) {
        plan.finish = true;
        plan.max_bytes = limits.maxResponseBytes;
      }
      const hasWindow = groupBy.includes('window');
      if (b.windowSize != null && !hasWindow) ctx.addIssue({ code: 'custom', path: ['windowSize'], message: 'needs a `window` entry in `groupBy`' });
      if (hasWindow) {
        if (b.windowSize == null) ctx.addIssue({ code: 'custom', path: ['windowSize'], message: 'required with a `window` group key (e.g. "1h")' });
        else {
          plan.window_ms = b.windowSize;
          checkFilterSpan(b.filter, b.windowSize, b.windowSize, ctx);
        }
      }
      return plan;
    });
}

export type AggregateInput = z.input<ReturnType<typeof schema>>;

/** The merge spec of an aggregate plan. */
export function aggregateSpec(plan: AggregatePlan) {
  return { groupBy: plan.group_by, metrics: plan.metrics, ...(plan.window_ms ? { windowMs: plan.window_ms } : {}), ...(plan.stats ? { stats: plan.stats } : {}) };
}

export default defineKind<AggregateRequest>({
  name: 'aggregate',
  method: 'POST',
  path: '/query/aggregate',
  input: 'body',
  summary: 'Event count and metric statistics (sum, mean, min, max, stddev, or those named) per group',
  formats: { json: 'application/json', arrow: ARROW_STREAM } satisfies Record<AggregateRequest['format'], string>,
  schema,
  dimensions: (plan) => [
    ...plan.group_by.filter((k) => k !== 'window').map((k): [string, string] => ['groupBy', k]),
    ...filterDimensionFields(plan.filter),
  ],
  async run({ format, ...plan }: AggregateRequest, rt: KindRuntime) {
    if (format === 'arrow') {
      // finished rows as columns: interleaved into the answer's batches (in the pool when large)
      const partials = await rt.fanOut(plan.finish ? { ...plan, columns: true } : plan);
      const spec = { ...aggregateSpec(plan), finish: plan.finish === true };
      // a large one is sent while its later batches are gathered (STREAM_ARROW_FROM says why)
      if (plan.finish && partials.reduce((n, p) => n + p.byteLength, 0) > STREAM_ARROW_FROM) return new BytesAnswer(ARROW_STREAM, [await rt.mergeStream(aggregateArrowMerge, spec, partials)]);
      const out = await rt.merge(aggregateArrowMerge, spec, partials);
      return new BytesAnswer(ARROW_STREAM, out.pieces);
    }
    const partials = await rt.fanOut(plan);
    if (plan.finish) {
      // Finished rows of a large by-user answer (243 MB of JSON at 10 M events) are interleaved
      // as they are sent, in slices on this thread, so the answer goes out while it is merged
      // instead of after; smaller ones in the pool (stream-rows.ts says why).
      if (partials.reduce((n, p) => n + p.byteLength, 0) > STREAM_ROWS_FROM) {
        const merge = new RowsMerge({ groupBy: plan.group_by }, partials);
        return { results: new JsonStream(merge.bytes, (out) => merge.fill(out)) };
      }
      return { results: await rt.mergeJson(aggregateRowsMerge, { groupBy: plan.group_by }, partials, 'rows') };
    }
    return { results: await rt.mergeJson(aggregateMerge, aggregateSpec(plan), partials, 'rows') };
  },
});
