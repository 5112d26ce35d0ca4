/** What the HTTP apps share: config, shards, the ring writer, metrics and the merge pool. */
import type { AnswerBudget } from './router/answer-budget.js';
import type { Logger } from 'pino';
import type { EngineConfig } from './config/schema.js';
import type { IngestMetrics } from './router/ingest-metrics.js';
import type { IngestWriter } from './router/ingest-writer.js';
import type { QueryTimings } from './router/query-timings.js';
import type { ShardHandle } from './shards/shard-handle.js';
import type { MergePool } from './kinds/merge-pool.js';
import type { EnrichmentTables } from './kinds/enrichment-catalog.js';
import type { EngineMetrics } from './router/metrics/engine-metrics.js';
import type { IngestAcks } from './router/ingest-ack.js';

export interface EngineContext {
  config: EngineConfig;
  logger: Logger;
  shards: ShardHandle[];
  writer: IngestWriter;
  metrics: IngestMetrics;
  mergePool: MergePool;
  startedAt: number;
  stopping: boolean;
  /** Per-kind query counts and recent latencies, fed by the analytics app. */
  queryTimings?: QueryTimings;
  /** Bytes of JSON answers held until their clients take them (src/router/answer-budget.ts); made by the analytics app. */
  answers?: AnswerBudget;
  /** Enrichment tables known on the main thread (validates `<table>.<column>`); set by the engine. */
  enrichment?: EnrichmentTables;
  /** The engine's Prometheus registry and metrics (GET /metrics); set by the engine. */
  prometheus?: EngineMetrics;
  /** ?wait=true and Idempotency-Key handling with the engine's key store; set by the engine at start. */
  acks?: IngestAcks;
}
