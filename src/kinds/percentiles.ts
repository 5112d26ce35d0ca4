/**
 * GET /query/percentiles: quantiles of a column, global or per group, from merged t-digests or,
 * with `exact=true`, from merged value histograms (polars' linear interpolation).
 *
 * Query parameters: `column` (default `value`), `percentiles` (comma list in [0, 1], default
 * 0.5,0.95,0.99; duplicates collapse; at most maxPercentiles), `groupBy` (a dimension), `exact`
 * (boolean), and the common filter: `from`, `to`, `event_type`, `user_id`.
 *
 * Answer: `{column, percentiles: {p50, p95, …}, count}` (`p99.5` for 0.995), or with groupBy
 * `{column, groupBy, results: [{<groupBy>, count, percentiles}]}`; plus `exact` and
 * `interpolation` or `compression`.
 *
 * Partial (python/engine_polars/ops/percentiles.py), sorted by group (nulls last):
 * - digest: one row per centroid: `group_key` LargeUtf8 (only with `group_by`), `count` Int64,
 *   `min` Float64, `max` Float64 (the group's, on every row), `mean` Float64, `weight` Int64;
 * - exact: one row per distinct (group, value): `group_key` LargeUtf8 (with `group_by`),
 *   `value` Float64, `count` Int64.
 * Only finite values count; groups without one have no rows.
 */
import percentilesMerge from '../merge/percentiles.js';
import { z } from 'zod';
import { percentileKey, type PercentileGroup } from '../merge/percentiles.js';
import { DEFAULT_COMPRESSION } from '../merge/tdigest.js';
import { defineKind } from './kind.js';
import { BUILTIN, type RequestLimits } from './limits.js';
import { boundedList, dimension, filterDimensionFields, fromQueryList, fromQueryNumber, measure, queryBoolean, queryFilter, queryFilterFields, type PlanFilter } from './schemas.js';

export const DEFAULT_PERCENTILES = [0.5, 0.95, 0.99];

export interface PercentilesPlan {
  kind: 'percentiles';
  filter: PlanFilter;
  column: string;
  /** A dimension, or null for one global group. */
  group_by: string | null;
  exact: boolean;
  /** Digest compression δ (ignored with `exact`). */
  compression: number;
  max_cells?: number;
}

export interface PercentilesRequest {
  plan: PercentilesPlan;
  /** Quantiles in [0, 1], distinct by key, in request order. */
  percentiles: number[];
}

/** The quantile list: numbers in [0, 1], at most maxPercentiles, duplicates (same key) collapsed. */
export const percentileList = fromQueryList(boundedList(fromQueryNumber(z.number().min(0).max(1)), BUILTIN.maxPercentiles, 'maxPercentiles')).transform((qs) => {
  const seen = new Set<string>();
  return qs.filter((q) => !seen.has(percentileKey(q)) && seen.add(percentileKey(q)));
});

function schema(limits: RequestLimits) {
  return z
    .strictObject({
      column: measure.optional(),
      percentiles: percentileList.optional(),
      groupBy: dimension.optional(),
      exact: queryBoolean.optional(),
      ...queryFilterFields(limits),
    })
    .transform((q, ctx): PercentilesRequest => ({
      plan: {
        kind: 'percentiles',
        filter: queryFilter(q, ctx),
        column: q.column ?? 'value',
        group_by: q.groupBy ?? null,
        exact: q.exact ?? false,
        compression: DEFAULT_COMPRESSION,
        ...(q.groupBy ? { max_cells: limits.maxResultCells } : {}),
      },
      percentiles: q.percentiles ?? DEFAULT_PERCENTILES,
    }));
}

export type PercentilesInput = z.input<ReturnType<typeof schema>>;

export default defineKind<PercentilesRequest>({
  name: 'percentiles',
  method: 'GET',
  path: '/query/percentiles',
  input: 'query',
  summary: 'Percentiles of a column, global or per group: merged t-digests, or exact',
  schema,
  dimensions: (r) => [...(r.plan.group_by ? [['groupBy', r.plan.group_by] as [string, string]] : []), ...filterDimensionFields(r.plan.filter)],
  async run({ plan, percentiles }, rt) {
    const partials = await rt.fanOut(plan);
    const spec = { groupBy: plan.group_by, exact: plan.exact, percentiles, compression: plan.compression };
    const groups = (await rt.merge(percentilesMerge, spec, partials)) as PercentileGroup[];
    const method = plan.exact ? { exact: true, interpolation: 'linear' } : { exact: false, compression: plan.compression };
    const body =
      plan.group_by === null
        ? { column: plan.column, percentiles: groups[0]!.percentiles, count: groups[0]!.count }
        : { column: plan.column, groupBy: plan.group_by, results: groups.map((g) => ({ [plan.group_by!]: g.key, count: g.count, percentiles: g.percentiles })) };
    return { ...body, ...method };
  },
});
