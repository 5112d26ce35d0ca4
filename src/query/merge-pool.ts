/**
 * The stateless merge pool (piscina). Shards are plain worker threads because they are
 * long-lived actors with a drain loop and state; merging partials is the opposite (stateless,
 * bursty CPU), which is what piscina is for. Small merges run inline: a thread hop costs more
 * than merging a few rows.
 */
import { Piscina } from 'piscina';
import { WORKER_BOOT_URL, workerEntry } from '../workers/worker-url.js';
import { mergedJson, runMerge, type MergeOutput, type MergeTask } from '../merge/merge-task.js';
import type { MergeKind } from '../merge/mergers.js';

const INLINE_BYTES = 64 * 1024;

export class MergePool {
  private readonly pool: Piscina;

  constructor(threads: number) {
    this.pool = new Piscina({
      filename: WORKER_BOOT_URL.href,
      workerData: { entry: workerEntry('../merge/merge-task.ts') },
      minThreads: 1,
      maxThreads: Math.max(1, threads),
      idleTimeout: 60_000,
    });
  }

  async merge<K extends MergeKind>(task: MergeTask<K>): Promise<MergeOutput<K>> {
    const bytes = task.partials.reduce((n, p) => n + p.byteLength, 0);
    if (bytes <= INLINE_BYTES) return runMerge(task);
    return (await this.pool.run(task, { transferList: task.partials.map((p) => p.buffer as ArrayBuffer) })) as MergeOutput<K>;
  }

  /**
   * Like `merge`, but answers the merged output (or its `field`) as JSON text, serialized off the
   * main thread.
   */
  async mergeToJson<K extends MergeKind>(task: MergeTask<K>, field?: string): Promise<string> {
    const bytes = task.partials.reduce((n, p) => n + p.byteLength, 0);
    if (bytes <= INLINE_BYTES) return mergedJson(runMerge(task), field);
    const job = field === undefined ? { ...task, asJson: true } : { ...task, asJson: true, jsonField: field };
    return (await this.pool.run(job, { transferList: task.partials.map((p) => p.buffer as ArrayBuffer) })) as string;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
