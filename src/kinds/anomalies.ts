/**
 * GET /query/anomalies: events whose z-score |z| > threshold, in two fan-outs.
 *
 * Query parameters: `column` (`value`), `threshold` (> 0, default 3), `limit` (1..anomaliesMaxLimit,
 * default 100), `groupBy` (a dimension: z within each group), `ddof` (1 sample, default; 0
 * population), and the common filter: `from`, `to`, `event_type`, `user_id`.
 *
 * Answer: `{anomalies: [event + z_score (+ group)], count, mean, stddev, values}` (with groupBy:
 * `groups: [{<groupBy>, mean, stddev, count}]` instead of mean/stddev/values), `stddev_kind`,
 * `ddof`, `column`, `threshold`, `limit`, `groupBy`.
 *
 * Phase 1 is an `aggregate` plan (moments of `column`, per group, bounded by max_cells); its
 * merged moments give each group's mean and standard deviation. Phase 2 is the `anomalies`
 * plan; each shard gets ONLY the usable groups it holds, as the Arrow IPC body of its query
 * (`key` Utf8, `mean` Float64, `stddev` Float64), never in the JSON plan.
 *
 * Partial of phase 2 (python/engine_polars/ops/anomalies.py): `timestamp` Int64, `event_type`
 * LargeUtf8, `user_id` LargeUtf8, `value` Float64, `metadata` LargeUtf8, `z_score` Float64,
 * `group_key` LargeUtf8 (only with `group_by`), `total` Int64 (the shard's anomaly count, on
 * every row), sorted by |z| descending, then timestamp, user_id, event_type, z, metadata
 * ascending.
 */
import anomaliesMerge from '../merge/anomalies.js';
import { z } from 'zod';
import type { AnomalyEvents, AnomalyMomentsOut } from '../merge/anomalies.js';
import type { AggregatePlan } from './aggregate.js';
import { defineKind } from './kind.js';
import { BUILTIN, type RequestLimits } from './limits.js';
import { dimension, filterDimensionFields, fromQueryNumber, measure, queryFilter, queryFilterFields, type PlanFilter } from './schemas.js';

export interface AnomaliesPlan {
  kind: 'anomalies';
  filter: PlanFilter;
  column: string;
  /** A dimension, or null for one global group. */
  group_by: string | null;
  threshold: number;
  limit: number;
}

export interface AnomaliesRequest {
  column: string;
  threshold: number;
  limit: number;
  groupBy: string | null;
  ddof: 0 | 1;
  filter: PlanFilter;
}

function schema(limits: RequestLimits) {
  return z
    .strictObject({
      column: measure.optional(),
      threshold: fromQueryNumber(z.number().gt(0)).optional(),
      limit: fromQueryNumber(z.int().min(1).max(BUILTIN.anomaliesMaxLimit)).optional(),
      groupBy: dimension.optional(),
      ddof: z.enum(['0', '1']).optional(),
      ...queryFilterFields(limits),
    })
    .transform(
      (q, ctx): AnomaliesRequest => ({
        column: q.column ?? 'value',
        threshold: q.threshold ?? 3,
        limit: q.limit ?? 100,
        groupBy: q.groupBy ?? null,
        ddof: q.ddof === '0' ? 0 : 1,
        filter: queryFilter(q, ctx),
      }),
    );
}

export type AnomaliesInput = z.input<ReturnType<typeof schema>>;

export default defineKind<AnomaliesRequest>({
  name: 'anomalies',
  method: 'GET',
  path: '/query/anomalies',
  input: 'query',
  summary: 'Events whose z-score exceeds a threshold, globally or within each group',
  schema,
  dimensions: (r) => [...(r.groupBy ? [['groupBy', r.groupBy] as [string, string]] : []), ...filterDimensionFields(r.filter)],
  async run(req, rt) {
    const moments: AggregatePlan = {
      kind: 'aggregate',
      filter: req.filter,
      group_by: req.groupBy === null ? [] : [req.groupBy],
      metrics: [req.column],
      max_cells: rt.limits.maxResultCells,
    };
    const phase1 = await rt.fanOut(moments);
    const { groups, usable, bodies } = (await rt.merge(anomaliesMerge, { phase: 'moments', groupBy: req.groupBy, column: req.column, ddof: req.ddof }, phase1)) as AnomalyMomentsOut;
    let events: AnomalyEvents = { anomalies: [], count: 0 };
    if (usable > 0) {
      const plan: AnomaliesPlan = { kind: 'anomalies', filter: req.filter, column: req.column, group_by: req.groupBy, threshold: req.threshold, limit: req.limit };
      const partials = await rt.fanOut(plan, bodies);
      events = (await rt.merge(anomaliesMerge, { phase: 'events', groupBy: req.groupBy, limit: req.limit }, partials)) as AnomalyEvents;
    }
    const summary =
      req.groupBy === null
        ? { mean: groups[0]?.mean ?? null, stddev: groups[0]?.stddev ?? null, values: groups[0]?.count ?? 0 }
        : { groups: groups.map((g) => ({ [req.groupBy!]: g.key, mean: g.mean, stddev: g.stddev, count: g.count })) };
    return {
      anomalies: events.anomalies,
      count: events.count,
      ...summary,
      stddev_kind: req.ddof === 1 ? 'sample' : 'population',
      ddof: req.ddof,
      column: req.column,
      threshold: req.threshold,
      limit: req.limit,
      ...(req.groupBy !== null ? { groupBy: req.groupBy } : {}),
    };
  },
});
