/**
 * Merge of the shards' `enrich_list` partials (one row per table: `table` LargeUtf8, `rows`
 * Int64, `columns` LargeUtf8 comma-joined) into the answer of GET /enrichment. Every user's row
 * lives on the one shard that owns the user, so a table's row count is the sum over shards (exact).
 * Columns: the union, in the order the main thread's catalog knows them (`spec.columns`), then
 * any others in first-seen order.
 */
import { decodePartial, requireColumn } from './decode-partial.js';
import { defineMerge } from './merge-def.js';

export interface EnrichmentListSpec {
  /** table → its columns as the catalog knows them (for the order) */
  columns?: Record<string, string[]>;
}

export interface EnrichmentTableListing {
  table: string;
  rows: number;
  columns: string[];
  /** rows per shard, in shard order */
  shard_rows: number[];
}

export function mergeEnrichmentTask(spec: EnrichmentListSpec, partials: Uint8Array[]): { tables: EnrichmentTableListing[] } {
  const tables = new Map<string, EnrichmentTableListing>();
  partials.forEach((ipc, shard) => {
    const p = decodePartial(ipc);
    const names = requireColumn(p, 'table');
    const rows = requireColumn(p, 'rows');
    const cols = requireColumn(p, 'columns');
    for (let i = 0; i < p.rows; i++) {
      const table = String(names[i]);
      let t = tables.get(table);
      if (!t) tables.set(table, (t = { table, rows: 0, columns: [...(spec.columns?.[table] ?? [])], shard_rows: partials.map(() => 0) }));
      const n = Number(rows[i] ?? 0);
      t.rows += n;
      t.shard_rows[shard] = n;
      const list = typeof cols[i] === 'string' && cols[i] !== '' ? (cols[i] as string).split(',') : [];
      for (const c of list) if (!t.columns.includes(c)) t.columns.push(c);
    }
  });
  return { tables: [...tables.values()].sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : 0)) };
}

export default defineMerge('enrichment', mergeEnrichmentTask);
