/**
 * POST /query/top-n: the exact top N groups of any dimension.
 *
 * Request (seed shape `{groupBy, metric, n}`, score `<metric>_sum`): `groupBy` (a dimension,
 * required), `aggFunc` (sum, count, mean, max; default sum), `metric` (`value`; not needed for
 * count), `n` (1..topnMaxN, default 10), `order` (desc | asc), `filter`.
 *
 * Answer: `{results: [row], groupBy, metric, aggFunc, n, order}` (src/merge/topn.ts gives the rows).
 *
 * Exactness: by `user_id` (the shard key, every user on exactly one shard) each shard returns
 * only its own top n (`shard_top`); by any other dimension every shard returns all its groups
 * (bounded by `max_cells`) and the merge adds them up by key before ranking.
 *
 * Partial (python/engine_polars/ops/topn.py), one row per group, key column named like the
 * dimension: `<groupBy>` LargeUtf8, `count` Int64, and with a metric `<m>__count` Int64,
 * `<m>__sum|min|max|mean|m2` Float64 (null when `<m>__count` is 0).
 */
import topnMerge from '../merge/topn.js';
import { z } from 'zod';
import { TOPN_AGGS, TOPN_ORDERS, type TopNAgg, type TopNOrder } from '../merge/topn.js';
import { defineKind } from './kind.js';
import { BUILTIN, type RequestLimits } from './limits.js';
import { dimension, filterDimensionFields, filterSchema, measure, type PlanFilter } from './schemas.js';

export interface TopNPlan {
  kind: 'topn';
  filter: PlanFilter;
  group_by: string;
  /** Null only for `count` without a metric. */
  metric: string | null;
  agg: TopNAgg;
  n: number;
  order: TopNOrder;
  /** True when grouping by the shard key: each shard then returns only its own top n. */
  shard_top: boolean;
  max_cells?: number;
}

function schema(limits: RequestLimits) {
  return z
    .strictObject({
      groupBy: dimension,
      metric: measure.nullish(),
      aggFunc: z.enum(TOPN_AGGS).nullish(),
      n: z.int().min(1).max(BUILTIN.topnMaxN).nullish(),
      order: z.enum(TOPN_ORDERS).nullish(),
      filter: filterSchema(limits),
    })
    .transform((b): TopNPlan => {
      const agg = b.aggFunc ?? 'sum';
      const shardTop = b.groupBy === 'user_id';
      return {
        kind: 'topn',
        filter: b.filter,
        group_by: b.groupBy,
        // `count` counts events, so it needs no metric; the others default to `value`.
        metric: b.metric ?? (agg === 'count' ? null : 'value'),
        agg,
        n: b.n ?? 10,
        order: b.order ?? 'desc',
        shard_top: shardTop,
        ...(shardTop ? {} : { max_cells: limits.maxResultCells }),
      };
    });
}

export type TopNInput = z.input<ReturnType<typeof schema>>;

export default defineKind<TopNPlan>({
  name: 'topn',
  method: 'POST',
  path: '/query/top-n',
  input: 'body',
  summary: 'The exact top N groups of any dimension by sum, count, mean or max',
  schema,
  dimensions: (plan) => [['groupBy', plan.group_by], ...filterDimensionFields(plan.filter)],
  async run(plan, rt) {
    const partials = await rt.fanOut(plan);
    const spec = { groupBy: plan.group_by, metric: plan.metric, aggFunc: plan.agg, n: plan.n, order: plan.order };
    const { results } = await rt.merge(topnMerge, spec, partials);
    return { results, groupBy: plan.group_by, metric: plan.metric, aggFunc: plan.agg, n: plan.n, order: plan.order };
  },
});
