/**
 * GET /query/summary query string → the three plans of a summary, sent in one `query_many`
 * round trip per shard:
 * 1. the `summary` plan below (counts, moments, distinct users, time range; one row per shard);
 * 2. an `aggregate` plan grouped by `event_type` with no metrics (the shard's set of event types);
 * 3. a `percentiles` digest plan per column (the quartiles).
 *
 * Parameters: `columns` (comma list of measures, default `value`), and the common filter:
 * `from`, `to` (epoch ms or ISO-8601), `event_type`, `user_id` (comma lists).
 *
 * Partial of the `summary` plan (python/engine_polars/ops/summary.py), exactly one row:
 * `count`, `rows_held`, `distinct_users`, `first_timestamp`, `last_timestamp` Int64 (timestamps
 * null when nothing matches), and per column c: `c__count`, `c__null_count` Int64, `c__sum`,
 * `c__min`, `c__max`, `c__mean`, `c__m2` Float64 (null when `c__count` is 0).
 */
import type { AggregatePlan, PlanFilter } from './plan.js';
import { parseQueryStringFilter, type PercentilesPlan } from './percentiles-request.js';
import { queryFields, stringListField } from './request-fields.js';
import { badRequest } from '../router/http-error.js';
import { DEFAULT_COMPRESSION } from '../merge/tdigest.js';

export const SUMMARY_COLUMNS = ['value'] as const;
const PARAMS = ['columns', 'from', 'to', 'event_type', 'user_id'];

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

export function parseSummaryRequest(url: string): SummaryRequest {
  const q = queryFields(url, PARAMS);
  const columns = stringListField(q.columns, 'columns', { fallback: ['value'] });
  const seen = new Set<string>();
  for (const c of columns) {
    if (!(SUMMARY_COLUMNS as readonly string[]).includes(c)) {
      throw badRequest(`\`columns\`: unknown column ${JSON.stringify(c)}; expected ${SUMMARY_COLUMNS.join(', ')}`, [{ field: 'columns', reason: `unknown column ${c}` }]);
    }
    if (seen.has(c)) throw badRequest(`\`columns\`: ${JSON.stringify(c)} is named twice`, [{ field: 'columns', reason: `duplicate ${c}` }]);
    seen.add(c);
  }
  return { columns, filter: parseQueryStringFilter(q) };
}

/** The plans of one summary, in the order the merge expects their partials. */
export function summaryPlans(req: SummaryRequest): [SummaryPlan, AggregatePlan, ...PercentilesPlan[]] {
  return [
    { kind: 'summary', filter: req.filter, columns: req.columns },
    { kind: 'aggregate', filter: req.filter, group_by: ['event_type'], metrics: [] },
    ...req.columns.map(
      (column): PercentilesPlan => ({ kind: 'percentiles', filter: req.filter, column, group_by: null, exact: false, compression: DEFAULT_COMPRESSION }),
    ),
  ];
}
