import { describe, expect, it } from 'vitest';
import type { ShardRing } from '../shards/shard-ring.js';
import { RingRoom } from './ring-room.js';

/** Rings reduced to what RingRoom reads: their free bytes, set by the test. */
function rings(...free: number[]): { rings: ShardRing[]; free: number[] } {
  return { free, rings: free.map((_, i) => ({ freeBytes: () => free[i]! }) as unknown as ShardRing) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const need = (...b: number[]) => Float64Array.from(b);

describe('RingRoom', () => {
  it('answers at once when every ring it needs has room (a shard it does not need may be full)', async () => {
    const r = rings(100, 0);
    const room = new RingRoom(r.rings, 1000);
    expect(await room.wait(need(100, 0))).toBe(true);
    expect(room.waiting).toBe(0);
  });

  it('waits until the shards make room, first come first served, and lets the next ones through while the room lasts', async () => {
    const r = rings(0, 0);
    const room = new RingRoom(r.rings, 5000);
    const order: string[] = [];
    // a waiter let through pushes its part at once: the room it needed is gone
    const push = (name: string, ...bytes: number[]) =>
      room.wait(need(...bytes)).then((ok) => {
        order.push(`${name}:${ok}`);
        if (ok) bytes.forEach((b, i) => (r.free[i]! -= b));
      });
    const a = push('a', 60, 10);
    const b = push('b', 30, 10);
    const c = push('c', 30, 10);
    // a newcomer that would fit queues behind the waiters instead of overtaking them
    expect(room.fits(need(0, 0))).toBe(true);
    const d = push('d', 1, 0);
    await sleep(20);
    expect(order).toEqual([]);
    r.free[0] = 95;
    r.free[1] = 100;
    await sleep(20);
    expect(order).toEqual(['a:true', 'b:true']);
    r.free[0] += 50;
    await Promise.all([a, b, c, d]);
    expect(order).toEqual(['a:true', 'b:true', 'c:true', 'd:true']);
  });

  it('gives up after maxWaitMs, and at once beyond maxWaiters', async () => {
    const r = rings(0);
    const room = new RingRoom(r.rings, 30, 2);
    const waits = [room.wait(need(1)), room.wait(need(1)), room.wait(need(1))];
    expect(await waits[2]).toBe(false);
    expect(await Promise.all(waits.slice(0, 2))).toEqual([false, false]);
    expect(room.waiting).toBe(0);
  });
});
