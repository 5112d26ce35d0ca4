/**
 * GET /query/percentiles query string → the `percentiles` plan.
 *
 * `column` (default `value`), `percentiles` (comma list in [0, 1], default 0.5,0.95,0.99;
 * duplicates collapse), `groupBy` (a dimension), `exact` (boolean), and the common filter as
 * query parameters: `from`, `to` (epoch ms or ISO-8601), `event_type`, `user_id` (comma lists).
 *
 * Partial (python/engine_polars/ops/percentiles.py), sorted by group (nulls last):
 * - digest (`exact` false), one row per centroid: `group_key` Utf8 (only with `group_by`),
 *   `count` Int64, `min` Float64, `max` Float64 (the group's, on every row), `mean` Float64,
 *   `weight` Int64 (the centroid).
 * - exact (`exact` true), one row per distinct (group, value): `group_key` Utf8 (only with
 *   `group_by`), `value` Float64, `count` Int64.
 * Only finite values count; groups without one have no rows.
 */
import type { EnrichmentCatalog } from './dimensions.js';
import { parseDimension } from './dimensions.js';
import { parseFilter } from './filter.js';
import type { PlanFilter } from './plan.js';
import { booleanField, enumField, queryFields, stringListField, type Fields } from './request-fields.js';
import { HttpError, badRequest } from '../router/http-error.js';
import { DEFAULT_COMPRESSION } from '../merge/tdigest.js';
import { percentileKey } from '../merge/percentiles.js';

export { percentileKey };

export const PERCENTILE_COLUMNS = ['value'] as const;
export const DEFAULT_PERCENTILES = [0.5, 0.95, 0.99];
export const MAX_PERCENTILES = 100;
const FILTER_PARAMS = ['from', 'to', 'event_type', 'user_id'];
const PARAMS = ['column', 'percentiles', 'groupBy', 'exact', ...FILTER_PARAMS];

export interface PercentilesPlan {
  kind: 'percentiles';
  filter: PlanFilter;
  column: string;
  /** A dimension, or null for one global group. */
  group_by: string | null;
  exact: boolean;
  /** Digest compression δ (ignored with `exact`). */
  compression: number;
}

export interface PercentilesRequest {
  plan: PercentilesPlan;
  /** Requested percentiles, distinct, in request order. */
  percentiles: number[];
}

/**
 * The common filter from query parameters, through `parseFilter`: digit-only `from`/`to` are
 * epoch ms, anything else must be ISO-8601; `event_type`/`user_id` are comma lists. Errors name
 * the parameter (`from`, not `filter.from`).
 */
export function parseQueryStringFilter(q: Fields): PlanFilter {
  const raw: Record<string, unknown> = {};
  for (const key of ['from', 'to'] as const) {
    if (q[key] === undefined) continue;
    const text = String(q[key]);
    raw[key] = /^-?\d+$/.test(text) ? Number(text) : text;
  }
  if (q.event_type !== undefined) raw.event_type = stringListField(q.event_type, 'event_type');
  if (q.user_id !== undefined) raw.user_id = stringListField(q.user_id, 'user_id');
  try {
    return parseFilter(raw, 'filter');
  } catch (err) {
    // parseFilter names `filter.<field>`; here the field is a top-level query parameter.
    if (!(err instanceof HttpError)) throw err;
    const unprefix = (text: string) => text.replaceAll('`filter.', '`');
    const errors = err.details?.errors?.map((e) => ({ ...e, field: e.field.replace(/^filter\./, '') }));
    throw badRequest(unprefix(err.message), errors);
  }
}


export function parsePercentileList(raw: unknown, field = 'percentiles'): number[] {
  if (raw === '') throw badRequest(`\`${field}\`: expected a comma list of numbers in [0, 1], got an empty value`, [{ field, reason: 'empty' }]);
  const list = stringListField(raw, field, { fallback: DEFAULT_PERCENTILES.map(String), max: MAX_PERCENTILES });
  const out: number[] = [];
  const keys = new Set<string>();
  for (const item of list) {
    const q = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(item) ? Number(item) : NaN;
    if (!Number.isFinite(q)) throw badRequest(`\`${field}\`: expected numbers in [0, 1], got ${JSON.stringify(item)}`, [{ field, reason: `not a number: ${item}` }]);
    if (q < 0 || q > 1) throw badRequest(`\`${field}\`: each must be in [0, 1], got ${q}`, [{ field, reason: `out of range: ${q}` }]);
    const key = percentileKey(q);
    if (keys.has(key)) continue;
    keys.add(key);
    out.push(q);
  }
  return out;
}

export function parsePercentilesRequest(url: string, catalog?: EnrichmentCatalog): PercentilesRequest {
  const q = queryFields(url, PARAMS);
  return {
    plan: {
      kind: 'percentiles',
      filter: parseQueryStringFilter(q),
      column: enumField(q.column, 'column', PERCENTILE_COLUMNS, 'value'),
      group_by: q.groupBy === undefined ? null : parseDimension(q.groupBy, 'groupBy', catalog),
      exact: booleanField(q.exact, 'exact', false),
      compression: DEFAULT_COMPRESSION,
    },
    percentiles: parsePercentileList(q.percentiles),
  };
}
