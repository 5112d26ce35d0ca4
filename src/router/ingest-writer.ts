/**
 * Writes a validated batch into the shard rings, all or nothing.
 *
 * Every event is routed and encoded into a per-shard staging buffer first; only when every
 * target ring has room for its whole share (and every target shard accepts writes) is anything pushed.
 * The main thread is the only producer, and a consumer only ever frees space, so room checked
 * here is still there when we push a moment later.
 */
import type { ShardHandle } from '../shards/shard-handle.js';
import { encodeRecord, recordSize, type EncodableEvent } from '../shards/ring-record.js';
import { overloaded, unavailable } from './http-error.js';
import { shardForUserBytes } from './route-hash.js';

class Staging {
  buf = new Uint8Array(64 * 1024);
  view = new DataView(this.buf.buffer);
  length = 0;
  records = 0;

  reserve(bytes: number): void {
    if (this.length + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + bytes) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.length));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }
}

// user_id is at most 128 UTF-16 units → at most 384 UTF-8 bytes.
const USER_ID_SCRATCH = new Uint8Array(512);
const encoder = new TextEncoder();

export class IngestWriter {
  private readonly staging: Staging[];

  constructor(private readonly shards: ShardHandle[]) {
    this.staging = shards.map(() => new Staging());
  }

  /**
   * Pushes `events` or throws 503 without pushing any of them.
   * @returns the number of events written.
   */
  write(events: EncodableEvent[]): number {
    const n = this.shards.length;
    for (const s of this.staging) {
      s.length = 0;
      s.records = 0;
    }
    for (const e of events) {
      const userId = USER_ID_SCRATCH.subarray(0, encoder.encodeInto(e.userId, USER_ID_SCRATCH).written);
      const shard = shardForUserBytes(userId, n);
      const s = this.staging[shard]!;
      s.reserve(recordSize(e, userId.length));
      s.length = encodeRecord(e, userId, s.buf, s.view, s.length);
      s.records++;
    }
    for (let i = 0; i < n; i++) {
      const s = this.staging[i]!;
      if (s.records === 0) continue;
      const shard = this.shards[i]!;
      // A restoring shard still takes writes: it drains, seals and logs them, and they reach
      // its new polars process with the replay. Only a failed or stopped shard refuses.
      if (!shard.acceptsWrites()) {
        throw unavailable(`shard ${i} is not accepting events${shard.failure() ? `: ${shard.failure()!.message}` : ''}; nothing of this request was stored`, 5);
      }
      if (shard.ring.freeBytes() < s.length) {
        throw overloaded(
          `shard ${i} ring is full (${s.length} bytes needed, ${shard.ring.freeBytes()} free of ${shard.ring.capacity()}); nothing of this request was stored`,
        );
      }
    }
    for (let i = 0; i < n; i++) {
      const s = this.staging[i]!;
      if (s.records === 0) continue;
      const ring = this.shards[i]!.ring;
      ring.push(s.buf, s.length, s.records);
      ring.wake();
    }
    // Don't keep a one-off giant staging buffer alive.
    for (const s of this.staging) if (s.buf.length > 8 * 1024 * 1024) s.buf = new Uint8Array(64 * 1024), s.view = new DataView(s.buf.buffer);
    return events.length;
  }

  /** Events pushed and not yet decoded by their shards. */
  buffered(): number {
    let total = 0;
    for (const s of this.shards) total += s.ring.pushed() - s.ring.consumed();
    return total;
  }
}
