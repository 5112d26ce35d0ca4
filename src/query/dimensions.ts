/**
 * Dimensions a query may group, rank or filter by: the event columns `event_type` and `user_id`,
 * `metadata.<key>` (the metadata value under that top-level key, as a string; missing → null),
 * and `<table>.<column>` of an enrichment table joined on user_id (missing → null).
 * The Python side resolves the same names in `python/engine_polars/dimensions.py`.
 */
import { badRequest } from '../router/http-error.js';

export const EVENT_DIMENSIONS = ['event_type', 'user_id'] as const;
const METADATA_KEY = /^metadata\.[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const TABLE_COLUMN = /^[A-Za-z_][A-Za-z0-9_]{0,63}\.[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Known enrichment tables and their columns; set by the enrichment routes. */
export interface EnrichmentCatalog {
  hasColumn(table: string, column: string): boolean;
}

export function parseDimension(raw: unknown, field: string, catalog?: EnrichmentCatalog): string {
  if (typeof raw !== 'string') throw badRequest(`\`${field}\`: expected a dimension name, got ${JSON.stringify(raw)}`, [{ field, reason: 'not a string' }]);
  if ((EVENT_DIMENSIONS as readonly string[]).includes(raw) || METADATA_KEY.test(raw)) return raw;
  if (catalog && TABLE_COLUMN.test(raw)) {
    const [table, column] = raw.split('.') as [string, string];
    if (catalog.hasColumn(table, column)) return raw;
    throw badRequest(`\`${field}\`: unknown enrichment column ${JSON.stringify(raw)}`, [{ field, reason: `unknown enrichment column ${raw}` }]);
  }
  throw badRequest(`\`${field}\`: unknown dimension ${JSON.stringify(raw)}; expected event_type, user_id, metadata.<key> or <table>.<column>`, [
    { field, reason: `unknown dimension ${JSON.stringify(raw)}` },
  ]);
}
