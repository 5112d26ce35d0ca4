import { describe, expect, it } from 'vitest';
import { fnv1a32, jumpConsistentHash, shardForUser } from './route-hash.js';

// Reference implementations straight from the papers, in BigInt: independent of the limb code.
function fnvReference(s: string): number {
  let h = 0x811c9dc5n;
  for (const byte of new TextEncoder().encode(s)) {
    h ^= BigInt(byte);
    h = (h * 0x01000193n) & 0xffffffffn;
  }
  return Number(h);
}

function jumpReference(key: bigint, buckets: number): number {
  let b = -1n;
  let j = 0n;
  while (j < BigInt(buckets)) {
    b = j;
    key = (key * 2862933555777941757n + 1n) & 0xffffffffffffffffn;
    j = BigInt(Math.floor(Number(b + 1n) * (2 ** 31 / Number((key >> 33n) + 1n))));
  }
  return Number(b);
}

describe('route hash', () => {
  it('matches the BigInt reference of FNV-1a and jump hash for many ids and shard counts', () => {
    for (let i = 0; i < 2000; i++) {
      const id = `user-${i}-${'é'.repeat(i % 3)}`;
      const h = fnv1a32(new TextEncoder().encode(id));
      expect(h).toBe(fnvReference(id));
      for (const n of [1, 2, 3, 4, 7, 8, 16, 64]) {
        expect(jumpConsistentHash(0, h, n)).toBe(jumpReference(BigInt(h), n));
      }
    }
  });

  it('matches the reference on full 64-bit keys', () => {
    let x = 0x9e3779b97f4a7c15n;
    for (let i = 0; i < 500; i++) {
      x = (x * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
      const hi = Number(x >> 32n);
      const lo = Number(x & 0xffffffffn);
      expect(jumpConsistentHash(hi, lo, 13)).toBe(jumpReference(x, 13));
      expect(jumpConsistentHash(hi, lo, 2)).toBe(jumpReference(x, 2));
    }
  });

  it('moves only the users of the new shard when going from 4 to 5 shards', () => {
    let moved = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const a = shardForUser(`u${i}`, 4);
      const b = shardForUser(`u${i}`, 5);
      if (a !== b) {
        moved++;
        expect(b).toBe(4);
      }
    }
    // Expected fraction 1/5; allow sampling noise.
    expect(moved / n).toBeGreaterThan(0.17);
    expect(moved / n).toBeLessThan(0.23);
  });

  it('keeps the reference values published in docs/API.md', () => {
    // Changing these breaks every client that routes by itself.
    const table: Array<[string, number, number[]]> = [
      ['user-42', 39875499, [0, 0, 0, 0]],
      ['alice', 2267157479, [1, 2, 2, 2]],
      ['u1', 71477235, [1, 2, 3, 3]],
    ];
    for (const [id, hash, shards] of table) {
      expect(fnv1a32(new TextEncoder().encode(id))).toBe(hash);
      expect([2, 3, 4, 8].map((n) => shardForUser(id, n))).toEqual(shards);
    }
  });
});
