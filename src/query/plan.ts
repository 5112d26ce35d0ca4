/**
 * Query plans: the JSON a shard sends to its polars process in a `query` frame (`header.plan`).
 * Keys are snake_case because they cross into Python. Each kind's plan type lives beside its
 * request parser (`src/query/<kind>-request.ts`); its Python handler is
 * `python/engine_polars/ops/<kind>.py`, and its partial schema is documented in both.
 */
import type { AnomaliesPlan } from './anomalies-request.js';
import type { CustomPlan } from './custom-request.js';
import type { EnrichmentPlan } from './enrichment-request.js';
import type { ExportPlan } from './export-request.js';
import type { FunnelPlan } from './funnel-request.js';
import type { PercentilesPlan } from './percentiles-request.js';
import type { SummaryPlan } from './summary-request.js';
import type { TopNPlan } from './topn-request.js';
import type { WindowPlan } from './window-request.js';

/** Row filter shared by every plan. Bounds are epoch ms, `from` inclusive, `to` exclusive. */
export interface PlanFilter {
  from?: number;
  to?: number;
  event_types?: string[];
  user_ids?: string[];
  /** Equality on `metadata.<key>` / `<table>.<column>` (src/query/filter.ts); null matches missing. */
  dimensions?: Record<string, Array<string | null>>;
}

/** Group-by keys: `event_type`, `user_id`, `metadata.<key>`, `<table>.<column>` (src/query/dimensions.ts). */
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
  /** With a `window` group key: the tumbling window size in ms (window start = floor(ts / size) * size). */
  window_ms?: number;
}

export type QueryPlan =
  | AggregatePlan
  | WindowPlan
  | PercentilesPlan
  | TopNPlan
  | AnomaliesPlan
  | FunnelPlan
  | SummaryPlan
  | EnrichmentPlan
  | CustomPlan
  | ExportPlan;
export type QueryKind = QueryPlan['kind'];
