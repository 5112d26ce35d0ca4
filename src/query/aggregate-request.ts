/**
 * POST /query/aggregate body → aggregate plan. Seed shape: `{groupBy: [...], metrics: [...]}`
 * plus the common `filter` and `windowSize` (for a `window` group key). Unknown fields, group
 * keys and metrics are 400s naming them.
 *
 * Group keys: any dimension (src/query/dimensions.ts: `event_type`, `user_id`,
 * `metadata.<key>`, `<table>.<column>`; a missing value is the null group) and `window`, the
 * tumbling event-time window of `windowSize` aligned to the epoch (answer keys `window_start`
 * and `window_end`, epoch ms).
 */
import { badRequest } from '../router/http-error.js';
import type { EnrichmentCatalog } from './dimensions.js';
import { parseDimension } from './dimensions.js';
import { parseFilter } from './filter.js';
import type { AggregatePlan } from './plan.js';
import { durationField } from './request-fields.js';
import { MAX_WINDOWS, tooManyWindows, windowsSpanned } from './window-request.js';

export const AGGREGATE_GROUP_KEYS = ['event_type', 'user_id', 'window', 'metadata.<key>', '<table>.<column>'];
export const METRIC_COLUMNS = ['value'];
const FIELDS = ['groupBy', 'metrics', 'filter', 'windowSize'];
const MAX_WINDOW_MS = 366 * 86_400_000;

function list(raw: unknown, field: string, fallback: string[]): unknown[] {
  if (raw === undefined || raw === null) return fallback;
  const items = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(items)) throw badRequest(`\`${field}\` must be a list of strings`, [{ field, reason: `got ${typeof raw}` }]);
  return items;
}

function unknownEntry(field: string, v: unknown, allowed: string[]): Error {
  return badRequest(`unknown ${field} entry ${JSON.stringify(v)}; allowed: ${allowed.join(', ')}`, [{ field, reason: `unknown ${JSON.stringify(v)}` }]);
}

function distinct(items: string[], field: string): string[] {
  const seen = new Set<string>();
  for (const v of items) {
    if (seen.has(v)) throw badRequest(`duplicate ${field} entry ${JSON.stringify(v)}`, [{ field, reason: `duplicate ${JSON.stringify(v)}` }]);
    seen.add(v);
  }
  return items;
}

function groupKeys(raw: unknown, catalog?: EnrichmentCatalog): string[] {
  const keys = list(raw, 'groupBy', []).map((v) => {
    if (v === 'window') return v;
    if (typeof v !== 'string') throw unknownEntry('groupBy', v, AGGREGATE_GROUP_KEYS);
    try {
      return parseDimension(v, 'groupBy', catalog);
    } catch {
      throw unknownEntry('groupBy', v, AGGREGATE_GROUP_KEYS);
    }
  });
  return distinct(keys, 'groupBy');
}

function metricNames(raw: unknown): string[] {
  const names = list(raw, 'metrics', ['value']);
  for (const v of names) if (typeof v !== 'string' || !METRIC_COLUMNS.includes(v)) throw unknownEntry('metrics', v, METRIC_COLUMNS);
  return distinct(names as string[], 'metrics');
}

export function parseAggregateRequest(body: unknown, catalog?: EnrichmentCatalog): AggregatePlan {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('body must be a JSON object', [{ field: '(body)', reason: 'expected an object' }]);
  }
  const obj = body as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!FIELDS.includes(key)) throw badRequest(`unknown field \`${key}\`; allowed: ${FIELDS.join(', ')}`, [{ field: key, reason: 'unknown field' }]);
  }
  const groupBy = groupKeys(obj.groupBy, catalog);
  const plan: AggregatePlan = { kind: 'aggregate', filter: parseFilter(obj.filter, 'filter', catalog), group_by: groupBy, metrics: metricNames(obj.metrics) };
  const hasWindow = groupBy.includes('window');
  if (obj.windowSize !== undefined && obj.windowSize !== null && !hasWindow) {
    throw badRequest('`windowSize` needs a `window` entry in `groupBy`', [{ field: 'windowSize', reason: 'no window group key' }]);
  }
  if (hasWindow) {
    if (obj.windowSize === undefined || obj.windowSize === null) {
      throw badRequest('`windowSize`: required with a `window` group key (e.g. "1h")', [{ field: 'windowSize', reason: 'required' }]);
    }
    const ms = durationField(obj.windowSize, 'windowSize', { maxMs: MAX_WINDOW_MS });
    const { from, to } = plan.filter;
    if (from !== undefined && to !== undefined && Math.ceil(to) - 1 >= Math.ceil(from)) {
      const n = windowsSpanned(Math.ceil(from), Math.ceil(to) - 1, ms, 1);
      if (n > MAX_WINDOWS) throw tooManyWindows(n, ms, ms, 'the filter range');
    }
    plan.window_ms = ms;
  }
  return plan;
}
