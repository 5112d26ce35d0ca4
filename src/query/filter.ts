/**
 * The common `filter` of every query: `{from?, to?, event_type?, user_id?}` → PlanFilter.
 * `from`/`to` are epoch ms or ISO-8601 (`from` inclusive, `to` exclusive); `event_type` and
 * `user_id` are a string or a list of strings. `dimensions` maps `metadata.<key>` or
 * `<table>.<column>` to the values to keep (a string, or a list of strings and nulls; null keeps
 * events with the key missing / users without a row): `{"dimensions": {"users.country": ["DE"]}}`.
 * With a `catalog` an unknown enrichment column is a 400; without one it is accepted and matches
 * what an unknown table joins to (null for every user).
 */
import { badRequest } from '../router/http-error.js';
import { parseTimestamp } from '../router/validate-event.js';
import type { EnrichmentCatalog } from './dimensions.js';
import { parseDimension } from './dimensions.js';
import type { PlanFilter } from './plan.js';

const FILTER_FIELDS = ['from', 'to', 'event_type', 'user_id', 'dimensions'];
const TABLE_COLUMN = /^[A-Za-z_][A-Za-z0-9_]{0,63}\.[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const MAX_DIMENSION_FILTERS = 16;
const MAX_DIMENSION_VALUES = 10_000;

function dimensionFilters(raw: unknown, field: string, catalog?: EnrichmentCatalog): Record<string, Array<string | null>> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw badRequest(`\`${field}\` must be an object of dimension → values`, [{ field, reason: `got ${Array.isArray(raw) ? 'array' : raw === null ? 'null' : typeof raw}` }]);
  }
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length === 0 || entries.length > MAX_DIMENSION_FILTERS) {
    throw badRequest(`\`${field}\` must name 1..${MAX_DIMENSION_FILTERS} dimensions, got ${entries.length}`, [{ field, reason: `${entries.length} dimensions` }]);
  }
  const out: Record<string, Array<string | null>> = {};
  for (const [name, values] of entries) {
    const at = `${field}.${name}`;
    if (name === 'event_type' || name === 'user_id') {
      throw badRequest(`\`${at}\`: filter event columns with \`event_type\` / \`user_id\``, [{ field: at, reason: 'event column' }]);
    }
    // Without a catalog, any well-formed table column is accepted (it joins to null).
    if (catalog || !TABLE_COLUMN.test(name) || name.startsWith('metadata.')) parseDimension(name, at, catalog);
    const list = Array.isArray(values) ? values : [values];
    if (list.length === 0 || list.length > MAX_DIMENSION_VALUES) {
      throw badRequest(`\`${at}\` must list 1..${MAX_DIMENSION_VALUES} values, got ${list.length}`, [{ field: at, reason: `${list.length} values` }]);
    }
    list.forEach((v, i) => {
      if (v !== null && typeof v !== 'string') {
        throw badRequest(`\`${at}[${i}]\`: expected a string or null, got ${JSON.stringify(v)}`, [{ field: `${at}[${i}]`, reason: `got ${JSON.stringify(v)}` }]);
      }
    });
    out[name] = list as Array<string | null>;
  }
  return out;
}

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

export function parseFilter(raw: unknown, prefix = 'filter', catalog?: EnrichmentCatalog): PlanFilter {
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
  if (obj.dimensions !== undefined) out.dimensions = dimensionFilters(obj.dimensions, `${prefix}.dimensions`, catalog);
  return out;
}
