/**
 * POST /query/aggregate body → aggregate plan. Seed shape: `{groupBy: [...], metrics: [...]}`
 * plus the common `filter`. Unknown fields, group keys and metrics are 400s naming them.
 */
import { badRequest } from '../router/http-error.js';
import { parseFilter } from './filter.js';
import type { AggregatePlan } from './plan.js';

export const AGGREGATE_GROUP_KEYS = ['event_type', 'user_id'];
export const METRIC_COLUMNS = ['value'];
const FIELDS = ['groupBy', 'metrics', 'filter'];

function names(raw: unknown, field: string, allowed: string[], fallback: string[]): string[] {
  if (raw === undefined || raw === null) return fallback;
  const list = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(list)) throw badRequest(`\`${field}\` must be a list of strings`, [{ field, reason: `got ${typeof raw}` }]);
  const seen = new Set<string>();
  for (const v of list) {
    if (typeof v !== 'string' || !allowed.includes(v)) {
      throw badRequest(`unknown ${field} entry ${JSON.stringify(v)}; allowed: ${allowed.join(', ')}`, [{ field, reason: `unknown ${JSON.stringify(v)}` }]);
    }
    if (seen.has(v)) throw badRequest(`duplicate ${field} entry ${JSON.stringify(v)}`, [{ field, reason: `duplicate ${JSON.stringify(v)}` }]);
    seen.add(v);
  }
  return list as string[];
}

export function parseAggregateRequest(body: unknown): AggregatePlan {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('body must be a JSON object', [{ field: '(body)', reason: 'expected an object' }]);
  }
  const obj = body as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!FIELDS.includes(key)) throw badRequest(`unknown field \`${key}\`; allowed: ${FIELDS.join(', ')}`, [{ field: key, reason: 'unknown field' }]);
  }
  return {
    kind: 'aggregate',
    filter: parseFilter(obj.filter),
    group_by: names(obj.groupBy, 'groupBy', AGGREGATE_GROUP_KEYS, []),
    metrics: names(obj.metrics, 'metrics', METRIC_COLUMNS, ['value']),
  };
}
