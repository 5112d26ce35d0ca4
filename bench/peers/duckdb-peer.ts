/**
 * The DuckDB peer: an in-memory database in this process (`@duckdb/node-api`), every thread,
 * the events in one table loaded from the Parquet file the polars peer wrote (DuckDB reads
 * Parquet with its built-in reader: no extension is downloaded).
 */
import { DuckDBInstance, type DuckDBConnection, type DuckDBResultReader } from '@duckdb/node-api';
import { availableParallelism } from 'node:os';

export type SqlRow = Record<string, unknown>;

export class DuckDbPeer {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    readonly threads: number,
    readonly version: string,
  ) {}

  static async open(): Promise<DuckDbPeer> {
    const threads = availableParallelism();
    const instance = await DuckDBInstance.create(':memory:', { threads: String(threads) });
    const conn = await instance.connect();
    const version = String((await conn.runAndReadAll('SELECT version() AS v')).getRowObjectsJS()[0]!.v);
    return new DuckDbPeer(instance, conn, threads, version);
  }

  /** Creates table `events` from a Parquet file; returns its row count. */
  async load(parquet: string): Promise<number> {
    await this.conn.run(`CREATE OR REPLACE TABLE events AS SELECT * FROM read_parquet('${parquet.replaceAll("'", "''")}')`);
    const r = await this.conn.runAndReadAll('SELECT count(*) AS n FROM events');
    return Number(r.getRowObjectsJS()[0]!.n);
  }

  /** Runs the statements in order, each fully materialized (what the timed runs measure). */
  async run(statements: readonly string[]): Promise<DuckDBResultReader[]> {
    const out: DuckDBResultReader[] = [];
    for (const sql of statements) out.push(await this.conn.runAndReadAll(sql));
    return out;
  }

  /** Result rows as plain JS values (BIGINT as bigint, lists as arrays). */
  static rows(result: DuckDBResultReader): SqlRow[] {
    return result.getRowObjectsJS() as unknown as SqlRow[];
  }

  close(): void {
    this.conn.closeSync();
    this.instance.closeSync();
  }
}
