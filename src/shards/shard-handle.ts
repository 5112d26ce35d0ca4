/**
 * Main-thread handle of one shard actor: starts the worker, owns the producer side of its ring,
 * and turns the message protocol into promises with timeouts.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { WORKER_BOOT_URL, workerEntry } from '../workers/worker-url.js';
import { ShardError, shardDown, shardErrorFromWire, shardTimeout } from './shard-errors.js';
import { ShardRing, ShardState, makeShardRingBuffers } from './shard-ring.js';
import type { ShardMessage, ShardRequest, ShardRequestKind, ShardResultMap, ShardWorkerData } from './protocol.js';
import type { QueryPlan } from '../query/plan.js';

export interface ShardHandleOptions {
  shard: number;
  ringBytes: number;
  flushIntervalMs: number;
  maxBatchRows: number;
  requestTimeoutMs: number;
  logger: Logger;
}

type RequestBody<K extends ShardRequestKind> = Omit<Extract<ShardRequest, { kind: K }>, 'id' | 'kind'>;

export class ShardHandle {
  readonly shard: number;
  readonly ring: ShardRing;
  private readonly worker: Worker;
  private readonly logger: Logger;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private nextId = 1;
  private down: ShardError | null = null;
  private exited = false;
  readonly ready: Promise<void>;

  constructor(private readonly options: ShardHandleOptions) {
    this.shard = options.shard;
    this.logger = options.logger.child({ shard: options.shard });
    const buffers = makeShardRingBuffers(options.ringBytes);
    this.ring = new ShardRing(buffers);
    const workerData: ShardWorkerData = {
      entry: workerEntry('../shards/shard-worker.ts'),
      shard: options.shard,
      buffers,
      flushIntervalMs: options.flushIntervalMs,
      maxBatchRows: options.maxBatchRows,
      polarsTimeoutMs: options.requestTimeoutMs,
    };
    this.worker = new Worker(WORKER_BOOT_URL, { workerData, name: `shard-${options.shard}` });
    let markReady: () => void;
    let markFailed: (e: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      markFailed = reject;
    });
    // Start-up failures are reported through `ready`; keep an unobserved rejection quiet.
    this.ready.catch(() => undefined);
    this.worker.on('message', (msg: ShardMessage) => {
      switch (msg.type) {
        case 'response':
          this.settle(msg.id, msg.ok ? { value: msg.result } : { error: shardErrorFromWire(msg.error) });
          break;
        case 'ready':
          this.logger.info({ polars_pid: msg.pid }, 'shard ready');
          markReady();
          break;
        case 'failed':
          this.down = new ShardError('SHARD_DOWN', msg.message);
          this.logger.error({ code: msg.code }, msg.message);
          markFailed(this.down);
          break;
        case 'log':
          this.logger[msg.level](msg.fields ?? {}, msg.msg);
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
    });
  }

  /** True when the worker and its polars process are up and accepting work. */
  isReady(): boolean {
    return this.down === null && this.ring.state() === ShardState.READY;
  }

  failure(): ShardError | null {
    return this.down;
  }

  request<K extends ShardRequestKind>(kind: K, body: RequestBody<K>, timeoutMs = this.options.requestTimeoutMs): Promise<ShardResultMap[K]> {
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

  query(plan: QueryPlan, timeoutMs?: number): Promise<ShardResultMap['query']> {
    return this.request('query', { plan }, timeoutMs);
  }

  /** Several plans in one round trip; the partials come back in one buffer (see QueryManyResult). */
  queryMany(plans: QueryPlan[], timeoutMs?: number): Promise<ShardResultMap['query_many']> {
    return this.request('query_many', { plans }, timeoutMs);
  }

  /** Upserts rows (Arrow IPC stream of Utf8 columns, `user_id` first) into an enrichment table. */
  enrichUpsert(table: string, ipc: Uint8Array, timeoutMs?: number): Promise<ShardResultMap['enrich_upsert']> {
    return this.request('enrich_upsert', { table, ipc }, timeoutMs);
  }

  enrichDrop(table: string, timeoutMs?: number): Promise<ShardResultMap['enrich_drop']> {
    return this.request('enrich_drop', { table }, timeoutMs);
  }

  /** This shard's enrichment tables as an Arrow IPC partial (see ShardResultMap['enrich_list']). */
  enrichList(timeoutMs?: number): Promise<ShardResultMap['enrich_list']> {
    return this.request('enrich_list', {}, timeoutMs);
  }

  /** The custom plugins this shard's polars process discovered. */
  customList(timeoutMs?: number): Promise<ShardResultMap['custom_list']> {
    return this.request('custom_list', {}, timeoutMs);
  }

  /** Drains, hands everything to polars, stops the polars process and the worker. */
  async shutdown(timeoutMs: number): Promise<ShardResultMap['shutdown'] | null> {
    try {
      if (this.down || this.exited) return null;
      return await this.request('shutdown', {}, timeoutMs);
    } finally {
      await this.worker.terminate();
    }
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
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}
