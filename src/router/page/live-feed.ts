/**
 * The live page's ticker: one snapshot per tick, serialized once and handed to every connected
 * page. It runs only while someone watches (the first viewer starts it with an immediate tick, the
 * last one leaving stops it) and admits a bounded number of viewers, so thirty open pages cost the
 * engine what one does and a forgotten tab cannot multiply the fan-outs.
 *
 * Ticks never overlap: the next one is scheduled when the current one has been sent, `intervalMs`
 * after it started (or at once if it took longer), so a slow snapshot delays the page instead of
 * stacking work.
 */

export interface LiveFeedOptions {
  /** time between snapshots, ms */
  intervalMs: number;
  /** most viewers at once; `join` answers null beyond */
  maxViewers: number;
  /** a snapshot that threw (the feed goes on with the next tick) */
  onError?: (err: unknown) => void;
}

/** Receives one serialized snapshot. */
export type ViewerSend = (json: string, seq: number) => void;

export class LiveFeed {
  private readonly viewers = new Set<ViewerSend>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private seq = 0;

  constructor(
    private readonly snapshot: (viewers: number) => Promise<unknown>,
    private readonly options: LiveFeedOptions,
  ) {}

  /** Viewers connected now. */
  get viewerCount(): number {
    return this.viewers.size;
  }

  /** Snapshots taken since the feed was made (one per tick, whatever the number of viewers). */
  get ticks(): number {
    return this.seq;
  }

  /** Adds a viewer; returns its `leave` function, or null when `maxViewers` already watch. */
  join(send: ViewerSend): (() => void) | null {
    if (this.viewers.size >= this.options.maxViewers) return null;
    this.viewers.add(send);
    if (!this.running && this.timer === null) this.schedule(0);
    return () => {
      this.viewers.delete(send);
      if (this.viewers.size === 0 && this.timer !== null) {
        clearTimeout(this.timer);
        this.timer = null;
      }
    };
  }

  /** Stops ticking and forgets every viewer (engine shutdown). */
  close(): void {
    this.viewers.clear();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.tick();
    }, delayMs);
  }

  private async tick(): Promise<void> {
    if (this.viewers.size === 0) return;
    this.running = true;
    const started = Date.now();
    try {
      const seq = ++this.seq;
      const json = JSON.stringify(await this.snapshot(this.viewers.size));
      for (const send of this.viewers) send(json, seq);
    } catch (err) {
      this.options.onError?.(err);
    } finally {
      this.running = false;
    }
    if (this.viewers.size > 0 && this.timer === null) this.schedule(Math.max(0, this.options.intervalMs - (Date.now() - started)));
  }
}
