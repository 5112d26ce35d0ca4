/**
 * The common `filter` of every query: `{from?, to?, event_type?, user_id?}` → PlanFilter.
 * `from`/`to` are epoch ms or ISO-8601 (`from` inclusive, `to` exclusive); `event_type` and
 * `user_id` are a string or a list of strings.
 */
import { badRequest } from '../router/http-error.js';
import { parseTimestamp } from '../router/validate-event.js';
import type { PlanFilter } from './plan.js';

const FILTER_FIELDS = ['from', 'to', 'event_type', 'user_id'];

function stringList(raw: unknown, field: string): string[] {
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) throw badRequest(`\`${field}\` must not be an empty list`, [{ field, reason: 'empty list' }]);
  for (const v of list) {
    if (typeof v !== 'string' || v.length === 0) {
      throw badRequest(`\`${field}\` must be a non-empty string or a list of them`, [{ field, reason: `got ${JSON.stringify(v)}` }]);
    }
  }
  return list as string[];
}

function bound(raw: unknown, field: string): number {
  const ts = parseTimestamp(raw);
  if (typeof ts === 'string') throw badRequest(`\`${field}\`: ${ts}`, [{ field, reason: ts }]);
  return ts;
}

export function parseFilter(raw: unknown, prefix = 'filter'): PlanFilter {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw badRequest(`\`${prefix}\` must be an object`, [{ field: prefix, reason: `got ${Array.isArray(raw) ? 'array' : typeof raw}` }]);
  }
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!FILTER_FIELDS.includes(key)) {
      throw badRequest(`unknown field \`${prefix}.${key}\`; allowed: ${FILTER_FIELDS.join(', ')}`, [{ field: `${prefix}.${key}`, reason: 'unknown field' }]);
    }
  }
  const out: PlanFilter = {};
  if (obj.from !== undefined) out.from = bound(obj.from, `${prefix}.from`);
  if (obj.to !== undefined) out.to = bound(obj.to, `${prefix}.to`);
  if (out.from !== undefined && out.to !== undefined && out.from > out.to) {
    throw badRequest(`\`${prefix}.from\` (${out.from}) is after \`${prefix}.to\` (${out.to})`, [{ field: `${prefix}.from`, reason: 'after to' }]);
  }
  if (obj.event_type !== undefined) out.event_types = stringList(obj.event_type, `${prefix}.event_type`);
  if (obj.user_id !== undefined) out.user_ids = stringList(obj.user_id, `${prefix}.user_id`);
  return out;
}
