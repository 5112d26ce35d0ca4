/**
 * The shard protocol: messages between the main thread (shard-handle.ts) and a shard actor
 * (shard-worker.ts). Typed once here and imported by both sides.
 */
import type { QueryPlan } from '../query/plan.js';
import type { ShardRingBuffers } from './shard-ring.js';

export interface ShardWorkerData {
  entry: string;
  shard: number;
  buffers: ShardRingBuffers;
  flushIntervalMs: number;
  maxBatchRows: number;
  polarsTimeoutMs: number;
}

export type ShardRequest =
  | { id: number; kind: 'query'; plan: QueryPlan }
  | { id: number; kind: 'query_many'; plans: QueryPlan[] }
  | { id: number; kind: 'stats' }
  | { id: number; kind: 'flush' }
  | { id: number; kind: 'shutdown' }
  // Enrichment tables and custom plugins (src/router/routes/enrichment.ts, custom.ts): forwarded
  // to the polars process as the sidecar ops of the same name.
  | { id: number; kind: 'enrich_upsert'; table: string; ipc: Uint8Array }
  | { id: number; kind: 'enrich_drop'; table: string }
  | { id: number; kind: 'enrich_list' }
  | { id: number; kind: 'custom_list' };

export type ShardRequestKind = ShardRequest['kind'];

/** A partial answer: Arrow IPC stream bytes, transferred (not copied) to the main thread. */
export interface QueryResult {
  ipc: Uint8Array;
  rows: number;
}

export interface ShardStats {
  shard: number;
  state: 'starting' | 'ready' | 'failed' | 'stopped';
  events_received: number;
  rows_held: number;
  rows_handed_to_polars: number;
  batches_sealed: number;
  last_seal_ms: number | null;
  last_seal_age_ms: number | null;
  polars_pid: number | null;
  polars_rss_bytes: number | null;
  polars_chunks: number | null;
  queries_served: number;
  errors: number;
  last_error: string | null;
}

export interface FlushResult {
  rows_handed_to_polars: number;
  rows_held: number;
}

export interface ShutdownResult extends FlushResult {
  events_received: number;
  batches_sealed: number;
}

/** Several partials in one buffer: `parts[i]` bytes each, in plan order. */
export interface QueryManyResult {
  ipc: Uint8Array;
  parts: number[];
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
  stats: ShardStats;
  flush: FlushResult;
  shutdown: ShutdownResult;
  enrich_upsert: EnrichUpsertResult;
  enrich_drop: EnrichDropResult;
  /** body: Arrow IPC, one row per table: `table` Utf8, `rows` Int64, `columns` Utf8 (comma-joined) */
  enrich_list: QueryResult;
  custom_list: CustomListResult;
}

export type ShardResponse =
  | { type: 'response'; id: number; ok: true; result: ShardResultMap[ShardRequestKind] }
  | { type: 'response'; id: number; ok: false; error: { code: string; message: string } };

/** Unsolicited messages from a shard: readiness, failure and log lines for the main logger. */
export type ShardEvent =
  | { type: 'ready'; pid: number | undefined }
  | { type: 'failed'; code: string; message: string }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> };

export type ShardMessage = ShardResponse | ShardEvent;
