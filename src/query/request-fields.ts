/**
 * Field parsers for query requests (JSON bodies and query strings). Each throws a 400 naming the
 * field with expected vs actual, so every route reports bad input the same way.
 */
import { badRequest } from '../router/http-error.js';

export type Fields = Record<string, unknown>;

const bad = (field: string, reason: string) => badRequest(`\`${field}\`: ${reason}`, [{ field, reason }]);

function show(raw: unknown): string {
  return raw === undefined ? 'nothing' : JSON.stringify(raw);
}

/** The body as an object with only `allowed` keys. */
export function requireFields(body: unknown, allowed: readonly string[]): Fields {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('body must be a JSON object', [{ field: '(body)', reason: 'expected an object' }]);
  }
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw badRequest(`unknown field \`${key}\`; allowed: ${allowed.join(', ')}`, [{ field: key, reason: 'unknown field' }]);
  }
  return body as Fields;
}

/** Query-string parameters as fields, rejecting unknown or repeated ones. */
export function queryFields(url: string, allowed: readonly string[]): Fields {
  const params = new URL(url).searchParams;
  const out: Fields = {};
  for (const [key, value] of params) {
    if (!allowed.includes(key)) throw badRequest(`unknown parameter \`${key}\`; allowed: ${allowed.join(', ')}`, [{ field: key, reason: 'unknown parameter' }]);
    if (key in out) throw bad(key, 'given more than once');
    out[key] = value;
  }
  return out;
}

export function stringField(raw: unknown, field: string, opts: { required?: boolean; fallback?: string } = {}): string {
  if (raw === undefined || raw === null || raw === '') {
    if (opts.fallback !== undefined) return opts.fallback;
    throw bad(field, 'required');
  }
  if (typeof raw !== 'string') throw bad(field, `expected a string, got ${show(raw)}`);
  return raw;
}

export function enumField<T extends string>(raw: unknown, field: string, allowed: readonly T[], fallback?: T): T {
  if ((raw === undefined || raw === null || raw === '') && fallback !== undefined) return fallback;
  if (typeof raw !== 'string' || !(allowed as readonly string[]).includes(raw)) {
    throw bad(field, `expected one of ${allowed.join(', ')}, got ${show(raw)}`);
  }
  return raw as T;
}

/** A number from JSON or a query string, within [min, max]. */
export function numberField(raw: unknown, field: string, opts: { min?: number; max?: number; integer?: boolean; fallback?: number } = {}): number {
  if (raw === undefined || raw === null || raw === '') {
    if (opts.fallback !== undefined) return opts.fallback;
    throw bad(field, 'required');
  }
  const n = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw bad(field, `expected a number, got ${show(raw)}`);
  if (opts.integer && !Number.isInteger(n)) throw bad(field, `expected an integer, got ${show(raw)}`);
  if (opts.min !== undefined && n < opts.min) throw bad(field, `expected ≥ ${opts.min}, got ${n}`);
  if (opts.max !== undefined && n > opts.max) throw bad(field, `expected ≤ ${opts.max}, got ${n}`);
  return n;
}

export function booleanField(raw: unknown, field: string, fallback: boolean): boolean {
  if (raw === undefined || raw === null || raw === '') return fallback;
  if (raw === true || raw === 'true' || raw === '1') return true;
  if (raw === false || raw === 'false' || raw === '0') return false;
  throw bad(field, `expected true or false, got ${show(raw)}`);
}

/** A list of strings; a query-string value is split on commas. */
export function stringListField(raw: unknown, field: string, opts: { fallback?: string[]; min?: number; max?: number } = {}): string[] {
  if (raw === undefined || raw === null || raw === '') {
    if (opts.fallback) return opts.fallback;
    throw bad(field, 'required');
  }
  const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()) : raw;
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw bad(field, `expected a list of non-empty strings, got ${show(raw)}`);
  }
  if (opts.min !== undefined && list.length < opts.min) throw bad(field, `expected at least ${opts.min} entries, got ${list.length}`);
  if (opts.max !== undefined && list.length > opts.max) throw bad(field, `expected at most ${opts.max} entries, got ${list.length}`);
  return list as string[];
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "1m", "1.5h", "250ms", "1d" → ms (an integer ≥ 1 ms). */
export function durationField(raw: unknown, field: string, opts: { fallback?: number; maxMs?: number } = {}): number {
  if ((raw === undefined || raw === null || raw === '') && opts.fallback !== undefined) return opts.fallback;
  if (typeof raw !== 'string') throw bad(field, `expected a duration like "30s", "1m", "1h", got ${show(raw)}`);
  const m = DURATION.exec(raw.trim());
  if (!m) throw bad(field, `expected a duration like "250ms", "30s", "1m", "1h", "1d", got ${show(raw)}`);
  const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  if (!Number.isInteger(ms) || ms < 1) throw bad(field, `must be a whole number of milliseconds ≥ 1, got ${show(raw)}`);
  if (opts.maxMs !== undefined && ms > opts.maxMs) throw bad(field, `must be at most ${opts.maxMs} ms, got ${ms}`);
  return ms;
}
