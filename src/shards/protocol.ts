/**
 * The shard protocol: messages between the main thread (shard-handle.ts) and a shard actor
 * (shard-worker.ts). Typed once here and imported by both sides.
 */
import type { ShardRingBuffers } from './shard-ring.js';

/** A query plan as a shard sees it: JSON handed to polars, opaque here (its types live in src/kinds/). */
export interface QueryPlan {
  readonly kind: string;
}

export interface ShardWorkerData {
  entry: string;
  shard: number;
  /** the engine's shard count, checked against `dataDir/meta.json` */
  shards: number;
  buffers: ShardRingBuffers;
  flushIntervalMs: number;
  maxBatchRows: number;
  /**
   * How long polars may take to acknowledge an append, an enrichment op or a stats/ping before
   * the process is taken for hung, killed and restored (counted from when it reaches the head
   * of polars' queue, see polars-process.ts).
   */
  polarsTimeoutMs: number;
  /** sealed batches logged but not yet acknowledged by polars, bytes; above it the ring is not drained */
  maxInflightBytes: number;
  dataDir: string;
  fsync: 'batch' | 'off';
  /** open the log only once this start gate opens (after a re-partitioning; start-gate.ts) */
  startGate?: SharedArrayBuffer;
  /** open rows after which polars rolls them into a segment file (then the log before is deleted) */
  segmentRows: number;
  /** retention, ms (segments whose newest event is older than min(newest, now) − this are dropped); null: none */
  retentionMs: number | null;
  /** size past which the shard log starts a new file */
  logFileBytes: number;
  /** polars keeps cached partials (config `partialCache`); absent: true */
  partialCache?: boolean;
}

/**
 * `timeoutMs` of query and query_many is what is left of the request's time when it leaves the
 * main thread's admission queue: the worker kills polars if its answer is not in by then.
 * `cut`: the ring's `pushed` count when the fan-out was dispatched (read for every shard in one
 * synchronous step, so it holds whole ingest requests only); the query sees the events before
 * it and none after (src/kinds/fanout.ts). Without one, it sees everything drained on arrival.
 */
export type ShardRequest =
  | { id: number; kind: 'query'; plan: QueryPlan; body?: Uint8Array; timeoutMs: number; cut?: number }
  | { id: number; kind: 'query_many'; plans: QueryPlan[]; timeoutMs: number; cut?: number }
  | { id: number; kind: 'stats' }
  | { id: number; kind: 'shutdown' }
  // Enrichment tables and custom plugins (src/router/routes/enrichment.ts, custom.ts): forwarded
  // to the polars process as the sidecar ops of the same name; upsert and drop are logged first.
  | { id: number; kind: 'enrich_upsert'; table: string; ipc: Uint8Array }
  | { id: number; kind: 'enrich_drop'; table: string }
  | { id: number; kind: 'enrich_list' }
  | { id: number; kind: 'custom_list' };

export type ShardRequestKind = ShardRequest['kind'];

/**
 * Where a query's time went on one shard, ms (logged per request at debug level by the query
 * app): `queued` waiting for an admission slot (main thread), `handover` draining, sealing,
 * syncing and handing the ring's events to polars before the query is sent (of which `sync` to
 * the log's fsync included; the rest is polars taking the appends), `polars` from sending the
 * query to its answer, of which `op` in the polars process itself (plan and Arrow encode: the
 * rest is pipes, frames and polars' queue), using `op_cpu` of CPU (much less than `op`: it
 * waited for a core, e.g. behind the other shard's polars process or at its nice 10).
 */
export interface ShardTiming {
  queued_ms?: number;
  handover_ms: number;
  sync_ms?: number;
  polars_ms: number;
  op_ms: number;
  op_cpu_ms?: number;
}

/** A partial answer: Arrow IPC stream bytes, transferred (not copied) to the main thread. */
export interface QueryResult {
  ipc: Uint8Array;
  rows: number;
  /** query only (not enrich_list) */
  timing?: ShardTiming;
}

export interface ShardStats {
  shard: number;
  state: 'starting' | 'restoring' | 'ready' | 'failed' | 'stopped';
  events_received: number;
  rows_held: number;
  /** rows of batches sealed by this run of the engine and acknowledged by polars (once each) */
  rows_handed_to_polars: number;
  batches_sealed: number;
  last_seal_ms: number | null;
  last_seal_age_ms: number | null;
  polars_pid: number | null;
  polars_rss_bytes: number | null;
  polars_chunks: number | null;
  /** bytes of cached partials polars keeps (python/engine_polars/partial_cache.py; asked only when idle) */
  polars_partial_cache_bytes: number | null;
  /** polars processes started after the first (crash, kill from outside, killed by us) */
  polars_restarts: number;
  /** duration of the last replay of the log into a polars process, ms */
  last_restore_ms: number | null;
  /** rows replayed from the log into polars processes (engine start and every restore) */
  rows_restored: number;
  log_bytes: number;
  log_records: number;
  /** torn or corrupt log records cut at open (each with everything after it) */
  torn_tail_records_cut: number;
  /** duration of the last fdatasync of the log, ms */
  last_fsync_ms: number | null;
  /** segment files held (sealed, immutable rows; python/engine_polars/segments.py) */
  segments: number;
  segment_bytes: number;
  rows_in_segments: number;
  /** rows dropped by retention (whole segments) since the shard started */
  rows_dropped_by_retention: number;
  /** duration of the last roll of open rows into a segment file, ms */
  last_roll_ms: number | null;
  /** events settled (logged and synced, or dropped) by this run: a ?wait=true part is durable once passed */
  events_durable: number;
  /** events dropped because the log could not take them (ENOSPC, EIO): acknowledged 202 and lost */
  events_dropped_storage: number;
  /** why the log fails now (ingest for this shard answers 507 until it takes writes again), or null */
  storage_error: string | null;
  queries_served: number;
  /** query-type requests (query, query_many) running on this shard now (main-thread admission) */
  queries_running: number;
  /** ... and waiting for a slot */
  queries_queued: number;
  /** queries whose polars process was killed because they ran past their timeout */
  queries_cancelled: number;
  /** queries answered SHARD_BUSY (429) because the queue was full */
  queries_rejected_busy: number;
  errors: number;
  last_error: string | null;
}

/** What the worker itself knows; the handle adds the admission counts. */
export type ShardWorkerStats = Omit<ShardStats, 'queries_running' | 'queries_queued' | 'queries_rejected_busy'>;

export interface ShutdownResult {
  events_received: number;
  batches_sealed: number;
  rows_handed_to_polars: number;
  rows_held: number;
}

/** Several partials in one buffer: `parts[i]` bytes each, in plan order. */
export interface QueryManyResult {
  ipc: Uint8Array;
  parts: number[];
  timing?: ShardTiming;
}

/** enrich_upsert: this shard's table after the upsert. */
export interface EnrichUpsertResult {
  table: string;
  /** rows in this request after de-duplication by user_id (last wins) */
  upserted: number;
  /** rows this shard's table holds afterwards */
  rows: number;
  columns: string[];
}

export interface EnrichDropResult {
  table: string;
  dropped: boolean;
  rows: number;
}

/** A custom plugin the polars process discovered (python/engine_polars/custom/). */
export interface CustomPluginInfo {
  name: string;
  merge: Record<string, unknown>;
  doc: string;
}

export interface CustomListResult {
  plugins: CustomPluginInfo[];
  /** modules that could not be loaded, with why */
  errors: Array<{ module: string; message: string }>;
}

export interface ShardResultMap {
  query: QueryResult;
  query_many: QueryManyResult;
  stats: ShardWorkerStats;
  shutdown: ShutdownResult;
  enrich_upsert: EnrichUpsertResult;
  enrich_drop: EnrichDropResult;
  /** body: Arrow IPC, one row per table: `table` LargeUtf8, `rows` Int64, `columns` LargeUtf8 (comma-joined) */
  enrich_list: QueryResult;
  custom_list: CustomListResult;
}

export type ShardResponse =
  | { type: 'response'; id: number; ok: true; result: ShardResultMap[ShardRequestKind] }
  | { type: 'response'; id: number; ok: false; error: { code: string; message: string } };

/**
 * Unsolicited messages from a shard. `started`: the log is open and a polars process answers,
 * so ingest can go on (the engine opens its ports); `state`: the shard turned ready for queries
 * or started restoring (replaying its log into a new polars process); `failed`: for good.
 */
export type ShardEvent =
  | { type: 'started'; pid: number | undefined }
  | DurableEvent
  /** the log failed (`ok: false`, ingest for this shard answers 507) or takes writes again */
  | { type: 'storage'; ok: boolean; code?: string; message?: string }
  /** the idempotency keys found in the log at start (sent before `started`) */
  | { type: 'keys'; keys: StoredKey[] }
  | { type: 'state'; state: 'restoring' | 'ready'; pid: number | undefined }
  | { type: 'failed'; code: string; message: string }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> };

export type ShardMessage = ShardResponse | ShardEvent;

/**
 * Every event record the shard took from its ring below `through` (counted as the producer
 * counts `pushed`) is settled: durable, or, for those in `dropped`, thrown away because the log
 * could not take them. Posted after every sync that settled something.
 */
export interface DurableEvent {
  type: 'durable';
  through: number;
  dropped?: { from: number; to: number; code: string; message: string };
}

/** An Idempotency-Key part found in a logged batch (src/shards/batch-keys.ts). */
export interface StoredKey {
  key: string;
  /** SHA-256 of route + body, base64url */
  hash: string;
  /** ms the request arrived */
  at: number;
  /** events of this part; of the whole request; shards the request spans */
  events: number;
  total: number;
  parts: number;
  /** the request asked for ?wait=true */
  wait: boolean;
}
