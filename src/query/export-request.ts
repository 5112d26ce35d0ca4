/**
 * GET /query/export?format=ndjson|arrow[&from&to&event_type&user_id][&limit=N][&pageSize=N] →
 * export request. Filter parameters are those of the common `filter` (`event_type` and `user_id`
 * take comma-separated lists). The route pages through the shards one at a time with `export`
 * plans (src/router/routes/export.ts).
 *
 * Partial (python/engine_polars/ops/export.py): one page of events, columns exactly as stored:
 * `timestamp` Int64 (epoch ms), `event_type` Utf8, `user_id` Utf8, `value` Float64 (nullable),
 * `metadata` Utf8 (JSON object text, nullable), in (timestamp, arrival) order. Pages are keyed,
 * not offset: `after` = (timestamp of the last event returned, how many events at exactly that
 * timestamp have been returned so far).
 */
import { badRequest } from '../router/http-error.js';
import { parseTimestamp } from '../router/validate-event.js';
import type { PlanFilter } from './plan.js';
import { enumField, numberField, queryFields } from './request-fields.js';

export const EXPORT_FORMATS = ['ndjson', 'arrow'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const EXPORT_DEFAULT_PAGE = 50_000;
/** Largest page a shard is asked for (the Python side enforces the same bound). */
export const EXPORT_MAX_PAGE = 100_000;
/** Smallest page: each page is a scan of the shard, so tiny pages would make an export quadratic. */
export const EXPORT_MIN_PAGE = 100;
const PARAMS = ['format', 'from', 'to', 'event_type', 'user_id', 'limit', 'pageSize'];

export interface ExportCursor {
  timestamp: number;
  /** Events at exactly `timestamp` already returned. */
  skip: number;
}

export interface ExportPlan {
  kind: 'export';
  filter: PlanFilter;
  limit: number;
  after: ExportCursor | null;
}

export interface ExportRequest {
  format: ExportFormat;
  filter: PlanFilter;
  /** Most events in the whole export; null for all. */
  limit: number | null;
  pageSize: number;
}

function bound(raw: string, field: string): number {
  const ts = parseTimestamp(/^-?\d+$/.test(raw) ? Number(raw) : raw);
  if (typeof ts === 'string') throw badRequest(`\`${field}\`: ${ts}`, [{ field, reason: ts }]);
  return ts;
}

function names(raw: string, field: string): string[] {
  const items = raw.split(',').map((s) => s.trim());
  if (items.some((s) => s.length === 0)) {
    throw badRequest(`\`${field}\`: expected a comma-separated list of non-empty names, got ${JSON.stringify(raw)}`, [{ field, reason: 'empty name' }]);
  }
  return items;
}

/** The filter from top-level query parameters (errors name the parameter, e.g. `from`). */
function queryFilter(q: Record<string, unknown>): PlanFilter {
  const out: PlanFilter = {};
  if (q.from !== undefined) out.from = bound(q.from as string, 'from');
  if (q.to !== undefined) out.to = bound(q.to as string, 'to');
  if (out.from !== undefined && out.to !== undefined && out.from > out.to) {
    throw badRequest(`\`from\` (${out.from}) is after \`to\` (${out.to})`, [{ field: 'from', reason: 'after to' }]);
  }
  if (q.event_type !== undefined) out.event_types = names(q.event_type as string, 'event_type');
  if (q.user_id !== undefined) out.user_ids = names(q.user_id as string, 'user_id');
  return out;
}

export function parseExportRequest(url: string): ExportRequest {
  const q = queryFields(url, PARAMS);
  return {
    format: enumField(q.format, 'format', EXPORT_FORMATS, 'ndjson'),
    filter: queryFilter(q),
    limit: q.limit === undefined ? null : numberField(q.limit, 'limit', { min: 1, max: Number.MAX_SAFE_INTEGER, integer: true }),
    pageSize: numberField(q.pageSize, 'pageSize', { min: EXPORT_MIN_PAGE, max: EXPORT_MAX_PAGE, integer: true, fallback: EXPORT_DEFAULT_PAGE }),
  };
}

/** The plan for the next page of one shard. */
export function exportPagePlan(req: ExportRequest, after: ExportCursor | null, limit: number): ExportPlan {
  return { kind: 'export', filter: req.filter, limit, after };
}
