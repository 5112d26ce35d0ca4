/**
 * The shared memory between the router (producer) and one shard (consumer): a ringbuf.js SPSC
 * byte ring plus a small control block. Both sides attach to the same SharedArrayBuffers; the
 * worker side imports only this file and ringbuf.js, never main-thread modules.
 *
 * Control block (Int32Array view):
 *   [SIGNAL] bumped by the producer after every push, then Atomics.notify'd; the consumer
 *            sleeps in Atomics.waitAsync on it (ringbuf.js has no wait/notify of its own).
 *   [STATE]  shard state, written by the consumer: STARTING, READY, RESTORING (replaying its log
 *            into a new polars process: ingest goes on, queries wait), FAILED, STOPPED.
 *   [SLEEPING] 1 while the consumer is (about to be) parked in waitAsync.
 *   [STORAGE]  0, or the StorageFault the consumer's last log write or sync failed with (ENOSPC,
 *              EIO, ...): the producer refuses the shard's events (507) until it is 0 again.
 *   [URGENT]   1 once the producer pushed records someone waits to see durable (?wait=true):
 *              the consumer takes it (exchange to 0) before a drain pass and seals at the end of
 *              that pass, where otherwise it lets its batch grow until its oldest row may have
 *              been acknowledged a flush interval ago (shard-worker.ts). Set after the push, so a consumer that sees it
 *              drains those records in the same pass; one that misses it sees SIGNAL moved too.
 *
 * Wake-ups are lazy on purpose. The consumer wakes by itself every flushIntervalMs (it has to
 * seal on that schedule anyway), so the producer only pays for Atomics.notify (a cross-thread
 * task post, ~0.1 ms, plus a context switch on a busy box) when the consumer sleeps AND the ring
 * is over a quarter full. One notify per request made single-event ingest 4× slower than the
 * bare HTTP baseline. Both words are seq-cst atomics: the consumer stores SLEEPING=1 and then
 * waits on SIGNAL; the producer adds to SIGNAL and then loads SLEEPING, so a needed wake-up is
 * never lost (either the wait sees the new SIGNAL and returns at once, or the producer notifies).
 * Counters (BigInt64Array view on the same buffer, after the Int32 words):
 *   [PUSHED]   records pushed, written only by the producer.
 *   [CONSUMED] records decoded into the column builder, written only by the consumer.
 *   [DURABLE]  records whose fate is settled: logged and synced (fsync "off": written), or
 *              dropped after a log write or sync failed; written only by the consumer, after the
 *              sync. The main thread learns which were dropped from the `durable` message the
 *              consumer posts at the same time (src/shards/durability.ts).
 *   [DROPPED]  records of those dropped because the log could not take them.
 */
import { RingBuffer } from 'ringbuf.js';

export const SIGNAL = 0;
export const STATE = 1;
export const SLEEPING = 2;
export const STORAGE = 3;
export const URGENT = 4;
export const PUSHED = 0;
export const CONSUMED = 1;
export const DURABLE = 2;
export const DROPPED = 3;

/** What the STORAGE word holds: the errno of the failed log write or sync, by number. */
export const StorageFault = { NONE: 0, ENOSPC: 1, EIO: 2, EDQUOT: 3, EROFS: 4, OTHER: 5 } as const;
export type StorageFaultValue = (typeof StorageFault)[keyof typeof StorageFault];

export const ShardState = { STARTING: 0, READY: 1, FAILED: 2, STOPPED: 3, RESTORING: 4 } as const;
export type ShardStateValue = (typeof ShardState)[keyof typeof ShardState];

// five words and one unused: the BigInt64 counters after them start 8-byte aligned
const CONTROL_INT32S = 6;
const COUNTERS = 4;

/** The transferable description of a ring, sent to the worker in workerData. */
export interface ShardRingBuffers {
  ring: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

export function makeShardRingBuffers(ringBytes: number): ShardRingBuffers {
  return {
    // ringbuf.js keeps one slot empty to tell full from empty; getStorageForCapacity already
    // allocates that extra slot, so capacity() is exactly ringBytes (checked by a test).
    ring: RingBuffer.getStorageForCapacity(ringBytes, Uint8Array),
    control: new SharedArrayBuffer(CONTROL_INT32S * 4 + COUNTERS * 8),
  };
}

export class ShardRing {
  readonly ring: RingBuffer;
  readonly control: Int32Array;
  readonly counters: BigInt64Array;

  constructor(buffers: ShardRingBuffers) {
    this.ring = new RingBuffer(buffers.ring, Uint8Array);
    // ringbuf.js copies byte by byte in a JS loop unless a push is the whole input array at
    // offset 0 (its private `_copy`), so every pop and most pushes ran at ~1 ns per byte on
    // each side: ~100 ns per event for a 50-byte column-block row. Copying through subarray +
    // set is a memcpy and copies exactly the same elements.
    const ring = this.ring as unknown as { _copy?: unknown };
    if (typeof ring._copy === 'function') {
      ring._copy = (input: Uint8Array, from: number, output: Uint8Array, to: number, size: number) => {
        if (size > 0) output.set(input.subarray(from, from + size), to);
      };
    }
    this.control = new Int32Array(buffers.control, 0, CONTROL_INT32S);
    this.counters = new BigInt64Array(buffers.control, CONTROL_INT32S * 4, COUNTERS);
  }

  /** Usable bytes (ringbuf.js capacity is storage − 1). */
  capacity(): number {
    return this.ring.capacity();
  }

  usedBytes(): number {
    return this.ring.availableRead();
  }

  freeBytes(): number {
    return this.ring.availableWrite();
  }

  state(): ShardStateValue {
    return Atomics.load(this.control, STATE) as ShardStateValue;
  }

  setState(state: ShardStateValue): void {
    Atomics.store(this.control, STATE, state);
    // Wake the consumer too: a state change (e.g. STOPPED) must not wait for the next push.
    Atomics.add(this.control, SIGNAL, 1);
    Atomics.notify(this.control, SIGNAL);
  }

  pushed(): number {
    return Number(Atomics.load(this.counters, PUSHED));
  }

  consumed(): number {
    return Number(Atomics.load(this.counters, CONSUMED));
  }

  /** Producer side: pushes `bytes` holding `records` whole records. Caller checked freeBytes(). */
  push(bytes: Uint8Array, length: number, records: number): void {
    const written = this.ring.push(bytes, length);
    if (written !== length) {
      // Cannot happen while the main thread is the only producer and checked freeBytes() first;
      // if it ever does, half a record is in the ring and the shard would misparse it.
      throw new Error(`ring push wrote ${written} of ${length} bytes`);
    }
    Atomics.add(this.counters, PUSHED, BigInt(records));
  }

  /**
   * Producer side: wakes the consumer once after a request's pushes. `now`: always notify a
   * sleeping consumer (a ?wait=true request waits for the seal and sync; it should not wait for
   * the next flush interval too).
   */
  wake(now = false): void {
    if (now) Atomics.store(this.control, URGENT, 1);
    Atomics.add(this.control, SIGNAL, 1);
    if (Atomics.load(this.control, SLEEPING) === 1 && (now || this.ring.availableRead() * 4 > this.ring.capacity())) {
      Atomics.notify(this.control, SIGNAL);
    }
  }

  /** Consumer side: whether a producer asked for a seal at the end of this pass (see URGENT); clears it. */
  takeUrgent(): boolean {
    return Atomics.exchange(this.control, URGENT, 0) === 1;
  }

  /** Consumer side: the signal value to wait on (read it before checking the ring). */
  signal(): number {
    return Atomics.load(this.control, SIGNAL);
  }

  /** Consumer side: sleeps until the signal moves from `seen` or `timeoutMs` passes. */
  async waitForSignal(seen: number, timeoutMs: number): Promise<void> {
    Atomics.store(this.control, SLEEPING, 1);
    try {
      const result = Atomics.waitAsync(this.control, SIGNAL, seen, timeoutMs);
      if (result.async) await result.value;
    } finally {
      Atomics.store(this.control, SLEEPING, 0);
    }
  }

  addConsumed(records: number): void {
    Atomics.add(this.counters, CONSUMED, BigInt(records));
  }

  /** Records whose fate is settled (durable or dropped); see DURABLE. */
  durable(): number {
    return Number(Atomics.load(this.counters, DURABLE));
  }

  dropped(): number {
    return Number(Atomics.load(this.counters, DROPPED));
  }

  /** Consumer side: every record below `through` is durable or dropped (`dropped` more of them dropped). */
  settle(through: number, dropped: number): void {
    if (dropped > 0) Atomics.add(this.counters, DROPPED, BigInt(dropped));
    Atomics.store(this.counters, DURABLE, BigInt(through));
  }

  storageFault(): StorageFaultValue {
    return Atomics.load(this.control, STORAGE) as StorageFaultValue;
  }

  /** Consumer side: the log failed with `fault` (NONE once it takes writes again). */
  setStorageFault(fault: StorageFaultValue): void {
    Atomics.store(this.control, STORAGE, fault);
  }
}
