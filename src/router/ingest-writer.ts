/**
 * Writes a validated batch into the shard rings, all or nothing.
 *
 * Every event is routed and encoded into a per-shard staging buffer first; only when every
 * target ring has room for its whole share (and every target shard accepts writes) is anything pushed.
 * The main thread is the only producer, and a consumer only ever frees space, so room checked
 * here is still there when we push a moment later.
 */
import type { ShardHandle } from '../shards/shard-handle.js';
import { encodeKeyedPart, encodeRecord, keyedPartSize, recordSize, type EncodableEvent } from '../shards/ring-record.js';
import { HttpError, overloaded, unavailable } from './http-error.js';
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

/** How a request is written: src/router/ingest-ack.ts sets these for ?wait=true and Idempotency-Key requests. */
export interface WriteOptions {
  /** an Idempotency-Key request: each shard's part is opened by a KEYED_PART marker (ring-record.ts) */
  keyed?: {
    key: string;
    hash: Uint8Array;
    at: number;
    wait: boolean;
    /** shards that already hold their part of this request (a retry after a crash or a 507) */
    skip?: ReadonlySet<number>;
  };
  /** filled with each written shard's range of `pushed`, to wait for its durability */
  targets?: ShardTarget[];
  /** wake the shards at once rather than at their next flush interval (?wait=true) */
  wakeNow?: boolean;
}

/** A shard's part of a written request: records `[start, end)` as its ring counts `pushed`. */
export interface ShardTarget {
  shard: number;
  start: number;
  end: number;
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
   * Pushes `events` or throws 503 (507 when a shard's log fails) without pushing any of them.
   * @returns the number of events written (fewer than `events` when `keyed.skip` names shards).
   */
  write(events: EncodableEvent[], opts: WriteOptions = {}): number {
    const n = this.shards.length;
    const keyed = opts.keyed;
    // a keyed part's marker goes in front of its events: its size is known, its counts are not yet
    const head = keyed ? keyedPartSize(keyed.key.length) : 0;
    for (const s of this.staging) {
      s.reserve(head);
      s.length = head;
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
    let parts = 0;
    for (const s of this.staging) if (s.records > 0) parts++;
    for (let i = 0; i < n; i++) {
      const s = this.staging[i]!;
      if (s.records === 0 || keyed?.skip?.has(i)) continue;
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
      const storage = shard.storageError();
      if (storage) throw new HttpError(507, 'INSUFFICIENT_STORAGE', `${storage.message}; nothing of this request was stored`, { retryAfterSeconds: 1 });
    }
    let written = 0;
    for (let i = 0; i < n; i++) {
      const s = this.staging[i]!;
      if (s.records === 0 || keyed?.skip?.has(i)) continue;
      const ring = this.shards[i]!.ring;
      if (keyed) encodeKeyedPart({ ...keyed, total: events.length, parts, events: s.records }, s.buf, s.view, 0);
      const start = ring.pushed();
      ring.push(s.buf, s.length, s.records);
      ring.wake(opts.wakeNow);
      opts.targets?.push({ shard: i, start, end: start + s.records });
      written += s.records;
    }
    // Don't keep a one-off giant staging buffer alive.
    for (const s of this.staging) if (s.buf.length > 8 * 1024 * 1024) s.buf = new Uint8Array(64 * 1024), s.view = new DataView(s.buf.buffer);
    return written;
  }

  /** Events pushed and not yet decoded by their shards. */
  buffered(): number {
    let total = 0;
    for (const s of this.shards) total += s.ring.pushed() - s.ring.consumed();
    return total;
  }
}
