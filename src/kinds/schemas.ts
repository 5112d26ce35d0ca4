/**
 * Building blocks of the query request schemas (zod 4). Every kind's schema is made of these, so
 * a field means the same thing, with the same bounds and messages, in every route, in JSON bodies
 * and in query strings alike. Schemas that depend on operator bounds are factories over
 * `RequestLimits` and are built once per engine.
 */
import { z } from 'zod';
import { parseTimestamp } from '../router/validate-event.js';
import { BUILTIN, type RequestLimits } from './limits.js';

/** Longest event type and user id (as ingest accepts them); longer filter values cannot match. */
export const MAX_EVENT_TYPE_CHARS = 64;
export const MAX_USER_ID_CHARS = 128;
/** Longest dimension value a filter may name (metadata values and enrichment cells). */
export const MAX_DIMENSION_VALUE_CHARS = 1024;
/** Most dimensions one filter may constrain. */
export const MAX_DIMENSION_FILTERS = 16;

const NOT_WELL_FORMED = 'must be well-formed Unicode (no lone surrogate)';

/** A string without lone surrogates: they have no UTF-8 form and would merge distinct values. */
export function text(min: number, max: number) {
  return z
    .string()
    .min(min)
    .max(max)
    .refine((s) => s.isWellFormed(), NOT_WELL_FORMED);
}

/** A list of at most `max` items whose message names the config key that sets `max`. */
export function boundedList<T extends z.ZodType>(item: T, max: number, limitKey: string, min = 1) {
  return z
    .array(item)
    .min(min)
    .max(max, { error: (iss) => `expected at most ${max} entries (${limitKey}), got ${Array.isArray(iss.input) ? iss.input.length : 'more'}` });
}

// ---- dimensions ----------------------------------------------------------------------------

export const EVENT_DIMENSIONS = ['event_type', 'user_id'] as const;
const METADATA_KEY = /^metadata\.[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const TABLE_COLUMN = /^[A-Za-z_][A-Za-z0-9_]{0,63}\.[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** True for `<table>.<column>` of an enrichment table (not `metadata.<key>`). */
export function isTableColumn(name: string): boolean {
  return !name.startsWith('metadata.') && TABLE_COLUMN.test(name);
}

/**
 * A dimension a query may group, rank or filter by: `event_type`, `user_id`, `metadata.<key>`
 * or `<table>.<column>` (checked against the enrichment catalog after parsing, see kind.ts).
 */
export const dimension = z.string().refine((s) => (EVENT_DIMENSIONS as readonly string[]).includes(s) || METADATA_KEY.test(s) || TABLE_COLUMN.test(s), {
  message: 'unknown dimension; expected event_type, user_id, metadata.<key> or <table>.<column>',
});

/** Measure columns a query may aggregate. */
export const MEASURES = ['value'] as const;
export const measure = z.enum(MEASURES);

// ---- scalars -------------------------------------------------------------------------------

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "250ms", "30s", "1m", "1.5h", "1d" → whole milliseconds in [1, maxWindowMs]. */
export const duration = z.string().transform((raw, ctx) => {
  const m = DURATION.exec(raw.trim());
  const ms = m ? Number(m[1]) * UNIT_MS[m[2]!]! : NaN;
  if (!m || !Number.isInteger(ms) || ms < 1) {
    ctx.addIssue({ code: 'custom', message: `expected a duration like "250ms", "30s", "1m", "1h", "1d" (whole ms ≥ 1), got ${JSON.stringify(raw)}` });
    return z.NEVER;
  }
  if (ms > BUILTIN.maxWindowMs) {
    ctx.addIssue({ code: 'custom', message: `must be at most ${BUILTIN.maxWindowMs} ms (366 days), got ${ms}` });
    return z.NEVER;
  }
  return ms;
});

/** A time bound: epoch ms (integer) or an ISO-8601 string (docs/API.md says which forms). */
export const timestamp = z.union([z.number(), z.string()]).transform((raw, ctx) => {
  const ts = parseTimestamp(raw);
  if (typeof ts === 'string') {
    ctx.addIssue({ code: 'custom', message: ts });
    return z.NEVER;
  }
  return ts;
});

// ---- query-string coercion -----------------------------------------------------------------

/** A query-string integer or number ("10", "2.5"); anything else stays a string and fails as one. */
export function fromQueryNumber<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (typeof v === 'string' && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v) ? Number(v) : v), schema);
}

/** A query-string boolean: true/false/1/0. */
export const queryBoolean = z.preprocess((v) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v), z.boolean());

/** A query-string comma list ("a,b,c"). */
export function fromQueryList<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()) : v), schema);
}

/** A query-string time bound: digits are epoch ms, anything else must be ISO-8601. */
const queryTimestamp = z.preprocess((v) => (typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v), timestamp);

// ---- the common filter ---------------------------------------------------------------------

/** Row filter of every plan. Bounds are epoch ms, `from` inclusive, `to` exclusive. */
export interface PlanFilter {
  from?: number;
  to?: number;
  event_types?: string[];
  user_ids?: string[];
  /** Equality on `metadata.<key>` / `<table>.<column>`; null matches a missing key / no row. */
  dimensions?: Record<string, Array<string | null>>;
}

/** A string or a list of strings, each 1..max characters, at most `maxFilterValues` of them. */
function valueList(limits: RequestLimits, maxChars: number) {
  return z.union([text(1, maxChars).transform((s) => [s]), boundedList(text(1, maxChars), limits.maxFilterValues, 'maxFilterValues')]);
}

function dimensionValues(limits: RequestLimits) {
  const one = text(0, MAX_DIMENSION_VALUE_CHARS).nullable();
  return z.union([one.transform((v) => [v]), boundedList(one, limits.maxFilterValues, 'maxFilterValues')]);
}

function dimensionFilters(limits: RequestLimits) {
  const name = dimension.refine((d) => !(EVENT_DIMENSIONS as readonly string[]).includes(d), { message: 'filter event columns with `event_type` / `user_id`' });
  return z
    .record(name, dimensionValues(limits))
    .refine((r) => Object.keys(r).length >= 1 && Object.keys(r).length <= MAX_DIMENSION_FILTERS, { message: `must name 1..${MAX_DIMENSION_FILTERS} dimensions` });
}

/** Fields of the filter as a JSON object (`"filter": {...}` in a body). */
function filterFields(limits: RequestLimits) {
  return {
    from: timestamp.optional(),
    to: timestamp.optional(),
    event_type: valueList(limits, MAX_EVENT_TYPE_CHARS).optional(),
    user_id: valueList(limits, MAX_USER_ID_CHARS).optional(),
    dimensions: dimensionFilters(limits).optional(),
  };
}

/** The same fields as query parameters: comma lists, digit-only bounds as epoch ms, no dimensions. */
export function queryFilterFields(limits: RequestLimits) {
  const f = filterFields(limits);
  return {
    from: queryTimestamp.optional(),
    to: queryTimestamp.optional(),
    event_type: fromQueryList(f.event_type),
    user_id: fromQueryList(f.user_id),
  };
}

interface FilterInput {
  from?: number | undefined;
  to?: number | undefined;
  event_type?: string[] | undefined;
  user_id?: string[] | undefined;
  dimensions?: Record<string, Array<string | null>> | undefined;
}

/** Checks `from` ≤ `to` (naming `<prefix>from`) and converts to the plan's filter. */
export function toPlanFilter(f: FilterInput, ctx: z.RefinementCtx, prefix: string[] = []): PlanFilter {
  const out: PlanFilter = {};
  if (f.from !== undefined) out.from = f.from;
  if (f.to !== undefined) out.to = f.to;
  if (f.from !== undefined && f.to !== undefined && f.from > f.to) {
    ctx.addIssue({ code: 'custom', path: [...prefix, 'from'], message: `(${f.from}) is after \`to\` (${f.to})` });
  }
  if (f.event_type) out.event_types = f.event_type;
  if (f.user_id) out.user_ids = f.user_id;
  if (f.dimensions) out.dimensions = f.dimensions;
  return out;
}

/** `"filter": {...}` of a JSON body (absent or null: no filter). */
export function filterSchema(limits: RequestLimits) {
  return z
    .strictObject(filterFields(limits))
    .nullish()
    .transform((f, ctx) => (f ? toPlanFilter(f, ctx) : {}));
}

/** The filter's query parameters picked out of a parsed query string. */
export function queryFilter(q: FilterInput, ctx: z.RefinementCtx): PlanFilter {
  return toPlanFilter(q, ctx);
}

/** Dimension names a filter constrains, with the field that named them (for the catalog check). */
export function filterDimensionFields(filter: PlanFilter, prefix = 'filter'): Array<[field: string, name: string]> {
  return Object.keys(filter.dimensions ?? {}).map((name) => [`${prefix}.dimensions.${name}`, name]);
}
