/**
 * The main thread's view of the enrichment tables: names, columns (in the order they first
 * appeared) and rows per shard, updated from the shards' answers to upserts and drops. Queries
 * validate `<table>.<column>` against it (`EnrichmentCatalog`), so an unknown column is a 400
 * before any fan-out. The rows live in the polars processes and come back with the shards' logs
 * after a restart; the catalog is then rebuilt from the shards' listings (`restoreFrom`).
 */
/** Known enrichment tables and their columns: queries check `<table>.<column>` against it. */
export interface EnrichmentCatalog {
  hasColumn(table: string, column: string): boolean;
  /** Settles once the tables the shards restored are known. */
  readonly restored: Promise<void>;
}

export interface EnrichmentTableInfo {
  table: string;
  columns: string[];
  rows: number;
}

interface Entry {
  columns: string[];
  rowsPerShard: Map<number, number>;
}

export class EnrichmentTables implements EnrichmentCatalog {
  private readonly tables = new Map<string, Entry>();
  private queue: Promise<unknown> = Promise.resolve();
  private markRestored: () => void = () => undefined;
  /** Settles once the catalog holds what the shards restored from their logs. */
  readonly restored: Promise<void> = new Promise((resolve) => (this.markRestored = resolve));

  /**
   * Rebuilds the catalog from the shards' listings (table, columns and rows per shard) after they
   * replayed their logs; runs as a management operation, so no upsert interleaves with it.
   */
  restoreFrom(listings: ReadonlyArray<{ table: string; columns: readonly string[]; shard_rows: readonly number[] }>): Promise<void> {
    return this.exclusive(async () => {
      for (const t of listings) t.shard_rows.forEach((rows, shard) => this.noteShard(t.table, shard, t.columns, rows));
      this.markRestored();
    });
  }

  /** The catalog will not be restored (no shards, or the listing failed): stop waiting for it. */
  giveUpRestore(): void {
    this.markRestored();
  }

  hasColumn(table: string, column: string): boolean {
    return this.tables.get(table)?.columns.includes(column) ?? false;
  }

  has(table: string): boolean {
    return this.tables.has(table);
  }

  columns(table: string): string[] {
    return [...(this.tables.get(table)?.columns ?? [])];
  }

  /** Records one shard's table after an upsert there: its columns and row count. */
  noteShard(table: string, shard: number, columns: readonly string[], rows: number): void {
    let entry = this.tables.get(table);
    if (!entry) this.tables.set(table, (entry = { columns: [], rowsPerShard: new Map() }));
    for (const c of columns) if (!entry.columns.includes(c)) entry.columns.push(c);
    entry.rowsPerShard.set(shard, rows);
  }

  drop(table: string): boolean {
    return this.tables.delete(table);
  }

  list(): EnrichmentTableInfo[] {
    return [...this.tables.entries()]
      .map(([table, e]) => ({ table, columns: [...e.columns], rows: [...e.rowsPerShard.values()].reduce((a, b) => a + b, 0) }))
      .sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : 0));
  }

  get size(): number {
    return this.tables.size;
  }

  /**
   * Runs management operations one at a time, so an upsert and a drop of the same table cannot
   * interleave differently on different shards (each shard answers its own requests in order).
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
