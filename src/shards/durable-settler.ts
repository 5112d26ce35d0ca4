/**
 * Worker side: tells the main thread which of the records it took from its ring are settled —
 * logged and synced (durable), or dropped because the log could not take them — so a
 * `?wait=true` request is answered 200 only once its records are durable, and 507 when any of
 * them was dropped.
 *
 * Records are counted as the producer counts them in `pushed` (event records; keyed-part markers
 * are not records), and they are sealed, logged and synced in ring order, so "settled" is always
 * a prefix: `through`. After each sync (and each failure) the worker stores `through` in the
 * ring's DURABLE counter and posts one `durable` message; the main thread resolves its waiters
 * from the messages (src/shards/durability.ts), which also say which range was dropped, in order.
 *
 * A failure also sets the ring's STORAGE word, so the router refuses this shard's events (507)
 * instead of acknowledging more than the log can take; the loop probes the log about once a
 * second and clears it when a probe (or any sync) succeeds.
 */
import type { ShardEvent } from './protocol.js';
import { StorageFault, type ShardRing, type StorageFaultValue } from './shard-ring.js';

const PROBE_EVERY_MS = 1000;

function faultOf(cause: unknown): StorageFaultValue {
  switch ((cause as NodeJS.ErrnoException)?.code) {
    case 'ENOSPC':
      return StorageFault.ENOSPC;
    case 'EIO':
      return StorageFault.EIO;
    case 'EDQUOT':
      return StorageFault.EDQUOT;
    case 'EROFS':
      return StorageFault.EROFS;
    default:
      return StorageFault.OTHER;
  }
}

export class DurableSettler {
  /** batches appended and not yet synced: the log position after each, and the records it ends */
  private pending: Array<{ next: number; through: number }> = [];
  private settled = 0;
  private droppedTotal = 0;
  private fault: { code: string; message: string } | null = null;
  private nextProbeAt = 0;

  constructor(
    private readonly ring: ShardRing,
    private readonly emit: (event: ShardEvent) => void,
    private readonly say: (level: 'info' | 'error', msg: string, fields?: Record<string, unknown>) => void,
  ) {}

  /** A batch holding every record below `through` was appended; the log ends at `next` after it. */
  appended(next: number, through: number): void {
    this.pending.push({ next, through });
  }

  /** The log is synced up to `position`: the batches before it are durable. */
  synced(position: number, recover = true): void {
    let through = this.settled;
    while (this.pending.length > 0 && this.pending[0]!.next <= position) through = this.pending.shift()!.through;
    if (through > this.settled) {
      this.publish(through, null);
      if (recover && this.fault) this.recovered();
    }
  }

  /**
   * A write or sync failed and the log was cut back to `durableEnd`: batches before it stay
   * durable, every other pending batch is dropped.
   */
  failed(cause: unknown, durableEnd: number): void {
    this.synced(durableEnd, false);
    const last = this.pending.length > 0 ? this.pending[this.pending.length - 1]!.through : this.settled;
    this.pending = [];
    this.drop(last, cause);
  }

  /** The batch ending with record `through` could not be appended (`failed` ran first). */
  dropped(through: number, cause: unknown): void {
    this.drop(through, cause);
  }

  /** The log fails now; the loop should probe it when `probeDue()`. */
  get faulty(): boolean {
    return this.fault !== null;
  }

  probeDue(): boolean {
    return this.fault !== null && performance.now() >= this.nextProbeAt;
  }

  probeFailed(): void {
    this.nextProbeAt = performance.now() + PROBE_EVERY_MS;
  }

  /** The log took a write and a sync again. */
  recovered(): void {
    if (!this.fault) return;
    this.say('info', 'shard log takes writes again; ingest resumes', { after: this.fault.code, events_dropped: this.droppedTotal });
    this.fault = null;
    this.ring.setStorageFault(StorageFault.NONE);
    this.emit({ type: 'storage', ok: true });
  }

  get eventsSettled(): number {
    return this.settled;
  }

  get eventsDropped(): number {
    return this.droppedTotal;
  }

  get error(): string | null {
    return this.fault ? this.fault.message : null;
  }

  private drop(through: number, cause: unknown): void {
    const err = cause as NodeJS.ErrnoException;
    const code = err?.code ?? 'EIO';
    const message = err?.message ?? String(cause);
    if (!this.fault) {
      this.fault = { code, message };
      this.ring.setStorageFault(faultOf(cause));
      this.nextProbeAt = performance.now() + PROBE_EVERY_MS;
      this.emit({ type: 'storage', ok: false, code, message });
    }
    if (through <= this.settled) return;
    const from = this.settled;
    this.droppedTotal += through - from;
    this.say('error', 'shard log write failed: events dropped; ingest for this shard answers 507 until the log takes writes again', {
      code,
      error: message,
      events_dropped: through - from,
    });
    this.publish(through, { from, to: through, code, message });
  }

  private publish(through: number, dropped: { from: number; to: number; code: string; message: string } | null): void {
    this.ring.settle(through, dropped ? dropped.to - dropped.from : 0);
    this.settled = through;
    this.emit(dropped ? { type: 'durable', through, dropped } : { type: 'durable', through });
  }
}
