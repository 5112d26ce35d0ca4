/**
 * Main side of re-partitioning: at engine start, decides from `meta.json` whether the stored
 * data must be re-partitioned for the configured shard count, and runs it in a worker thread
 * (repartition-worker.ts) with progress logged, while the HTTP ports answer (`/ready` is 503
 * until the shards, which start only afterwards, are ready).
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { WORKER_BOOT_URL, workerEntry } from '../../workers/worker-url.js';
import { bundledWorker } from '../../workers/worker-bundle.js';
import { POOL_YOUNG_MB } from '../../workers/young-generation.js';
import { readMeta, removeUnreferenced, type DataDirMeta } from '../log/data-dir.js';
import type { RepartitionResult, RepartitionStep } from './repartition.js';
import type { RepartitionMessage, RepartitionWorkerData } from './repartition-worker.js';

/**
 * What the data dir needs before the shards start: null when it is new or already holds
 * `shards` shards, else the layout to re-partition from. Removes what a crashed
 * re-partitioning left behind (a half-written new layout, or old shard directories).
 */
export function layoutToRepartition(dataDir: string, shards: number, logger: Logger): DataDirMeta | null {
  mkdirSync(dataDir, { recursive: true });
  const meta = readMeta(dataDir);
  if (!meta) return null;
  const removed = removeUnreferenced(dataDir, meta);
  if (removed.length > 0) logger.warn({ data_dir: resolve(dataDir), removed }, 'data dir: removed what an unfinished re-partitioning left');
  return meta.shards === shards ? null : meta;
}

export interface RunRepartitionOptions {
  dataDir: string;
  from: DataDirMeta;
  to: number;
  maxBatchRows: number;
  enrichmentMaxColumns: number;
  /** rows per page when an old shard's segments are read through polars */
  pageRows: number;
  logger: Logger;
}

/** The test hook: `ENGINE_TEST_REPARTITION_HALT=copying|renamed|committed` stops the worker there. */
function haltAt(): RepartitionStep | undefined {
  const at = process.env.ENGINE_TEST_REPARTITION_HALT;
  return at === 'copying' || at === 'renamed' || at === 'committed' ? at : undefined;
}

/** Runs the re-partitioning in a worker thread; resolves once `meta.json` names the new layout. */
export function runRepartition(opts: RunRepartitionOptions): { done: Promise<RepartitionResult>; cancel: () => Promise<void> } {
  const { logger } = opts;
  logger.info({ data_dir: resolve(opts.dataDir), from_shards: opts.from.shards, to_shards: opts.to }, 're-partitioning the stored data for the new shard count before serving');
  const workerData: RepartitionWorkerData = {
    entry: workerEntry('src/shards/repartition/repartition-worker.ts'),
    dataDir: opts.dataDir,
    from: opts.from,
    to: opts.to,
    maxBatchRows: opts.maxBatchRows,
    enrichmentMaxColumns: opts.enrichmentMaxColumns,
    pageRows: opts.pageRows,
    haltAt: haltAt(),
  };
  const worker = new Worker(bundledWorker('src/shards/repartition/repartition-worker.ts') ?? WORKER_BOOT_URL, {
    workerData,
    name: 'repartition',
    resourceLimits: { maxYoungGenerationSizeMb: POOL_YOUNG_MB },
  });
  let settled = false;
  const done = new Promise<RepartitionResult>((resolveDone, reject) => {
    worker.on('message', (msg: RepartitionMessage) => {
      switch (msg.type) {
        case 'progress':
          logger.info(msg.progress, 're-partitioning');
          break;
        case 'warning':
          logger.warn(`re-partitioning: ${msg.message}`);
          break;
        case 'done':
          settled = true;
          logger.info(msg.result, 're-partitioned: the new layout is in place');
          resolveDone(msg.result);
          void worker.terminate();
          break;
        case 'error':
          settled = true;
          reject(new Error(`re-partitioning from ${opts.from.shards} to ${opts.to} shards failed: ${msg.message} (the old layout is intact)`));
          void worker.terminate();
          break;
      }
    });
    worker.on('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.on('exit', (code) => {
      if (!settled) reject(new Error(`re-partitioning worker exited with code ${code} before it finished (the old layout is intact)`));
    });
  });
  done.catch(() => undefined);
  return {
    done,
    cancel: async () => {
      if (!settled) await worker.terminate();
    },
  };
}
