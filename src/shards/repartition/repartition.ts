/**
 * Re-partitioning: the stored data of N shards rewritten for M shards by the routing hash, before
 * any shard opens its log (the engine starts with another `shards` than its data dir holds).
 *
 * Sequence, crash-safe at every step (a kill -9 anywhere leaves the old layout referenced and
 * intact, or the new one complete):
 *   1. a fresh directory `dataDir/layout-<M>-<ms>.tmp/` gets one `shard-<j>/` log per new shard;
 *   2. every old shard's log is read in order: each event row goes to the new shard that owns its
 *      user (`shardForUserBytes`, as ingest routes), in new sealed batches numbered from row 0;
 *      enrichment upserts and drops are folded into each old shard's final tables, which are
 *      then written to the new shards as upserts, every row to the shard owning its user;
 *   3. every new log is synced and closed, the directory renamed to `layout-<M>-<ms>/`, the
 *      data dir fsynced;
 *   4. `meta.json` is replaced atomically with `{shards: M, layout: "layout-<M>-<ms>"}`: the
 *      commit point;
 *   5. the old shard directories are deleted (and, at any later start, whatever `meta.json` does
 *      not reference: a crash before 4 leaves a `.tmp` or unreferenced layout, removed and
 *      redone; after 4, old directories, removed).
 * The old logs are only read (their torn tails are cut as at any start), never written.
 *
 * Runs in a worker thread (repartition-worker.ts) so the HTTP thread answers meanwhile.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Table, tableToIPC, vectorFromArray, Utf8, type Vector } from 'apache-arrow';
import { FileShardLog } from '../log/file-log.js';
import { DATA_DIR_FORMAT, layoutRoot, removeUnreferenced, syncDir, writeMeta, type DataDirMeta } from '../log/data-dir.js';
import { LogRecordType, decodeEnrichDrop, decodeEnrichUpsert, decodeNumberedBatch, encodeEnrichUpsert, encodeNumberedBatch, type LogRecord } from '../log/shard-log.js';
import { EnrichmentState, type TableState } from './enrichment-state.js';
import { RowRouter } from './row-router.js';
import { hasSegments, readSegments } from './segment-reader.js';
import { CarriedKeys, keysBatchIpc } from './carried-keys.js';
// The router's own routing function, as in row-router.ts.
import { shardForUser } from '../../router/route-hash.js';

export interface RepartitionOptions {
  dataDir: string;
  /** what meta.json holds now */
  from: DataDirMeta;
  /** the new shard count */
  to: number;
  maxBatchRows: number;
  enrichmentMaxColumns: number;
  /** ms between progress reports (default 1000) */
  progressEveryMs?: number;
  onProgress?: (p: RepartitionProgress) => void;
  /** rows per export page when an old shard's segments are read through polars (segment-reader.ts) */
  pageRows?: number;
  /** warnings (segment rows or tables an old polars process had to refuse) */
  onWarning?: (msg: string) => void;
  /** tests only: stop (never return) at this step, so a test can kill the process there */
  haltAt?: RepartitionStep | undefined;
}

export type RepartitionStep = 'copying' | 'renamed' | 'committed';

export interface RepartitionProgress {
  /** old shard being read */
  shard: number;
  of_shards: number;
  records: number;
  bytes: number;
  of_bytes: number;
  rows: number;
  /** of `rows`, those read from the old shard's segment files */
  segment_rows: number;
}

export interface RepartitionResult {
  layout: string;
  rows: number;
  /** rows per new shard */
  rows_per_shard: number[];
  tables: number;
  enrichment_rows: number;
  records_read: number;
  /** upserts the old polars processes had refused too (never applied), left out */
  upserts_refused: number;
  /** Idempotency-Keys found in old batches and carried over whole; those held only in part, left out */
  keys_carried: number;
  keys_left_out: number;
  /** old shard directories removed after the switch */
  removed: string[];
  ms: number;
}

/** The new layout's name: unique, and sorted after older ones. */
export const layoutName = (shards: number, now = Date.now()): string => `layout-${shards}-${now}`;

function halt(step: RepartitionStep, at: RepartitionStep | undefined): void {
  if (step !== at) return;
  // Tests kill the process here; block the thread for good (no timers, no return).
  const word = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(word, 0, 0);
}

function upsertIpc(rows: Array<[string, Array<string | null>]>, columns: string[]): Uint8Array {
  const vectors: Record<string, Vector> = { user_id: vectorFromArray(rows.map(([u]) => u), new Utf8()) };
  columns.forEach((c, i) => (vectors[c] = vectorFromArray(rows.map(([, v]) => v[i] ?? null), new Utf8())));
  return tableToIPC(new Table(vectors), 'stream');
}

/** Rewrites the data dir for `to` shards (see the file comment); resolves once meta.json says so. */
export async function repartition(opts: RepartitionOptions): Promise<RepartitionResult> {
  const started = performance.now();
  const { dataDir, from, to } = opts;
  const oldRoot = layoutRoot(dataDir, from);
  const layout = layoutName(to);
  const tmpRoot = join(dataDir, `${layout}.tmp`);
  rmSync(tmpRoot, { recursive: true, force: true });
  mkdirSync(tmpRoot, { recursive: true });

  const logs = await Promise.all(Array.from({ length: to }, (_, j) => FileShardLog.open({ dir: join(tmpRoot, `shard-${j}`) })));
  const nextRow = new Array<number>(to).fill(0);
  const router = new RowRouter(to, opts.maxBatchRows, ({ shard, ipc, rows }) => {
    logs[shard]!.append(LogRecordType.NUMBERED_BATCH, encodeNumberedBatch(nextRow[shard]!, rows, ipc));
    nextRow[shard]! += rows;
  });
  const states: EnrichmentState[] = [];
  const keys = new CarriedKeys();
  let recordsRead = 0;
  const every = opts.progressEveryMs ?? 1000;

  for (let i = 0; i < from.shards; i++) {
    const dir = join(oldRoot, `shard-${i}`);
    if (!existsSync(dir)) continue; // never started: nothing stored
    const log = await FileShardLog.open({ dir });
    const state = new EnrichmentState(opts.enrichmentMaxColumns);
    states.push(state);
    const progress = { shard: i, of_shards: from.shards, records: 0, bytes: 0, of_bytes: log.end - log.start, rows: 0, segment_rows: 0 };
    let last = performance.now();
    try {
      // Rows rolled into segment files come through a polars process; the log covers the rest.
      let start = log.start;
      if (hasSegments(dir)) {
        const warn = (msg: string) => opts.onWarning?.(`old shard ${i}: ${msg}`);
        const read = await readSegments(dir, log.start, opts.pageRows ?? 50_000, (ipc) => router.route(ipc), state, warn);
        if (read.tablesLost) warn('its enrichment snapshot failed its check (its polars process drops it too)');
        progress.segment_rows = read.rows;
        progress.rows += read.rows;
        start = Math.max(read.logPosition, log.start);
        progress.of_bytes = log.end - start;
      }
      for await (const rec of log.readFrom(start)) {
        progress.rows += apply(rec, router, state);
        keys.note(i, rec);
        progress.records++;
        progress.bytes = rec.next - start;
        if (performance.now() - last >= every) {
          last = performance.now();
          opts.onProgress?.({ ...progress });
        }
      }
    } finally {
      await log.close();
    }
    recordsRead += progress.records;
    opts.onProgress?.({ ...progress });
    if (i === 0) halt('copying', opts.haltAt);
  }
  router.flush();
  const carried = keys.complete();
  if (carried.length > 0) {
    logs[0]!.append(LogRecordType.NUMBERED_BATCH, encodeNumberedBatch(nextRow[0]!, 0, keysBatchIpc(carried)));
  }
  if (keys.incomplete > 0) opts.onWarning?.(`${keys.incomplete} Idempotency-Key(s) held by only some of the shards their request spanned (a crash in the middle) are not carried over`);

  const tables = EnrichmentState.union(states);
  let enrichmentRows = 0;
  for (const [table, t] of tables) enrichmentRows += writeTable(table, t, to, logs);

  for (const log of logs) {
    await log.sync();
    await log.close();
  }
  syncDir(tmpRoot);
  const finalRoot = join(dataDir, layout);
  renameSync(tmpRoot, finalRoot);
  syncDir(dataDir);
  halt('renamed', opts.haltAt);

  const meta: DataDirMeta = { format: DATA_DIR_FORMAT, shards: to, layout };
  writeMeta(dataDir, meta);
  halt('committed', opts.haltAt);
  const removed = removeUnreferenced(dataDir, meta);

  return {
    layout,
    rows: nextRow.reduce((a, b) => a + b, 0),
    rows_per_shard: nextRow,
    tables: tables.size,
    enrichment_rows: enrichmentRows,
    records_read: recordsRead,
    upserts_refused: states.reduce((n, s) => n + s.refused.length, 0),
    keys_carried: carried.length,
    keys_left_out: keys.incomplete,
    removed,
    ms: Math.round(performance.now() - started),
  };
}

/** One old log record: event rows routed (returns how many), enrichment ops folded into `state`. */
function apply(rec: LogRecord, router: RowRouter, state: EnrichmentState): number {
  switch (rec.type) {
    case LogRecordType.NUMBERED_BATCH:
      return router.route(decodeNumberedBatch(rec.payload).ipc);
    case LogRecordType.EVENT_BATCH:
      return router.route(rec.payload);
    case LogRecordType.ENRICH_UPSERT: {
      const { table, ipc } = decodeEnrichUpsert(rec.payload);
      state.upsert(table, ipc);
      return 0;
    }
    case LogRecordType.ENRICH_DROP:
      state.drop(decodeEnrichDrop(rec.payload).table);
      return 0;
  }
}

/** A table's rows as one upsert per new shard that owns any of them; returns the rows written. */
function writeTable(table: string, t: TableState, shards: number, logs: FileShardLog[]): number {
  const perShard = new Map<number, Array<[string, Array<string | null>]>>();
  for (const [user, values] of t.rows) {
    const s = shardForUser(user, shards);
    let list = perShard.get(s);
    if (!list) perShard.set(s, (list = []));
    list.push([user, values]);
  }
  for (const [s, rows] of perShard) logs[s]!.append(LogRecordType.ENRICH_UPSERT, encodeEnrichUpsert(table, upsertIpc(rows, t.columns)));
  return t.rows.size;
}

/** Layout directories and shard directories in `dataDir`, for logs and tests. */
export function listLayout(dataDir: string): string[] {
  return existsSync(dataDir) ? readdirSync(dataDir).sort() : [];
}
