/**
 * The enrichment tables a shard's log leads to, computed from its upsert and drop records the way
 * its polars process applies them (python/engine_polars/enrichment_tables.py), so a
 * re-partitioning can write each table's final rows to their new shards.
 *
 * Why the final state and not the records: the records of different old shards cannot be
 * interleaved back into one order (a drop on shard A and a later re-create are only ordered on
 * A), so each old shard's log is folded into its own tables (users are disjoint across old shards)
 * and the results are united.
 *
 * Semantics copied from the Python side: an upsert needs a `user_id` column without nulls and
 * String (or all-null) columns named like identifiers; within one upsert the last row of a user
 * wins; a user's new row replaces the old one whole (columns it lacks become null); new columns
 * are added (null for rows already held); an upsert that would pass `enrichmentMaxColumns` is
 * refused whole. A refused upsert changes nothing, as polars refused it.
 */
import { RecordBatchReader, Type } from 'apache-arrow';

export interface TableState {
  /** value columns (not `user_id`), in the order they were first seen */
  columns: string[];
  /** user → value per column (same order as `columns`) */
  rows: Map<string, Array<string | null>>;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** The rows of one upsert's Arrow IPC stream, or why polars would refuse them. */
function readUpsert(ipc: Uint8Array): { columns: string[]; rows: Map<string, Array<string | null>> } | { refused: string } {
  const reader = RecordBatchReader.from(ipc);
  reader.open();
  const fields = reader.schema.fields;
  const batches = reader.readAll();
  if (!fields.some((f) => f.name === 'user_id')) return { refused: 'no `user_id` column' };
  for (const f of fields) {
    if (!NAME.test(f.name)) return { refused: `column name ${JSON.stringify(f.name)}` };
    // Utf8 from the router; Utf8View or LargeUtf8 when polars wrote the stream (a tables snapshot)
    if (f.typeId !== Type.Utf8 && f.typeId !== Type.Utf8View && f.typeId !== Type.LargeUtf8 && f.typeId !== Type.Null) return { refused: `column ${f.name} is not String` };
  }
  const columns = fields.map((f) => f.name).filter((n) => n !== 'user_id');
  const rows = new Map<string, Array<string | null>>();
  for (const batch of batches) {
    const user = batch.getChild('user_id')!;
    const values = columns.map((c) => batch.getChild(c));
    for (let i = 0; i < batch.numRows; i++) {
      const id = user.get(i) as string | null;
      if (id === null) return { refused: '`user_id` has nulls' };
      // last row of a user wins, and it is placed where that last row is
      rows.delete(id);
      rows.set(
        id,
        values.map((v) => (v ? ((v.get(i) as string | null) ?? null) : null)),
      );
    }
  }
  return { columns, rows };
}

export class EnrichmentState {
  readonly tables = new Map<string, TableState>();
  /** upserts polars would have refused (and so did), with why */
  readonly refused: Array<{ table: string; reason: string }> = [];

  constructor(private readonly maxColumns: number) {}

  upsert(table: string, ipc: Uint8Array): void {
    const read = readUpsert(ipc);
    if ('refused' in read) {
      this.refused.push({ table, reason: read.refused });
      return;
    }
    const old = this.tables.get(table);
    const columns = old ? [...old.columns] : [];
    for (const c of read.columns) if (!columns.includes(c)) columns.push(c);
    if (columns.length > this.maxColumns) {
      this.refused.push({ table, reason: `${columns.length} columns, at most ${this.maxColumns}` });
      return;
    }
    const position = read.columns.map((c) => columns.indexOf(c));
    const rows = old ? old.rows : new Map<string, Array<string | null>>();
    if (old && columns.length > old.columns.length) for (const row of rows.values()) while (row.length < columns.length) row.push(null);
    for (const [user, values] of read.rows) {
      const row: Array<string | null> = new Array(columns.length).fill(null);
      values.forEach((v, i) => (row[position[i]!] = v));
      // kept rows first, then the new ones (polars: concat(kept, new))
      rows.delete(user);
      rows.set(user, row);
    }
    this.tables.set(table, { columns, rows });
  }

  drop(table: string): void {
    this.tables.delete(table);
  }

  /**
   * Unites the tables of several old shards (whose users are disjoint): columns in the order
   * first seen over the shards, rows widened to them.
   */
  static union(states: EnrichmentState[]): Map<string, TableState> {
    const out = new Map<string, TableState>();
    for (const state of states) {
      for (const [name, t] of state.tables) {
        let u = out.get(name);
        if (!u) out.set(name, (u = { columns: [], rows: new Map() }));
        for (const c of t.columns) if (!u.columns.includes(c)) u.columns.push(c);
        const position = t.columns.map((c) => u.columns.indexOf(c));
        for (const [user, values] of t.rows) {
          const row: Array<string | null> = [];
          values.forEach((v, i) => (row[position[i]!] = v));
          u.rows.set(user, row);
        }
      }
    }
    for (const u of out.values()) for (const row of u.rows.values()) for (let i = 0; i < u.columns.length; i++) row[i] ??= null;
    return out;
  }
}
