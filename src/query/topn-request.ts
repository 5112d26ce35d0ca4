/**
 * POST /query/top-n body → `topn` plan. Seed shape `{groupBy, metric, n}` (score `<metric>_sum`),
 * plus `aggFunc`, `order` and the common `filter`.
 *
 * Exactness: by `user_id` (the shard key, every user on exactly one shard) each shard returns
 * only its own top `n` (`shard_top`); by any other dimension every shard returns all its groups
 * and the merge adds them up by key before ranking, so a key spread thinly over many shards is
 * still scored on all its events.
 *
 * Partial (python/engine_polars/ops/topn.py), one row per group, key column named like the
 * dimension: `<groupBy>` Utf8, `count` Int64 (events), and with a metric `<m>__count` Int64
 * (non-null values), `<m>__sum|min|max|mean|m2` Float64 (null when `<m>__count` is 0).
 */
import type { EnrichmentCatalog } from './dimensions.js';
import { parseDimension } from './dimensions.js';
import { parseFilter } from './filter.js';
import type { PlanFilter } from './plan.js';
import { enumField, numberField, requireFields } from './request-fields.js';
import { badRequest } from '../router/http-error.js';

export const TOPN_AGGS = ['sum', 'count', 'mean', 'max'] as const;
export type TopNAgg = (typeof TOPN_AGGS)[number];
export const TOPN_ORDERS = ['desc', 'asc'] as const;
export type TopNOrder = (typeof TOPN_ORDERS)[number];
export const TOPN_MAX_N = 10_000;
const METRICS = ['value'] as const;
const FIELDS = ['groupBy', 'metric', 'aggFunc', 'n', 'order', 'filter'];

export interface TopNPlan {
  kind: 'topn';
  filter: PlanFilter;
  /** Dimension ranked: event_type, user_id, metadata.<key>, <table>.<column>. */
  group_by: string;
  /** Null only for `count` without a metric. */
  metric: string | null;
  agg: TopNAgg;
  n: number;
  order: TopNOrder;
  /** True when grouping by the shard key: each shard then returns only its own top n. */
  shard_top: boolean;
}

export function parseTopNRequest(body: unknown, catalog?: EnrichmentCatalog): TopNPlan {
  const obj = requireFields(body, FIELDS);
  if (obj.groupBy === undefined || obj.groupBy === null) {
    throw badRequest('`groupBy`: required (event_type, user_id, metadata.<key> or <table>.<column>)', [{ field: 'groupBy', reason: 'required' }]);
  }
  if (typeof obj.n === 'string') throw badRequest(`\`n\`: expected an integer, got ${JSON.stringify(obj.n)}`, [{ field: 'n', reason: 'expected a number, got a string' }]);
  const groupBy = parseDimension(obj.groupBy, 'groupBy', catalog);
  const agg = enumField(obj.aggFunc, 'aggFunc', TOPN_AGGS, 'sum');
  // `count` counts events, so it needs no metric; the others default to `value`.
  const metric = obj.metric === undefined || obj.metric === null ? (agg === 'count' ? null : 'value') : enumField(obj.metric, 'metric', METRICS);
  return {
    kind: 'topn',
    filter: parseFilter(obj.filter, 'filter', catalog),
    group_by: groupBy,
    metric,
    agg,
    n: numberField(obj.n, 'n', { min: 1, max: TOPN_MAX_N, integer: true, fallback: 10 }),
    order: enumField(obj.order, 'order', TOPN_ORDERS, 'desc'),
    shard_top: groupBy === 'user_id',
  };
}
