/**
 * One full garbage collection when a thread goes quiet after a burst of work.
 *
 * A shard worker's garbage is mostly ArrayBuffers: sealed Arrow batches, their log records, the
 * bytes written to and read from polars. V8 counts them as external memory and collects them when
 * its own heap asks for a collection, which an idle thread never does: after 10 M events an idle
 * engine's two shard workers held 20–30 MB of dead buffers each, for a minute or more (node RSS
 * 217 MB; 159 MB after one collection per shard, same run). The HTTP thread does the same with
 * request bodies and their parsed events (src/router/ingest-writer.ts).
 *
 * `note(bytes)` after making that much garbage; once at least `minBytes` were noted, the
 * collection runs `quietMs` after the last note, so never while the work goes on (V8 collects
 * then as it needs), once when it stops.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let fullCollection: (() => void) | null | undefined;

/** V8's full collection, reached without starting node with `--expose-gc`; null if unavailable. */
export function fullCollector(): (() => void) | null {
  if (fullCollection === undefined) {
    try {
      // Only contexts made after the flag get `gc`: this one, made just for it.
      setFlagsFromString('--expose-gc');
      fullCollection = runInNewContext('gc') as () => void;
    } catch {
      fullCollection = null;
    }
  }
  return fullCollection;
}

export class IdleCollector {
  private noted = 0;
  private timer: NodeJS.Timeout | null = null;
  /** collections run so far */
  runs = 0;

  constructor(
    private readonly quietMs = 1000,
    private readonly minBytes = 16 * 1024 * 1024,
    private readonly collect: (() => void) | null = fullCollector(),
  ) {}

  note(bytes: number): void {
    this.noted += bytes;
    if (this.noted < this.minBytes || this.collect === null) return;
    if (this.timer) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(() => this.run(), this.quietMs);
    this.timer.unref();
  }

  /** Drops a pending collection (the thread is stopping). */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private run(): void {
    this.timer = null;
    this.noted = 0;
    this.runs++;
    this.collect?.();
  }
}
