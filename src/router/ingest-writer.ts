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
import { blockBytesAt, encodeBlock, nextBlock, type BlockSource } from '../shards/ring-block.js';
import type { ShardOrder } from './arrow-ingest/route-rows.js';
import { HttpError, overloaded, unavailable } from './http-error.js';
import { shardForUserBytes } from './route-hash.js';
import { IdleCollector } from '../workers/idle-gc.js';

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
  /**
   * Request bodies, their parsed events and column chunks are garbage an idle HTTP thread keeps
   * until V8 next needs a collection: collect once ingest goes quiet (workers/idle-gc.ts). The
   * garbage is counted as ~4× the bytes staged (a JSON body is 2-3× its ring records).
   */
  private readonly idleGc = new IdleCollector();

  constructor(private readonly shards: ShardHandle[]) {
    this.staging = shards.map(() => new Staging());
  }

  /**
   * Pushes `events` or throws 503 (507 when a shard's log fails) without pushing any of them.
   * @returns the number of events written (fewer than `events` when `keyed.skip` names shards).
   */
  write(events: EncodableEvent[], opts: WriteOptions = {}): number {
    const n = this.shards.length;
    this.beginStaging(opts);
    for (const e of events) {
      const userId = USER_ID_SCRATCH.subarray(0, encoder.encodeInto(e.userId, USER_ID_SCRATCH).written);
      const shard = shardForUserBytes(userId, n);
      const s = this.staging[shard]!;
      s.reserve(recordSize(e, userId.length));
      s.length = encodeRecord(e, userId, s.buf, s.view, s.length);
      s.records++;
    }
    return this.commit(events.length, opts, false);
  }

  /**
   * Pushes validated column chunks (POST /ingest/arrow, and the JSON batch routes through
   * event-columns.ts) as column blocks (ring-block.ts), each chunk's rows already grouped by
   * shard, all or nothing like `write`. With `oversizeIs413`, a shard's part that is larger than
   * its whole ring can never fit: 413 instead of a 503 a retry could not cure (the JSON routes
   * keep answering 503 there, as they always have).
   */
  writeColumns(chunks: ReadonlyArray<{ source: BlockSource; order: ShardOrder }>, opts: WriteOptions = {}, oversizeIs413 = true): number {
    return this.commitStaged(this.stageColumns(chunks, opts), opts, oversizeIs413);
  }

  /**
   * The first half of `writeColumns`: encodes the chunks into the staging buffers and returns
   * their events, pushing nothing. The staging is the writer's own, so `commitStaged` must
   * follow in the same synchronous step (after an await, stage again).
   */
  stageColumns(chunks: ReadonlyArray<{ source: BlockSource; order: ShardOrder }>, opts: WriteOptions = {}): number {
    this.beginStaging(opts);
    let total = 0;
    for (const { source, order } of chunks) {
      for (let shard = 0; shard < this.shards.length; shard++) {
        const limit = order.bounds[shard + 1]!;
        const s = this.staging[shard]!;
        for (let from = order.bounds[shard]!; from < limit; ) {
          const { to, strings } = nextBlock(source, order.order, from, limit);
          s.reserve(blockBytesAt(s.buf, s.length, to - from, strings));
          s.length = encodeBlock(source, order.order, from, to, strings, s.buf, s.view, s.length);
          s.records += to - from;
          from = to;
        }
      }
      total += order.order.length;
    }
    return total;
  }

  /** The second half of `writeColumns`: pushes what `stageColumns` staged (`total` events), all or nothing. */
  commitStaged(total: number, opts: WriteOptions, oversizeIs413: boolean): number {
    return this.commit(total, opts, oversizeIs413);
  }

  /** Each shard's staged bytes (0 where nothing is staged): the ring room a push of them needs. */
  stagedBytes(): Float64Array {
    return Float64Array.from(this.staging, (s) => (s.records > 0 ? s.length : 0));
  }

  /** Empties the staging buffers, leaving room for a keyed part's marker in front. */
  private beginStaging(opts: WriteOptions): void {
    // a keyed part's marker goes in front of its events: its size is known, its counts are not yet
    const head = opts.keyed ? keyedPartSize(opts.keyed.key.length) : 0;
    for (const s of this.staging) {
      s.reserve(head);
      s.length = head;
      s.records = 0;
    }
  }

  /** Checks every target shard, then pushes every staged part (the request's `total` events). */
  private commit(total: number, opts: WriteOptions, oversizeIs413: boolean): number {
    const n = this.shards.length;
    const keyed = opts.keyed;
    let parts = 0;
    for (const s of this.staging) if (s.records > 0) parts++;
    for (let i = 0; i < n; i++) {
      const s = this.staging[i]!;
      if (s.records === 0 || keyed?.skip?.has(i)) continue;
      this.checkShard(i, s.length, oversizeIs413);
    }
    let written = 0;
    let pushedBytes = 0;
    for (let i = 0; i < n; i++) {
      const s = this.staging[i]!;
      if (s.records === 0 || keyed?.skip?.has(i)) continue;
      const ring = this.shards[i]!.ring;
      if (keyed) encodeKeyedPart({ ...keyed, total, parts, events: s.records }, s.buf, s.view, 0);
      const start = ring.pushed();
      ring.push(s.buf, s.length, s.records);
      ring.wake(opts.wakeNow);
      opts.targets?.push({ shard: i, start, end: start + s.records });
      written += s.records;
      pushedBytes += s.length;
    }
    this.idleGc.note(4 * pushedBytes);
    // Don't keep a one-off giant staging buffer alive.
    for (const s of this.staging) if (s.buf.length > 8 * 1024 * 1024) s.buf = new Uint8Array(64 * 1024), s.view = new DataView(s.buf.buffer);
    return written;
  }

  /**
   * Throws what `writeColumns` would for shards whose part needs at least `minBytes[i]` ring
   * bytes (shards the request skips, or with 0 bytes, are not asked): called before the rows
   * are validated and encoded, so an overloaded engine refuses early and cheaply.
   */
  checkRoom(minBytes: Float64Array, opts: WriteOptions = {}): void {
    for (let i = 0; i < this.shards.length; i++) if (minBytes[i]! > 0 && !opts.keyed?.skip?.has(i)) this.checkShard(i, minBytes[i]!, true);
  }

  /** Whether shard `i` can take `bytes` more now: 503 (down, or ring full), 413, 507. */
  private checkShard(i: number, bytes: number, oversizeIs413: boolean): void {
    const shard = this.shards[i]!;
    // A restoring shard still takes writes: it drains, seals and logs them, and they reach
    // its new polars process with the replay. Only a failed or stopped shard refuses.
    if (!shard.acceptsWrites()) {
      throw unavailable(`shard ${i} is not accepting events${shard.failure() ? `: ${shard.failure()!.message}` : ''}; nothing of this request was stored`, 5);
    }
    if (oversizeIs413 && bytes > shard.ring.capacity()) {
      throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `this request's events for shard ${i} take ${bytes} bytes in its ring, more than the whole ring (ringBytes ${shard.ring.capacity()}); nothing of this request was stored: split it`);
    }
    if (shard.ring.freeBytes() < bytes) {
      throw overloaded(`shard ${i} ring is full (${bytes} bytes needed, ${shard.ring.freeBytes()} free of ${shard.ring.capacity()}); nothing of this request was stored`);
    }
    const storage = shard.storageError();
    if (storage) throw new HttpError(507, 'INSUFFICIENT_STORAGE', `${storage.message}; nothing of this request was stored`, { retryAfterSeconds: 1 });
  }

  /** Events pushed and not yet decoded by their shards. */
  buffered(): number {
    let total = 0;
    for (const s of this.shards) total += s.ring.pushed() - s.ring.consumed();
    return total;
  }
}
