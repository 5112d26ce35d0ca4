/**
 * Young-generation sizes per kind of thread.
 *
 * `npm start` runs node with `--max-semi-space-size=4`, which caps the HTTP thread's young
 * generation at 8 MB of semi-spaces (an ingest burst grew it to 32 MB, and it stayed). That flag
 * is process-wide and wins over a worker's `resourceLimits`, so every thread got the same 8 MB,
 * although a shard worker's garbage is mostly ArrayBuffers, held outside the V8 heap. Once the
 * main thread's heap is configured, `releaseSemiSpaceFlag` clears the flag, and each worker asks
 * for its own size with `resourceLimits.maxYoungGenerationSizeMb` (V8 sizes a young generation
 * as three semi-spaces: 3 MB is 1 MB semi-spaces, 12 MB is the 4 MB the flag gave).
 */
import { setFlagsFromString } from 'node:v8';

/** Shard workers: decode ring records and seal batches; their buffers live outside the heap. */
export const SHARD_YOUNG_MB = 3;
/** Merge-pool and re-partition workers: object-heavy merges, as under the start flag. */
export const POOL_YOUNG_MB = 12;

/**
 * Clears `--max-semi-space-size` for the isolates created from now on (worker threads); the
 * calling thread's heap keeps the size it started with. Call once, before starting any worker.
 */
export function releaseSemiSpaceFlag(): void {
  setFlagsFromString('--max-semi-space-size=0');
}
