/**
 * GET /query/summary: count, moments, quartiles, distinct users and event types and the time
 * range, from three plans sent in one `query_many` round trip per shard:
 * 1. the `summary` plan below (counts, moments, distinct users, time range; one row per shard);
 * 2. an `aggregate` plan grouped by `event_type` with no metrics (the shard's set of event types);
 * 3. a `percentiles` digest plan per column (the quartiles).
 *
 * Query parameters: `columns` (comma list of measures, default `value`), and the common filter:
 * `from`, `to`, `event_type`, `user_id`.
 *
 * Answer: `{stats}` (src/merge/summary.ts `SummaryStats`).
 *
 * Partial of the `summary` plan (python/engine_polars/ops/summary.py), exactly one row:
 * `count`, `rows_held`, `distinct_users`, `first_timestamp`, `last_timestamp` Int64 (timestamps
 * null when nothing matches), and per column c: `c__count`, `c__null_count` Int64, `c__sum`,
 * `c__min`, `c__max`, `c__mean`, `c__m2` Float64 (null when `c__count` is 0).
 */
import summaryMerge from '../merge/summary.js';
import { z } from 'zod';
import { DEFAULT_COMPRESSION } from '../merge/tdigest.js';
import type { AggregatePlan } from './aggregate.js';
import { defineKind } from './kind.js';
import type { RequestLimits } from './limits.js';
import type { PercentilesPlan } from './percentiles.js';
import { MEASURES, filterDimensionFields, fromQueryList, measure, queryFilter, queryFilterFields, type PlanFilter } from './schemas.js';

export interface SummaryPlan {
  kind: 'summary';
  filter: PlanFilter;
  /** Distinct measure columns, at least one. */
  columns: string[];
}

export interface SummaryRequest {
  columns: string[];
  filter: PlanFilter;
}

function schema(limits: RequestLimits) {
  return z
    .strictObject({
      columns: fromQueryList(z.array(measure).min(1).max(MEASURES.length)).optional(),
      ...queryFilterFields(limits),
    })
    .transform((q, ctx): SummaryRequest => {
      const columns = q.columns ?? ['value'];
      columns.forEach((c, i) => {
        if (columns.indexOf(c) !== i) ctx.addIssue({ code: 'custom', path: ['columns'], message: `${JSON.stringify(c)} is named twice` });
      });
      return { columns, filter: queryFilter(q, ctx) };
    });
}

export type SummaryInput = z.input<ReturnType<typeof schema>>;

/** The plans of one summary, in the order the merge expects their partials. */
export function summaryPlans(req: SummaryRequest): [SummaryPlan, AggregatePlan, ...PercentilesPlan[]] {
  return [
    { kind: 'summary', filter: req.filter, columns: req.columns },
    { kind: 'aggregate', filter: req.filter, group_by: ['event_type'], metrics: [] },
    ...req.columns.map((column): PercentilesPlan => ({ kind: 'percentiles', filter: req.filter, column, group_by: null, exact: false, compression: DEFAULT_COMPRESSION })),
  ];
}

export default defineKind<SummaryRequest>({
  name: 'summary',
  method: 'GET',
  path: '/query/summary',
  input: 'query',
  summary: 'Count, mean, stddev, min, max, quartiles, distinct users and event types, time range',
  schema,
  dimensions: (r) => filterDimensionFields(r.filter),
  async run(req, rt) {
    const perPlan = await rt.fanOutMany(summaryPlans(req));
    const stats = await rt.merge(summaryMerge, { columns: req.columns, shards: rt.shardCount }, perPlan.flat());
    return { stats };
  },
});
