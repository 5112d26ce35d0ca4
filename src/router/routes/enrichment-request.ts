/**
 * POST /enrichment/:table body → a validated upsert. The whole request is checked before
 * anything is written; every problem is a 400 naming the field (and the row index).
 *
 * `{key?: "user_id", rows: [{user_id: "u1", country: "DE", tier: 2, vip: true, note: null}, …]}`:
 * each row an object with a non-empty string `user_id` (≤ 128 characters, like events) and
 * scalar values (string ≤ 1024 characters, number, boolean or null), stored as strings (numbers
 * and booleans as their JSON text, as `metadata.<key>` does). Rows of one request with the same
 * user_id: the last one wins.
 */
import { BUILTIN } from '../../kinds/limits.js';
import { badRequest, type FieldError } from '../http-error.js';
import { MAX_USER_ID_CHARS } from '../validate-event.js';

export const ENRICHMENT_MAX_ROWS = 100_000;
/** Columns per table besides `user_id` (the polars side enforces the same limit). */
export const ENRICHMENT_MAX_COLUMNS = BUILTIN.enrichmentMaxColumns;
export const ENRICHMENT_MAX_TABLES = 64;
export const ENRICHMENT_MAX_VALUE_CHARS = 1024;
export const ENRICHMENT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Table names that would read like (or shadow) an event column or a built-in dimension. */
export const RESERVED_TABLE_NAMES = ['metadata', 'event_type', 'user_id', 'timestamp', 'value', 'window'];
const MAX_REPORTED = 20;

export interface EnrichmentUpsert {
  table: string;
  /** value columns in order of first appearance (without `user_id`) */
  columns: string[];
  /** one entry per distinct user (last row wins), values aligned with `columns` */
  rows: Array<{ userId: string; values: Array<string | null> }>;
}

export function parseTableName(raw: string, field = 'table'): string {
  if (!ENRICHMENT_NAME.test(raw)) {
    throw badRequest(`\`${field}\`: expected a name matching [A-Za-z_][A-Za-z0-9_]{0,63}, got ${JSON.stringify(raw)}`, [{ field, reason: 'bad table name' }]);
  }
  if (RESERVED_TABLE_NAMES.includes(raw)) {
    throw badRequest(`\`${field}\`: ${JSON.stringify(raw)} is reserved; reserved names: ${RESERVED_TABLE_NAMES.join(', ')}`, [{ field, reason: 'reserved name' }]);
  }
  return raw;
}

/** The body as an object with only `allowed` keys. */
function requireFields(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('body must be a JSON object', [{ field: '(body)', reason: 'expected an object' }]);
  }
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw badRequest(`unknown field \`${key}\`; allowed: ${allowed.join(', ')}`, [{ field: key, reason: 'unknown field' }]);
  }
  return body as Record<string, unknown>;
}

function describe(v: unknown): string {
  return Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v;
}

/**
 * @param existingColumns the table's columns already known (for the 64-column limit)
 * @example parseEnrichmentUpsert('users', {rows: [{user_id: 'u1', country: 'DE'}]}, [])
 */
export function parseEnrichmentUpsert(table: string, body: unknown, existingColumns: readonly string[]): EnrichmentUpsert {
  parseTableName(table);
  const obj = requireFields(body, ['key', 'rows']);
  if (obj.key !== undefined && obj.key !== 'user_id') {
    throw badRequest(`\`key\`: expected "user_id" (tables join events on user_id), got ${JSON.stringify(obj.key)}`, [{ field: 'key', reason: 'must be user_id' }]);
  }
  const raw = obj.rows;
  if (!Array.isArray(raw)) throw badRequest(`\`rows\`: expected a list of row objects, got ${describe(raw)}`, [{ field: 'rows', reason: `got ${describe(raw)}` }]);
  if (raw.length === 0 || raw.length > ENRICHMENT_MAX_ROWS) {
    throw badRequest(`\`rows\`: expected 1..${ENRICHMENT_MAX_ROWS} rows, got ${raw.length}`, [{ field: 'rows', reason: `${raw.length} rows` }]);
  }
  const errors: FieldError[] = [];
  const note = (index: number, field: string, reason: string) => {
    if (errors.length < MAX_REPORTED) errors.push({ index, field: `rows[${index}].${field}`, reason });
  };
  const columns: string[] = [...existingColumns];
  const known = new Set(columns);
  const byUser = new Map<string, Record<string, unknown>>();
  const goodNames = new Set<string>();
  raw.forEach((row: unknown, i) => {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      if (errors.length < MAX_REPORTED) errors.push({ index: i, field: `rows[${i}]`, reason: `expected an object, got ${describe(row)}` });
      return;
    }
    const r = row as Record<string, unknown>;
    const userId = r.user_id;
    if (typeof userId !== 'string' || userId.length === 0 || userId.length > MAX_USER_ID_CHARS) {
      note(i, 'user_id', typeof userId === 'string' ? `expected 1..${MAX_USER_ID_CHARS} characters, got ${userId.length}` : `expected a non-empty string, got ${describe(userId)}`);
    }
    for (const [name, v] of Object.entries(r)) {
      if (name === 'user_id') continue;
      if (!goodNames.has(name)) {
        if (!ENRICHMENT_NAME.test(name)) {
          note(i, name, 'column names must match [A-Za-z_][A-Za-z0-9_]{0,63}');
          continue;
        }
        goodNames.add(name);
      }
      if (v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        note(i, name, `expected a string, number, boolean or null, got ${describe(v)}`);
      } else if (typeof v === 'string' && v.length > ENRICHMENT_MAX_VALUE_CHARS) {
        note(i, name, `string longer than ${ENRICHMENT_MAX_VALUE_CHARS} characters (${v.length})`);
      }
      if (!known.has(name)) {
        known.add(name);
        columns.push(name);
      }
    }
    if (typeof userId === 'string') {
      byUser.delete(userId); // last row wins, and keeps the position of the last one
      byUser.set(userId, r);
    }
  });
  if (errors.length > 0) {
    const first = errors[0]!;
    throw badRequest(`${errors.length}${errors.length === MAX_REPORTED ? '+' : ''} invalid field(s); first: ${first.field}: ${first.reason}`, errors);
  }
  if (columns.length > ENRICHMENT_MAX_COLUMNS) {
    throw badRequest(`\`rows\`: table \`${table}\` would have ${columns.length} columns besides user_id; at most ${ENRICHMENT_MAX_COLUMNS}`, [{ field: 'rows', reason: 'too many columns' }]);
  }
  const added = columns.slice(existingColumns.length);
  const sent = [...existingColumns.filter((c) => [...byUser.values()].some((r) => c in r)), ...added];
  return {
    table,
    columns: sent,
    rows: [...byUser.entries()].map(([userId, r]) => ({
      userId,
      values: sent.map((c) => {
        const v = r[c];
        return v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);
      }),
    })),
  };
}
