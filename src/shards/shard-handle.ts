/**
 * Main-thread handle of one shard actor: starts the worker, owns the producer side of its ring,
 * admits queries (a bounded number at once, a bounded FIFO queue behind them, SHARD_BUSY
 * beyond) and turns the message protocol into promises with timeouts.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { WORKER_BOOT_URL, workerEntry } from '../workers/worker-url.js';
import { bundledWorker } from '../workers/worker-bundle.js';
import { SHARD_YOUNG_MB } from '../workers/young-generation.js';
import { ShardError, shardBusy, shardDown, shardErrorFromWire, shardRestoring, shardTimeout } from './shard-errors.js';
import { DurabilityTracker } from './durability.js';
import { QueryAdmission } from './query-admission.js';
import { ShardRing, ShardState, StorageFault, makeShardRingBuffers } from './shard-ring.js';
import type { StoredKey, QueryPlan, ShardMessage, ShardRequest, ShardRequestKind, ShardResultMap, ShardStats, ShardTiming, ShardWorkerData } from './protocol.js';

export interface ShardHandleOptions {
  shard: number;
  /** the engine's shard count (checked against the data dir) */
  shards: number;
  ringBytes: number;
  flushIntervalMs: number;
  maxBatchRows: number;
  /** default time limit of a request (queries: including their wait for a slot) */
  requestTimeoutMs: number;
  /** query-type requests (query, query_many) run at once */
  queryConcurrency: number;
  /** query-type requests that may wait for a slot; beyond, SHARD_BUSY */
  queryQueue: number;
  dataDir: string;
  fsync: 'batch' | 'off';
  /** segment store: see ShardWorkerData */
  segmentRows: number;
  retentionMs: number | null;
  logFileBytes: number;
  /** polars keeps cached partials (config `partialCache`); default true */
  partialCache?: boolean;
  logger: Logger;
  /** the worker opens its log only once this gate opens (start-gate.ts: after a re-partitioning) */
  startGate?: SharedArrayBuffer;
}

export interface QueryOptions {
  /** forwarded as the polars `query` frame's body (e.g. Arrow IPC the plan refers to) */
  body?: Uint8Array;
  /** default: `requestTimeoutMs`; counts from this call, queue time included */
  timeoutMs?: number;
  /** the query's visibility cut on this shard: its ring's `pushed` at dispatch (see protocol.ts) */
  cut?: number;
}

type RequestBody<K extends ShardRequestKind> = Omit<Extract<ShardRequest, { kind: K }>, 'id' | 'kind'>;

/**
 * The main-side timer of a query runs this much longer than the time the worker is given, so the
 * worker's answer (a 504 after it killed polars) normally comes first, and the main side only
 * times out when the worker itself does not answer.
 */
export function mainSideGraceMs(timeoutMs: number): number {
  return Math.min(1000, Math.max(100, Math.round(timeoutMs / 10)));
}

export class ShardHandle {
  readonly shard: number;
  readonly ring: ShardRing;
  /** Resolves once the worker has opened its log and its polars process answers (ingest can start). */
  readonly ready: Promise<void>;
  private readonly worker: Worker;
  private readonly logger: Logger;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private nextId = 1;
  private down: ShardError | null = null;
  private exited = false;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private readonly queries: QueryAdmission;
  /** Settles `?wait=true` parts from the worker's `durable` messages. */
  readonly durability: DurabilityTracker;
  /** Idempotency keys the worker found in its log at start (read once by the key store). */
  recoveredKeys: StoredKey[] = [];
  private storageMessage: string | null = null;

  constructor(private readonly options: ShardHandleOptions) {
    this.shard = options.shard;
    this.durability = new DurabilityTracker(options.shard);
    this.logger = options.logger.child({ shard: options.shard });
    this.queries = new QueryAdmission(options.queryConcurrency, options.queryQueue, {
      busy: (running, queued) => shardBusy(this.shard, running, queued),
      timedOut: (ms) => shardTimeout(this.shard, 'query (waiting for a slot)', ms),
    });
    const buffers = makeShardRingBuffers(options.ringBytes);
    this.ring = new ShardRing(buffers);
    const workerData: ShardWorkerData = {
      entry: workerEntry('src/shards/shard-worker.ts'),
      shard: options.shard,
      shards: options.shards,
      buffers,
      flushIntervalMs: options.flushIntervalMs,
      maxBatchRows: options.maxBatchRows,
      polarsTimeoutMs: polarsBusyLimitMs(options.requestTimeoutMs),
      // As many bytes sealed and not yet acknowledged as two rings hold (16 MiB for the default
      // 8 MiB ring): a stalled polars then fills the ring and ingest answers 503.
      maxInflightBytes: 2 * options.ringBytes,
      ...(options.startGate ? { startGate: options.startGate } : {}),
      dataDir: options.dataDir,
      fsync: options.fsync,
      segmentRows: options.segmentRows,
      retentionMs: options.retentionMs,
      logFileBytes: options.logFileBytes,
      partialCache: options.partialCache ?? true,
    };
    // Plain JavaScript when it can be bundled: no tsx loader thread per shard (worker-bundle.ts).
    this.worker = new Worker(bundledWorker('src/shards/shard-worker.ts') ?? WORKER_BOOT_URL, {
      workerData,
      name: `shard-${options.shard}`,
      resourceLimits: { maxYoungGenerationSizeMb: SHARD_YOUNG_MB },
    });
    let markStarted: () => void;
    let markFailed: (e: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      markStarted = resolve;
      markFailed = reject;
    });
    // Start-up failures are reported through `ready`; keep an unobserved rejection quiet.
    this.ready.catch(() => undefined);
    this.worker.on('message', (msg: ShardMessage) => {
      switch (msg.type) {
        case 'response':
          this.settle(msg.id, msg.ok ? { value: msg.result } : { error: shardErrorFromWire(msg.error) });
          break;
        case 'started':
          // 'shard ready' itself comes with the `state` message (at once for an empty log).
          if (!this.isReady()) this.logger.info({ polars_pid: msg.pid }, 'shard started; restoring from its log');
          markStarted();
          break;
        case 'state':
          if (msg.state === 'ready') {
            this.logger.info({ polars_pid: msg.pid }, 'shard ready');
            for (const w of this.readyWaiters) w.resolve();
            this.readyWaiters = [];
          }
          break;
        case 'failed':
          this.fail(new ShardError('SHARD_DOWN', msg.message));
          this.logger.error({ code: msg.code }, msg.message);
          markFailed(this.down!);
          break;
        case 'log':
          this.logger[msg.level](msg.fields ?? {}, msg.msg);
          break;
        case 'durable':
          this.durability.settle(msg);
          break;
        case 'storage':
          this.storageMessage = msg.ok ? null : (msg.message ?? msg.code ?? 'log write failed');
          break;
        case 'keys':
          this.recoveredKeys = msg.keys;
          break;
      }
    });
    this.worker.on('error', (err) => {
      this.logger.error({ err }, 'shard worker crashed');
      this.fail(shardDown(this.shard, `worker crashed: ${err.message}`));
      markFailed(this.down!);
    });
    this.worker.on('exit', (code) => {
      this.exited = true;
      if (!this.down && this.ring.state() !== ShardState.STOPPED) {
        this.fail(shardDown(this.shard, `worker exited with code ${code}`));
        markFailed(this.down!);
      }
      // after a stop, too: a part nobody settled by now never will be
      this.durability.fail(new ShardError('SHARD_STOPPING', `shard ${this.shard} has stopped before confirming the events were durable`));
    });
  }

  /** True when the shard answers queries: started, restored, not failed. */
  isReady(): boolean {
    return this.down === null && this.ring.state() === ShardState.READY;
  }

  /** True when ingest may write to the ring: also while the shard restores (it keeps draining and logging). */
  acceptsWrites(): boolean {
    const state = this.ring.state();
    return this.down === null && !this.exited && state !== ShardState.FAILED && state !== ShardState.STOPPED;
  }

  /** Why the shard does not answer queries now (SHARD_RESTORING or SHARD_DOWN), or null when it does. */
  readiness(): ShardError | null {
    if (this.down) return this.down;
    switch (this.ring.state()) {
      case ShardState.READY:
        return null;
      case ShardState.RESTORING:
        return shardRestoring(this.shard, 'replaying its log');
      case ShardState.STARTING:
        return shardRestoring(this.shard, 'starting');
      case ShardState.STOPPED:
        return new ShardError('SHARD_STOPPING', `shard ${this.shard} has stopped`);
      default:
        return shardDown(this.shard, 'failed');
    }
  }

  /**
   * Why this shard's log does not take writes now (INSUFFICIENT_STORAGE: ingest answers 507 for
   * its events), or null. Read from the ring's STORAGE word, so the router sees a failure as soon
   * as the worker has; the worker's message adds the errno's text.
   */
  storageError(): ShardError | null {
    const fault = this.ring.storageFault();
    if (fault === StorageFault.NONE) return null;
    const name = Object.entries(StorageFault).find(([, v]) => v === fault)?.[0] ?? 'EIO';
    return new ShardError('INSUFFICIENT_STORAGE', `shard ${this.shard} cannot write its log: ${this.storageMessage ?? name}`);
  }

  /** The permanent failure, if the shard failed for good. */
  failure(): ShardError | null {
    return this.down;
  }

  /** Resolves when the shard is ready for queries (now, or after its restore). */
  whenReady(): Promise<void> {
    if (this.isReady()) return Promise.resolve();
    if (this.down) return Promise.reject(this.down);
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Whether a query now would run or queue (not SHARD_BUSY); a fan-out checks every shard first. */
  canAdmit(): boolean {
    return this.queries.canAdmit();
  }

  /**
   * The SHARD_BUSY error for a query this shard cannot admit, counted in the stats: a fan-out
   * that finds `canAdmit()` false throws this instead of sending anything.
   */
  busyError(): ShardError {
    return this.queries.busyError() as ShardError;
  }

  /** Admission counts for the stats. */
  admission(): { queries_running: number; queries_queued: number; queries_rejected_busy: number } {
    return { queries_running: this.queries.running, queries_queued: this.queries.queued, queries_rejected_busy: this.queries.rejectedBusy };
  }

  /**
   * Sends one request to the worker. Prefer the typed methods below: `query` and `queryMany`
   * go through admission, this does not.
   */
  request<K extends ShardRequestKind>(kind: K, body: RequestBody<K>, timeoutMs = this.options.requestTimeoutMs): Promise<ShardResultMap[K]> {
    if (kind === 'stats') return this.stats(timeoutMs) as Promise<unknown> as Promise<ShardResultMap[K]>;
    return this.send(kind, body, timeoutMs);
  }

  /**
   * Runs one plan on this shard. Rejects at once with SHARD_RESTORING / SHARD_DOWN when the
   * shard does not answer queries, SHARD_BUSY when `queryConcurrency` run and `queryQueue` wait;
   * POLARS_TIMEOUT when polars did not answer in time (it was killed; the shard restores).
   *
   * @example await shard.query(plan, { body: momentsIpc, timeoutMs: 5000 })
   */
  query(plan: QueryPlan, opts: QueryOptions = {}): Promise<ShardResultMap['query']> {
    const cut = opts.cut === undefined ? {} : { cut: opts.cut };
    return this.admitted(opts.timeoutMs ?? this.options.requestTimeoutMs, (timeoutMs) =>
      this.send('query', opts.body ? { plan, body: opts.body, timeoutMs, ...cut } : { plan, timeoutMs, ...cut }, timeoutMs + mainSideGraceMs(timeoutMs)),
    );
  }

  /** Several plans in one round trip; the partials come back in one buffer (see QueryManyResult). */
  queryMany(plans: QueryPlan[], timeoutMs?: number, cut?: number): Promise<ShardResultMap['query_many']> {
    return this.admitted(timeoutMs ?? this.options.requestTimeoutMs, (left) =>
      this.send('query_many', cut === undefined ? { plans, timeoutMs: left } : { plans, timeoutMs: left, cut }, left + mainSideGraceMs(left)),
    );
  }

  /** Upserts rows (Arrow IPC stream of Utf8 columns, `user_id` first) into an enrichment table; logged first. */
  enrichUpsert(table: string, ipc: Uint8Array, timeoutMs?: number): Promise<ShardResultMap['enrich_upsert']> {
    return this.send('enrich_upsert', { table, ipc }, timeoutMs);
  }

  enrichDrop(table: string, timeoutMs?: number): Promise<ShardResultMap['enrich_drop']> {
    return this.send('enrich_drop', { table }, timeoutMs);
  }

  /** This shard's enrichment tables as an Arrow IPC partial (see ShardResultMap['enrich_list']). */
  enrichList(timeoutMs?: number): Promise<ShardResultMap['enrich_list']> {
    return this.send('enrich_list', {}, timeoutMs);
  }

  /** The custom plugins this shard's polars process discovered. */
  customList(timeoutMs?: number): Promise<ShardResultMap['custom_list']> {
    return this.send('custom_list', {}, timeoutMs);
  }

  /** The worker's stats plus this handle's admission counts. */
  async stats(timeoutMs = 5000): Promise<ShardStats> {
    return { ...(await this.send('stats', {}, timeoutMs)), ...this.admission() };
  }

  /** Drains, logs and hands everything to polars, stops the polars process and the worker. */
  async shutdown(timeoutMs: number): Promise<ShardResultMap['shutdown'] | null> {
    try {
      if (this.down || this.exited) return null;
      return await this.send('shutdown', {}, timeoutMs);
    } finally {
      await this.worker.terminate();
    }
  }

  /**
   * Not ready → rejected at once (SHARD_RESTORING / SHARD_DOWN); else through admission. The
   * time waited for a slot is added to the result's timing.
   */
  private admitted<T extends { timing?: ShardTiming }>(timeoutMs: number, run: (leftMs: number) => Promise<T>): Promise<T> {
    const notReady = this.readiness();
    if (notReady) return Promise.reject(notReady);
    const asked = performance.now();
    return this.queries.run(timeoutMs, async (left) => {
      const queued = performance.now() - asked;
      const result = await run(left);
      if (result.timing) result.timing.queued_ms = queued;
      return result;
    });
  }

  private send<K extends ShardRequestKind>(kind: K, body: RequestBody<K>, timeoutMs = this.options.requestTimeoutMs): Promise<ShardResultMap[K]> {
    if (this.down) return Promise.reject(this.down);
    if (this.exited) return Promise.reject(shardDown(this.shard, 'worker has exited'));
    const id = this.nextId++;
    return new Promise<ShardResultMap[K]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(shardTimeout(this.shard, kind, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.worker.postMessage({ id, kind, ...body });
    });
  }

  private settle(id: number, outcome: { value: unknown } | { error: Error }): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in outcome) p.reject(outcome.error);
    else p.resolve(outcome.value);
  }

  private fail(err: ShardError): void {
    this.down ??= err;
    this.durability.fail(this.down);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    for (const w of this.readyWaiters) w.reject(err);
    this.readyWaiters = [];
  }
}

/**
 * How long polars may take over an append, an enrichment op, stats or ping before it is taken
 * for hung and killed: `queryTimeoutMs`, but at least 5 s. Compaction runs between frames (so it
 * is counted against the next request), and a 200 ms query bound must not turn a compaction of
 * a few million rows into a kill loop.
 */
export function polarsBusyLimitMs(queryTimeoutMs: number): number {
  return Math.max(queryTimeoutMs, 5000);
}
