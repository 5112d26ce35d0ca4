/**
 * The stateless merge pool (piscina). Shards are plain worker threads because they are
 * long-lived actors with a drain loop and state; merging partials is the opposite (stateless,
 * bursty CPU), which is what piscina is for. Small merges run inline: a thread hop costs more
 * than merging a few rows (below INLINE_BYTES of partials, or a merge's own `inlineBytes`).
 *
 * Every pooled merge is bounded: it is aborted at the request's deadline (piscina terminates the
 * worker running it, so its CPU stops) and each worker has a heap limit (a merge that would take
 * more fails alone instead of the engine).
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { WORKER_BOOT_URL, workerEntry } from '../workers/worker-url.js';
import { POOL_YOUNG_MB } from '../workers/young-generation.js';
import type { MergeDef } from '../merge/merge-def.js';
import { mergedJsonBytes, type MergeTask } from '../merge/merge-task.js';
import { BytesFeed } from './kind.js';
import { MergeFeed, type FeedEnd } from './merge-feed.js';
import { bundledMergeWorker } from './merge-worker-source.js';
import { timedOut } from './request-error.js';

const INLINE_BYTES = 64 * 1024;
/** Heap of one merge worker: a by-user merge of 10 M events' partials needs a few hundred MB. */
export const MERGE_WORKER_HEAP_MB = 2048;

export class MergePool {
  private readonly pool: Piscina;
  /** Streaming merges (`stream`): open now, and how the others ended. */
  readonly streams = { open: 0, ended: 0, failed: 0, cancelled: 0 };

  constructor(threads: number) {
    this.pool = new Piscina({
      filename: (bundledMergeWorker() ?? WORKER_BOOT_URL).href,
      workerData: { entry: workerEntry('src/merge/merge-task.ts') },
      minThreads: 1,
      maxThreads: Math.max(1, threads),
      idleTimeout: 60_000,
      resourceLimits: { maxOldGenerationSizeMb: MERGE_WORKER_HEAP_MB, maxYoungGenerationSizeMb: POOL_YOUNG_MB },
    });
  }

  /**
   * Merges the partials with `merge`; a pooled merge still running at `deadline` (epoch ms) is
   * aborted. `record` gets the merge's ms: an inline merge's own run (timing the promise would
   * also count the merges started after it in the same tick), a pooled one's round trip.
   */
  async merge<S, O>(merge: MergeDef<S, O>, spec: S, partials: Uint8Array[], deadline = Infinity, record?: (ms: number) => void): Promise<O> {
    const started = performance.now();
    if (inline(merge, partials)) return recorded(merge.run(spec, partials), started, record);
    return recorded((await this.run({ file: merge.file, spec, partials }, deadline)) as O, started, record);
  }

  /** Like `merge`, but answers the merged output (or its `field`) as UTF-8 JSON, made off the main thread. */
  async mergeToJson<S, O>(merge: MergeDef<S, O>, spec: S, partials: Uint8Array[], field?: string, deadline = Infinity, record?: (ms: number) => void): Promise<Uint8Array> {
    const started = performance.now();
    if (inline(merge, partials)) return recorded(mergedJsonBytes(merge.run(spec, partials), field), started, record);
    return recorded((await this.run({ file: merge.file, spec, partials, asJson: true, ...(field === undefined ? {} : { jsonField: field }) }, deadline)) as Uint8Array, started, record);
  }

  /**
   * Merges with `merge.stream` in the pool and answers once the output's length is known (for
   * an Arrow answer: the partials interleaved), with a feed of its pieces as the worker makes
   * them, so the answer goes out while its later pieces are made. A merge still running at
   * `deadline` is aborted: before the length is known this rejects with the error `merge` would
   * (504), after it the feed fails. Cancelling the feed stops the worker before its next piece.
   * `record` gets the ms to the length.
   */
  async stream<S, O>(merge: MergeDef<S, O>, spec: S, partials: Uint8Array[], deadline = Infinity, record?: (ms: number) => void): Promise<BytesFeed> {
    const started = performance.now();
    const { port1, port2 } = new MessageChannel();
    const stop = new Int32Array(new SharedArrayBuffer(4));
    this.streams.open++;
    const feed = new MergeFeed(port1, stop, (how: FeedEnd) => {
      this.streams.open--;
      this.streams[how]++;
    });
    this.run({ file: merge.file, spec, partials, port: port2, stop }, deadline, [port2]).catch((err: unknown) => feed.fail(err));
    const bytes = await feed.length;
    record?.(performance.now() - started);
    return new BytesFeed(bytes, () => feed.next(), () => feed.cancel());
  }

  private async run(job: MergeTask, deadline: number, transfer: MessagePort[] = []): Promise<unknown> {
    const ms = Math.max(1, Math.min(deadline - Date.now(), 2 ** 31 - 1));
    const signal = Number.isFinite(deadline) ? AbortSignal.timeout(ms) : undefined;
    try {
      return await this.pool.run(job, { transferList: [...job.partials.map((p) => p.buffer as ArrayBuffer), ...transfer], ...(signal ? { signal } : {}) });
    } catch (err) {
      if (signal?.aborted) throw timedOut(`merging ${job.file} partials`);
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

function recorded<T>(result: T, started: number, record: ((ms: number) => void) | undefined): T {
  record?.(performance.now() - started);
  return result;
}

function inline(merge: Pick<MergeDef, 'inlineBytes'>, partials: Uint8Array[]): boolean {
  return partials.reduce((n, p) => n + p.byteLength, 0) <= (merge.inlineBytes ?? INLINE_BYTES);
}
