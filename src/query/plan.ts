/**
 * Query plans: the JSON a shard sends to its polars process in a `query` frame (`header.plan`).
 * Keys are snake_case because they cross into Python. The Python side of this contract is
 * `python/engine_polars/plan.py`; every kind here has a handler in `python/engine_polars/ops/`.
 */

/** Row filter shared by every plan. Bounds are epoch ms, `from` inclusive, `to` exclusive. */
export interface PlanFilter {
  from?: number;
  to?: number;
  event_types?: string[];
  user_ids?: string[];
}

/** Group-by keys: event columns (`event_type`, `user_id`). */
export type GroupKey = string;

/**
 * Aggregate partial. The answer is an Arrow IPC stream with one row per group:
 *   <each group key> Utf8 (nullable)
 *   count            Int64   events in the group
 *   <m>__count       Int64   non-null values of metric m
 *   <m>__sum         Float64 (null when <m>__count = 0, likewise below)
 *   <m>__min         Float64
 *   <m>__max         Float64
 *   <m>__mean        Float64
 *   <m>__m2          Float64 sum of squared deviations from the group mean
 * With no group keys the partial has exactly one row (count 0 on an empty shard).
 */
export interface AggregatePlan {
  kind: 'aggregate';
  filter: PlanFilter;
  group_by: GroupKey[];
  metrics: string[];
}

export type QueryPlan = AggregatePlan;
export type QueryKind = QueryPlan['kind'];
