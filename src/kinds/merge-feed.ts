/**
 * The main thread's end of a streaming merge (src/merge/merge-task.ts, StreamMessage): the
 * output's length, then the pieces the pool worker posts (their buffers moved), queued until the
 * answer's body asks for them, then the end. The worker makes every piece at once, so what waits
 * here is at most the whole answer, whose length the answer budget holds from before its first
 * byte until its connection closes (merge-task.ts `streamTask` says why there is no window).
 *
 * Failures come from the pool (the task rejects: the merge threw, was aborted at the deadline,
 * or its worker died), not from the port, whose messages may still be on their way when the
 * task settles. Cancelling drops what is queued and sets `stop`, which the worker checks before
 * each piece.
 */
import type { MessagePort } from 'node:worker_threads';
import type { StreamMessage } from '../merge/merge-task.js';

export type FeedEnd = 'ended' | 'failed' | 'cancelled';

export class MergeFeed {
  /** Resolves with the output's length, before any piece; rejects when the merge fails first. */
  readonly length: Promise<number>;
  private readonly queue: Uint8Array[] = [];
  private bytes = -1;
  private received = 0;
  private state: 'open' | FeedEnd = 'open';
  private error: unknown = null;
  private waiter: { resolve: (piece: Uint8Array | null) => void; reject: (err: unknown) => void } | null = null;
  private settleLength!: { resolve: (bytes: number) => void; reject: (err: unknown) => void };

  constructor(
    private readonly port: MessagePort,
    private readonly stop: Int32Array,
    private readonly onEnd: (how: FeedEnd) => void = () => undefined,
  ) {
    this.length = new Promise<number>((resolve, reject) => (this.settleLength = { resolve, reject }));
    port.on('message', (m: StreamMessage) => this.take(m));
  }

  /** The next piece in order; null after the last; rejects once the merge has failed or the feed was cancelled. */
  next(): Promise<Uint8Array | null> {
    const piece = this.queue.shift();
    if (piece) return Promise.resolve(piece);
    if (this.state === 'ended') return Promise.resolve(null);
    if (this.state !== 'open') return Promise.reject(this.error);
    if (this.waiter) return Promise.reject(new Error('merge feed: one read at a time'));
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** The merge failed: a read waiting or to come rejects with `err`, and what was queued is dropped. */
  fail(err: unknown): void {
    if (this.state !== 'open') return;
    this.finish('failed', err);
  }

  /** Nobody wants the rest: the worker stops before its next piece, and what was queued is dropped. */
  cancel(): void {
    if (this.state === 'cancelled' || this.state === 'failed') return;
    Atomics.store(this.stop, 0, 1);
    // an ended feed has nothing left to stop, but its queued pieces are dropped all the same
    if (this.state === 'ended') {
      this.queue.length = 0;
      return;
    }
    this.finish('cancelled', new Error('merge feed: cancelled'));
  }

  private take(m: StreamMessage): void {
    if (this.state !== 'open') return;
    if (m instanceof Uint8Array) {
      this.received += m.byteLength;
      if (this.bytes < 0 || this.received > this.bytes) return this.fail(new Error(`merge feed: ${this.received} bytes of pieces for an output of ${this.bytes}`));
      const waiter = this.waiter;
      this.waiter = null;
      if (waiter) waiter.resolve(m);
      else this.queue.push(m);
    } else if ('bytes' in m) {
      this.bytes = m.bytes;
      this.settleLength.resolve(m.bytes);
    } else {
      if (this.received !== this.bytes) return this.fail(new Error(`merge feed: the output ended after ${this.received} of its ${this.bytes} bytes (${m.end} pieces)`));
      this.state = 'ended';
      this.port.close();
      this.waiter?.resolve(null);
      this.waiter = null;
      this.onEnd('ended');
    }
  }

  private finish(how: 'failed' | 'cancelled', err: unknown): void {
    this.state = how;
    this.error = err;
    this.queue.length = 0;
    Atomics.store(this.stop, 0, 1);
    this.port.close();
    // before the length, the merge's error is the request's (its caller awaits `length`)
    if (this.bytes < 0) this.settleLength.reject(err);
    this.waiter?.reject(err);
    this.waiter = null;
    this.onEnd(how);
  }
}
