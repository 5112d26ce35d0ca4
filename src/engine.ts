/**
 * The engine: shards, rings, merge pool and the two HTTP servers, with an orderly start and stop.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import type { EngineConfig } from './config/schema.js';
import type { EngineContext } from './engine-context.js';
import { listen, type ConnectionCap } from './router/http-server.js';
import { makeIngestApp } from './router/ingest-app.js';
import { IngestMetrics } from './router/ingest-metrics.js';
import { IngestWriter } from './router/ingest-writer.js';
import { makeQueryApp } from './router/query-app.js';
import { makeRootApp } from './router/root-app.js';
import { EngineMetrics } from './router/metrics/engine-metrics.js';
import { QueryTimings } from './router/query-timings.js';
import { checkExposure } from './config/exposure.js';
import { MergePool } from './kinds/merge-pool.js';
import { EnrichmentTables } from './kinds/enrichment-catalog.js';
import { restoreEnrichmentCatalog } from './kinds/enrichment-restore.js';
import { ShardHandle } from './shards/shard-handle.js';
import { makeStartGate, openStartGate } from './shards/start-gate.js';
import { layoutToRepartition, runRepartition } from './shards/repartition/run-repartition.js';
import type { DataDirMeta } from './shards/log/data-dir.js';
import { BUILTIN } from './kinds/limits.js';
import { SwappableApp, makeStartingApp } from './router/starting-app.js';
import { IdempotencyKeys } from './router/idempotency/idempotency-keys.js';
import { IngestAcks } from './router/ingest-ack.js';
import { lockDataDir, type DataDirLock } from './shards/log/data-dir-lock.js';
import { join } from 'node:path';

export interface EngineAddresses {
  ingestUrl: string;
  queryUrl: string;
}

export interface StopReport {
  accepted_events: number;
  shards: Array<{ shard: number; events_received: number; rows_handed_to_polars: number; rows_held: number } | { shard: number; error: string }>;
}

function urlOf(server: Server, host: string): string {
  const { port } = server.address() as AddressInfo;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export class Engine {
  readonly ctx: EngineContext;
  private listening: Array<{ server: Server; connections: ConnectionCap }> = [];
  private addresses: EngineAddresses | null = null;
  private rootApps: { ingest: Hono; query: Hono } | null = null;
  private stopped: Promise<StopReport> | null = null;
  /** Stored data written by another shard count: re-partitioned before the shards open their logs. */
  private readonly repartition: { from: DataDirMeta; gate: SharedArrayBuffer; cancel?: () => Promise<void> } | null;
  /** `dataDir/engine.lock`, held from the constructor until the end of `stop()` */
  private readonly dirLock: DataDirLock;
  /** While re-partitioning the ports serve a starting app; then the real apps are swapped in. */
  private fronts: { ingest: SwappableApp; query: SwappableApp } | null = null;

  constructor(config: EngineConfig, logger: Logger) {
    // loadConfig checks this too; a config built in code must not skip it.
    checkExposure(config);
    // Before anything in the data dir is read: one engine per data dir (data-dir-lock.ts).
    this.dirLock = lockDataDir(config.dataDir, (holder) => logger.warn({ holder }, 'data dir lock was stale (the engine that took it is gone): taking it over'));
    let from: DataDirMeta | null;
    try {
      from = layoutToRepartition(config.dataDir, config.shards, logger);
    } catch (err) {
      this.dirLock.release();
      throw err;
    }
    this.repartition = from ? { from, gate: makeStartGate() } : null;
    const startGate = this.repartition ? { startGate: this.repartition.gate } : {};
    const shards = Array.from(
      { length: config.shards },
      (_, shard) =>
        new ShardHandle({
          shard,
          shards: config.shards,
          ringBytes: config.ringBytes,
          flushIntervalMs: config.flushIntervalMs,
          maxBatchRows: config.maxBatchRows,
          requestTimeoutMs: config.queryTimeoutMs,
          queryConcurrency: config.shardQueryConcurrency,
          queryQueue: config.shardQueryQueue,
          dataDir: config.dataDir,
          fsync: config.fsync,
          segmentRows: config.segmentRows,
          retentionMs: config.retention,
          logFileBytes: config.logFileBytes,
          partialCache: config.partialCache,
          logger,
          ...startGate,
        }),
    );
    this.ctx = {
      config,
      logger,
      shards,
      writer: new IngestWriter(shards),
      metrics: new IngestMetrics(),
      mergePool: new MergePool(Math.max(1, Math.min(2, config.shards))),
      startedAt: Date.now(),
      stopping: false,
      enrichment: new EnrichmentTables(),
      queryTimings: new QueryTimings(),
    };
    this.ctx.prometheus = new EngineMetrics(this.ctx);
  }

  /**
   * Waits for every shard and its polars process, then opens the HTTP ports. When the stored data
   * was written by another shard count, opens the ports first (`/ready` 503, ingest and queries
   * 503 + Retry-After), re-partitions, then starts the shards and serves.
   */
  async start(): Promise<EngineAddresses> {
    const { config, logger } = this.ctx;
    if (this.repartition) await this.repartitionFirst(this.repartition);
    try {
      await Promise.all(this.ctx.shards.map((s) => s.ready));
      // Idempotency keys: the key log plus the keys each shard found in its own log (sent before `started`).
      const keys = await IdempotencyKeys.open(
        { dir: join(config.dataDir, 'idempotency'), fsync: config.fsync === 'batch', windowMs: config.idempotencyWindow, maxKeys: config.idempotencyMaxKeys, logger },
        this.ctx.shards.map((s) => s.recoveredKeys),
      );
      for (const s of this.ctx.shards) s.recoveredKeys = [];
      this.ctx.acks = new IngestAcks(this.ctx, keys);
    } catch (err) {
      logger.error({ err }, 'a shard failed to start; stopping');
      await this.stop();
      throw err;
    }
    const ingest = makeIngestApp(this.ctx);
    const query = makeQueryApp(this.ctx);
    if (this.singlePort) {
      const app = makeRootApp([ingest, query], this.ctx);
      this.rootApps = { ingest: app, query: app };
    } else {
      this.rootApps = { ingest: makeRootApp([ingest], this.ctx), query: makeRootApp([query], this.ctx) };
    }
    if (this.fronts) {
      this.fronts.ingest.swap(this.rootApps.ingest);
      this.fronts.query.swap(this.rootApps.query);
      logger.info({ shards: config.shards, ...this.addresses }, 'engine serving the re-partitioned data');
    } else {
      await this.listenOn(this.rootApps.ingest, this.rootApps.query);
      logger.info({ shards: config.shards, ...this.addresses }, 'engine listening');
    }
    void restoreEnrichmentCatalog(this.ctx.shards, this.ctx.enrichment!, config.queryTimeoutMs, logger);
    return this.urls;
  }

  private get singlePort(): boolean {
    const { config } = this.ctx;
    return config.ingestPort === config.queryPort && config.ingestPort !== 0;
  }

  private async listenOn(ingestApp: Hono, queryApp: Hono): Promise<void> {
    const { config, logger } = this.ctx;
    if (this.singlePort) {
      const both = await listen(ingestApp, config.host, config.ingestPort, config, logger);
      this.listening = [both];
      this.addresses = { ingestUrl: urlOf(both.server, config.host), queryUrl: urlOf(both.server, config.host) };
    } else {
      const a = await listen(ingestApp, config.host, config.ingestPort, config, logger);
      const b = await listen(queryApp, config.host, config.queryPort, config, logger);
      this.listening = [a, b];
      this.addresses = { ingestUrl: urlOf(a.server, config.host), queryUrl: urlOf(b.server, config.host) };
    }
  }

  /**
   * Opens the ports with the starting app, re-partitions the data dir in a worker thread, then
   * lets the shards open their logs. A failure leaves the old layout intact and fails the start.
   */
  private async repartitionFirst(r: { from: DataDirMeta; gate: SharedArrayBuffer; cancel?: () => Promise<void> }): Promise<void> {
    const { config, logger } = this.ctx;
    const starting = makeRootApp([makeStartingApp()], this.ctx);
    const ingest = new SwappableApp(starting);
    this.fronts = { ingest, query: this.singlePort ? ingest : new SwappableApp(starting) };
    await this.listenOn(this.fronts.ingest.front, this.fronts.query.front);
    logger.info({ shards: config.shards, repartitioning: { from_shards: r.from.shards, to_shards: config.shards }, ...this.addresses }, 'engine listening');
    const run = runRepartition({
      dataDir: config.dataDir,
      from: r.from,
      to: config.shards,
      maxBatchRows: config.maxBatchRows,
      enrichmentMaxColumns: BUILTIN.enrichmentMaxColumns,
      pageRows: BUILTIN.exportMaxPage,
      logger,
    });
    r.cancel = run.cancel;
    try {
      await run.done;
    } catch (err) {
      openStartGate(r.gate, false);
      logger.error({ err }, 're-partitioning failed; stopping');
      await this.stop();
      throw err;
    }
    openStartGate(r.gate, true);
  }

  /** The app each port serves (the same one on a single port): its `routes` are what is served. */
  get apps(): { ingest: Hono; query: Hono } {
    if (!this.rootApps) throw new Error('engine not started');
    return this.rootApps;
  }

  get urls(): EngineAddresses {
    if (!this.addresses) throw new Error('engine not started');
    return this.addresses;
  }

  /**
   * Stops accepting ingest (503), drains every ring into polars, stops the polars processes and
   * the workers, closes the ports. Idempotent.
   */
  stop(): Promise<StopReport> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<StopReport> {
    const { logger, shards, config } = this.ctx;
    this.ctx.stopping = true;
    // an unfinished re-partitioning just stops: the old layout is intact until its commit point
    await this.repartition?.cancel?.();
    logger.info({ buffered: this.ctx.writer.buffered() }, 'stopping: draining rings into polars');
    const results = await Promise.all(
      shards.map(async (s) => {
        try {
          const r = await s.shutdown(Math.max(config.queryTimeoutMs, 30_000));
          if (!r) return { shard: s.shard, error: s.failure()?.message ?? 'shard was down' };
          return { shard: s.shard, events_received: r.events_received, rows_handed_to_polars: r.rows_handed_to_polars, rows_held: r.rows_held };
        } catch (err) {
          return { shard: s.shard, error: (err as Error).message };
        }
      }),
    );
    for (const { server } of this.listening) {
      server.close();
      server.closeAllConnections();
    }
    await this.ctx.mergePool.close();
    await this.ctx.acks?.keys?.close().catch((err: unknown) => logger.warn({ err }, 'idempotency key log did not close cleanly'));
    this.ctx.prometheus?.close();
    const report: StopReport = { accepted_events: this.ctx.metrics.totalEvents, shards: results };
    const handed = results.reduce((n, r) => n + ('error' in r ? 0 : (r.rows_handed_to_polars ?? 0)), 0);
    this.dirLock.release();
    logger.info({ ...report, rows_handed_to_polars: handed }, 'stopped: every shard flushed to polars');
    return report;
  }
}
