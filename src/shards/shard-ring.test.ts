import { describe, expect, it } from 'vitest';
import { ShardRing, makeShardRingBuffers } from './shard-ring.js';

describe('ShardRing', () => {
  it('hands the consumer exactly the bytes pushed, in order, across wrap-arounds, pushes from inside larger buffers and pops at offsets', () => {
    const ring = new ShardRing(makeShardRingBuffers(997));
    let s = 7;
    const rand = (n: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n);
    let next = 0; // the byte value stream: byte k is k % 251
    let expected = 0;
    const out = new Uint8Array(2048);
    let wrong = 0;
    for (let round = 0; round < 5000; round++) {
      const free = ring.freeBytes();
      const n = rand(Math.min(free, 400) + 1);
      // the bytes sit at the start of a bigger staging buffer, as the writer pushes them
      const staging = new Uint8Array(n + rand(50));
      for (let i = 0; i < n; i++) staging[i] = (next + i) % 251;
      ring.push(staging, n, 1);
      next += n;
      const at = rand(100);
      const got = ring.ring.pop(out, rand(600), at);
      for (let i = 0; i < got; i++) if (out[at + i] !== (expected + i) % 251) wrong++;
      expected += got;
    }
    const rest = ring.ring.pop(out, out.length, 0);
    for (let i = 0; i < rest; i++) if (out[i] !== (expected + i) % 251) wrong++;
    expect(wrong).toBe(0);
    expect(expected + rest).toBe(next);
    expect(ring.usedBytes()).toBe(0);
  });
});
