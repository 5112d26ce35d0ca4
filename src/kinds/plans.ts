/**
 * Every plan a shard may be sent: the JSON of a `query` frame (`header.plan`). Keys are snake_case
 * because they cross into Python, where `python/engine_polars/ops/<kind>.py` parses and runs each
 * one. Each plan type lives beside its kind; this is only their union.
 */
import type { AggregatePlan } from './aggregate.js';
import type { AnomaliesPlan } from './anomalies.js';
import type { CustomPlan } from './custom.js';
import type { ExportPlan } from './export.js';
import type { FunnelPlan } from './funnel.js';
import type { PercentilesPlan } from './percentiles.js';
import type { SummaryPlan } from './summary.js';
import type { TopNPlan } from './topn.js';
import type { WindowPlan } from './window.js';

export type { PlanFilter } from './schemas.js';

export type QueryPlan = AggregatePlan | WindowPlan | PercentilesPlan | TopNPlan | AnomaliesPlan | FunnelPlan | SummaryPlan | CustomPlan | ExportPlan;
export type PlanKind = QueryPlan['kind'];
