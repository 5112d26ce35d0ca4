/**
 * GET /query/anomalies query string → the two plans of an anomaly query.
 *
 * Phase 1 is an `aggregate` plan (moments of `column`, per group with `groupBy`); its merged
 * moments give each group's mean and standard deviation (sample, ddof = 1, by default as in
 * pandas/polars; `ddof=0` for population). Phase 2 is the `anomalies` plan below: every shard
 * returns its events with |z| > threshold, z = (value − mean) / stddev, its top `limit` by |z|
 * and the count of all of them (python/engine_polars/ops/anomalies.py).
 *
 * Partial of phase 2: `timestamp` Int64, `event_type` Utf8, `user_id` Utf8, `value` Float64,
 * `metadata` Utf8, `z_score` Float64, `group_key` Utf8 (only with `group_by`), `total` Int64
 * (the shard's anomaly count, the same on every row), sorted by |z| descending, then timestamp,
 * user_id, event_type, z, metadata ascending.
 */
import type { EnrichmentCatalog } from './dimensions.js';
import { parseDimension } from './dimensions.js';
import type { AggregatePlan, PlanFilter } from './plan.js';
import { enumField, numberField, queryFields, stringListField, type Fields } from './request-fields.js';
import { badRequest } from '../router/http-error.js';
import { parseTimestamp } from '../router/validate-event.js';

export const ANOMALY_COLUMNS = ['value'] as const;
export const ANOMALIES_MAX_LIMIT = 10_000;
const PARAMS = ['column', 'threshold', 'limit', 'groupBy', 'ddof', 'from', 'to', 'event_type', 'user_id'];

/** Mean and standard deviation of one group, sent to the shards in phase 2 (stddev > 0). */
export interface GroupMomentsSpec {
  key: string | null;
  mean: number;
  stddev: number;
}

export interface AnomaliesPlan {
  kind: 'anomalies';
  filter: PlanFilter;
  column: string;
  /** A dimension, or null for one global group. */
  group_by: string | null;
  threshold: number;
  limit: number;
  /** Groups that can have anomalies (≥ 2 values and stddev > 0); others have none. */
  groups: GroupMomentsSpec[];
}

export interface AnomaliesRequest {
  column: string;
  threshold: number;
  limit: number;
  groupBy: string | null;
  ddof: 0 | 1;
  filter: PlanFilter;
}

function bound(raw: unknown, field: string): number | undefined {
  if (raw === undefined) return undefined;
  const text = String(raw);
  const ts = parseTimestamp(/^-?\d+$/.test(text) ? Number(text) : text);
  if (typeof ts === 'string') throw badRequest(`\`${field}\`: ${ts}`, [{ field, reason: ts }]);
  return ts;
}

/** The common filter as query parameters: `from`, `to` (epoch ms or ISO-8601), `event_type`, `user_id` (comma lists). */
export function parseQueryFilter(q: Fields): PlanFilter {
  const out: PlanFilter = {};
  const from = bound(q.from, 'from');
  const to = bound(q.to, 'to');
  if (from !== undefined) out.from = from;
  if (to !== undefined) out.to = to;
  if (from !== undefined && to !== undefined && from > to) throw badRequest(`\`from\` (${from}) is after \`to\` (${to})`, [{ field: 'from', reason: 'after to' }]);
  if (q.event_type !== undefined) out.event_types = stringListField(q.event_type, 'event_type');
  if (q.user_id !== undefined) out.user_ids = stringListField(q.user_id, 'user_id');
  return out;
}

export function parseAnomaliesRequest(url: string, catalog?: EnrichmentCatalog): AnomaliesRequest {
  const q = queryFields(url, PARAMS);
  const threshold = numberField(q.threshold, 'threshold', { fallback: 3 });
  if (!(threshold > 0)) throw badRequest(`\`threshold\`: expected > 0, got ${threshold}`, [{ field: 'threshold', reason: 'must be > 0' }]);
  const ddof = enumField(q.ddof, 'ddof', ['0', '1'] as const, '1');
  return {
    column: enumField(q.column, 'column', ANOMALY_COLUMNS, 'value'),
    threshold,
    limit: numberField(q.limit, 'limit', { min: 1, max: ANOMALIES_MAX_LIMIT, integer: true, fallback: 100 }),
    groupBy: q.groupBy === undefined ? null : parseDimension(q.groupBy, 'groupBy', catalog),
    ddof: ddof === '0' ? 0 : 1,
    filter: parseQueryFilter(q),
  };
}

/** Phase 1: moments of the column, per group. */
export function anomalyMomentsPlan(req: AnomaliesRequest): AggregatePlan {
  return { kind: 'aggregate', filter: req.filter, group_by: req.groupBy === null ? [] : [req.groupBy], metrics: [req.column] };
}

/** Phase 2: the events beyond the threshold, given the usable groups' moments. */
export function anomaliesPlan(req: AnomaliesRequest, groups: GroupMomentsSpec[]): AnomaliesPlan {
  return { kind: 'anomalies', filter: req.filter, column: req.column, group_by: req.groupBy, threshold: req.threshold, limit: req.limit, groups };
}
