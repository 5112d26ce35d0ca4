/**
 * Main side: waits for a shard to make records durable (the `?wait=true` acknowledgement and the
 * idempotency key log). One tracker per shard, fed by the shard's `durable` messages
 * (durable-settler.ts); no timer and no polling: a request registers `[start, end)`, the range
 * of `pushed` its part took, right after pushing it, and is settled by the first message whose
 * `through` reaches `end`.
 *
 * Messages, not the ring's DURABLE counter, settle waiters: a message says in the same breath
 * which records were dropped, while the counter alone could pass a dropped range before the main
 * thread has heard about the drop.
 */
import { ShardError } from './shard-errors.js';
import type { DurableEvent } from './protocol.js';

interface Waiter {
  start: number;
  end: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class DurabilityTracker {
  /** records below this are settled (as far as messages have said) */
  private settled = 0;
  /** waiters in `end` order (parts are pushed in order, so registration keeps it) */
  private waiters: Waiter[] = [];
  /** dropped ranges a waiting part may still overlap */
  private dropped: Array<{ from: number; to: number; error: ShardError }> = [];
  private down: Error | null = null;

  constructor(readonly shard: number) {}

  /**
   * Resolves once every record in `[start, end)` is durable; rejects with INSUFFICIENT_STORAGE
   * when any of them was dropped, or with the shard's failure if it fails first.
   */
  whenDurable(start: number, end: number): Promise<void> {
    if (this.down) return Promise.reject(this.down);
    if (end <= this.settled) {
      const lost = this.overlap(start, end);
      return lost ? Promise.reject(lost) : Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const w = { start, end, resolve, reject };
      let i = this.waiters.length;
      while (i > 0 && this.waiters[i - 1]!.end > end) i--;
      this.waiters.splice(i, 0, w);
    });
  }

  /** A `durable` message from the shard. */
  settle(msg: DurableEvent): void {
    if (msg.through <= this.settled && !msg.dropped) return;
    if (msg.dropped) {
      this.dropped.push({
        from: msg.dropped.from,
        to: msg.dropped.to,
        error: new ShardError('INSUFFICIENT_STORAGE', `shard ${this.shard} cannot write its log: ${msg.dropped.message}`),
      });
    }
    this.settled = Math.max(this.settled, msg.through);
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.end <= this.settled) n++;
    const done = this.waiters.splice(0, n);
    for (const w of done) {
      const lost = this.overlap(w.start, w.end);
      if (lost) w.reject(lost);
      else w.resolve();
    }
    // Parts start in order too: a dropped range before the first waiting part concerns nobody.
    const first = this.waiters[0]?.start ?? Infinity;
    this.dropped = this.dropped.filter((d) => d.to > first);
  }

  /** The shard failed for good: nobody will hear about their records. */
  fail(err: Error): void {
    this.down ??= err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  /** Records settled so far (durable or dropped). */
  get through(): number {
    return this.settled;
  }

  /** Parts waiting. */
  get waiting(): number {
    return this.waiters.length;
  }

  private overlap(start: number, end: number): ShardError | null {
    for (const d of this.dropped) if (d.from < end && d.to > start) return d.error;
    return null;
  }
}
