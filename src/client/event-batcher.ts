/**
 * Collects tracked events into batches and sends them one batch at a time, in order: a batch
 * leaves when it reaches `batchSize` events or when the oldest waiting event is
 * `flushIntervalMs` old, whichever comes first. Each batch is sent by `sendBatch` (which retries
 * on its own); a batch that still fails is reported to `onError` and to the next `flush()`.
 *
 * Memory is bounded: at most `maxBufferedEvents` wait or are being sent; `track` beyond that
 * throws (BUFFER_FULL) instead of growing or dropping events silently.
 */
import { ShardlyticsError } from './http.js';
import type { TrackEvent } from './types.js';

export interface BatcherOptions {
  batchSize: number;
  flushIntervalMs: number;
  maxBufferedEvents: number;
  sendBatch(events: TrackEvent[]): Promise<void>;
  onError?: (err: ShardlyticsError, events: TrackEvent[]) => void;
}

export interface BatcherStats {
  /** events given to `track` */
  tracked: number;
  /** events in batches the engine accepted */
  sent: number;
  /** batches the engine accepted */
  batches: number;
  /** events in batches that failed for good */
  failed: number;
}

export class EventBatcher {
  private buffer: TrackEvent[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** the tail of the send chain: batches go out one after another */
  private chain: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private failures: ShardlyticsError[] = [];
  private closed = false;
  readonly stats: BatcherStats = { tracked: 0, sent: 0, batches: 0, failed: 0 };

  constructor(private readonly options: BatcherOptions) {}

  /** Events waiting or being sent. */
  get pending(): number {
    return this.buffer.length + this.inFlight;
  }

  track(event: TrackEvent): void {
    if (this.closed) throw new ShardlyticsError('track() after close()', 0, 'CLIENT_CLOSED');
    if (this.pending >= this.options.maxBufferedEvents) {
      throw new ShardlyticsError(`${this.pending} events are waiting to be sent (maxBufferedEvents); is the engine reachable?`, 0, 'BUFFER_FULL');
    }
    this.buffer.push(event);
    this.stats.tracked++;
    if (this.buffer.length >= this.options.batchSize) this.cut();
    else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.cut();
      }, this.options.flushIntervalMs);
      // A forgotten client must not keep the process alive; close() sends what is left.
      (this.timer as { unref?: () => void }).unref?.();
    }
  }

  /** Sends everything tracked so far; rejects with the first batch that failed since the last flush. */
  async flush(): Promise<void> {
    this.cut();
    await this.chain;
    const failed = this.failures;
    this.failures = [];
    if (failed.length > 0) throw failed[0]!;
  }

  /** Sends what is left and refuses further events. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  /** Moves the buffer into batches of at most `batchSize` on the send chain. */
  private cut(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.buffer.length > 0) {
      const batch = this.buffer.splice(0, this.options.batchSize);
      this.inFlight += batch.length;
      this.chain = this.chain.then(() => this.sendOne(batch));
    }
  }

  private async sendOne(batch: TrackEvent[]): Promise<void> {
    try {
      await this.options.sendBatch(batch);
      this.stats.sent += batch.length;
      this.stats.batches++;
    } catch (err) {
      const e = err instanceof ShardlyticsError ? err : new ShardlyticsError((err as Error).message, 0, 'NETWORK');
      this.stats.failed += batch.length;
      this.failures.push(e);
      this.options.onError?.(e, batch);
    } finally {
      this.inFlight -= batch.length;
    }
  }
}
