/**
 * Waiting briefly for ring room (POST /ingest/arrow, and JSON batches: ingest-app.ts) instead of
 * refusing at once.
 *
 * A bulk request that finds a ring without room for its share would get a 503 at once; a
 * client that sends again at once (a load generator, or a client ignoring Retry-After) then
 * keeps the HTTP thread busy receiving and routing bodies that are refused, and that CPU is
 * taken from the shards and polars processes that would make the room. Measured with
 * `npm run bench:ingest -- --modes arrow` (100,000-event bodies, 16 connections): 293 of ~370
 * requests refused and the HTTP thread busy mostly with them. So a request that does not fit
 * waits, first come first served, until every ring it needs has the room (checked every few
 * ms: the shards free room a drain pass at a time), for at most `maxWaitMs`, and only then is
 * refused with the usual 503. Waiting costs no CPU; the client sees latency, as with TCP
 * back-pressure. At most `maxWaiters` requests wait (each holds its body); beyond, 503 at once.
 * 5 s, because a shard stalls while its polars process rolls a segment (every ~1 M rows; 1–3 s
 * on the shared 2-core box under load) and its in-flight cap holds only two rings' bytes: with
 * a 1 s bound 59 of 107 requests of the same bench still got their 503, with 5 s none did.
 *
 * The room found is not reserved: another request may take it before the waiter pushes, and
 * the writer's own check stays the one that decides (then 503).
 */
import type { ShardRing } from '../shards/shard-ring.js';

interface Waiter {
  bytes: Float64Array;
  deadline: number;
  resolve: (roomy: boolean) => void;
}

const POLL_MS = 2;

export class RingRoom {
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly rings: readonly ShardRing[],
    private readonly maxWaitMs = 5000,
    private readonly maxWaiters = 64,
  ) {}

  /** Every ring `i` has `bytes[i]` free now. */
  fits(bytes: Float64Array): boolean {
    for (let i = 0; i < this.rings.length; i++) if (bytes[i]! > 0 && this.rings[i]!.freeBytes() < bytes[i]!) return false;
    return true;
  }

  /** Every ring `i` could hold `bytes[i]` at all (no longer than its whole capacity). */
  canEverFit(bytes: Float64Array): boolean {
    for (let i = 0; i < this.rings.length; i++) if (bytes[i]! > this.rings[i]!.capacity()) return false;
    return true;
  }

  /**
   * Resolves true once every ring has room for `bytes` (at once when it has and nobody waits
   * before), false after `maxWaitMs` or when too many wait already.
   */
  wait(bytes: Float64Array): Promise<boolean> {
    if (this.waiters.length === 0 && this.fits(bytes)) return Promise.resolve(true);
    if (this.waiters.length >= this.maxWaiters) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.waiters.push({ bytes, deadline: performance.now() + this.maxWaitMs, resolve });
      // unref'd: waiters never keep a stopping process alive (the HTTP server does while it serves)
      this.timer ??= setTimeout(() => this.poll(), POLL_MS).unref();
    });
  }

  get waiting(): number {
    return this.waiters.length;
  }

  private poll(): void {
    this.timer = null;
    const now = performance.now();
    // In order: the head first, and the next ones only while the room left over fits them too.
    const free = this.rings.map((r) => r.freeBytes());
    while (this.waiters.length > 0) {
      const w = this.waiters[0]!;
      let fits = true;
      for (let i = 0; i < free.length; i++) if (w.bytes[i]! > free[i]!) fits = false;
      if (!fits && w.deadline > now) break;
      this.waiters.shift();
      if (fits) for (let i = 0; i < free.length; i++) free[i]! -= w.bytes[i]!;
      w.resolve(fits);
    }
    // later waiters past their deadline do not wait behind the head
    for (let k = this.waiters.length - 1; k >= 0; k--) {
      if (this.waiters[k]!.deadline <= now) this.waiters.splice(k, 1)[0]!.resolve(false);
    }
    if (this.waiters.length > 0) this.timer = setTimeout(() => this.poll(), POLL_MS).unref();
  }
}
