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
 */
import { RingBuffer } from 'ringbuf.js';

export const SIGNAL = 0;
export const STATE = 1;
export const SLEEPING = 2;
export const PUSHED = 0;
export const CONSUMED = 1;

export const ShardState = { STARTING: 0, READY: 1, FAILED: 2, STOPPED: 3, RESTORING: 4 } as const;
export type ShardStateValue = (typeof ShardState)[keyof typeof ShardState];

const CONTROL_INT32S = 4;
const COUNTERS = 2;

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

  /** Producer side: wakes the consumer once after a request's pushes. */
  wake(): void {
    Atomics.add(this.control, SIGNAL, 1);
    if (Atomics.load(this.control, SLEEPING) === 1 && this.ring.availableRead() * 4 > this.ring.capacity()) {
      Atomics.notify(this.control, SIGNAL);
    }
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
}
