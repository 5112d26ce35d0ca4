/**
 * Shard routing: `shard = jumpConsistentHash(fnv1a32(utf8(user_id)), shards)`.
 *
 * Documented and stable so clients and other instances can compute it (docs/API.md has the
 * reference code). FNV-1a 32 is fast on short ids; jump consistent hash (Lamping & Veach 2014)
 * moves only ~1/n of users when the shard count goes from n−1 to n. The 32-bit hash is the low
 * word of the 64-bit jump-hash key; the 64-bit LCG step is done in 16-bit limbs so it needs no
 * BigInt on the ingest hot path.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a 32-bit over bytes. */
export function fnv1a32(bytes: Uint8Array): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

// 2862933555777941757 = 0x27BB2EE6_87B0B0FD, the LCG multiplier of the jump hash paper.
const C_HI = 0x27bb2ee6;
const C_LO = 0x87b0b0fd;

/**
 * Jump consistent hash of the 64-bit key `hi:lo` onto `buckets` buckets.
 * @example jumpConsistentHash(0, fnv1a32(new TextEncoder().encode('user-1')), 4)
 */
export function jumpConsistentHash(keyHi: number, keyLo: number, buckets: number): number {
  let hi = keyHi >>> 0;
  let lo = keyLo >>> 0;
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    // key = key * C + 1 (mod 2^64): full 32×32 product of the low words, plus the cross terms.
    const a0 = lo & 0xffff;
    const a1 = lo >>> 16;
    const b0 = C_LO & 0xffff;
    const b1 = C_LO >>> 16;
    const p00 = a0 * b0;
    const p01 = a0 * b1;
    const p10 = a1 * b0;
    const p11 = a1 * b1;
    const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
    let newLo = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
    let newHi = (p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
    newHi = (newHi + Math.imul(hi, C_LO) + Math.imul(lo, C_HI)) >>> 0;
    newLo = (newLo + 1) >>> 0;
    if (newLo === 0) newHi = (newHi + 1) >>> 0;
    hi = newHi;
    lo = newLo;
    // With 2 buckets the first step decides: j = floor(2^31 / ((key >> 33) + 1)) is below 2
    // exactly when the key's top bit is set, and then the next step always ends at b = 1.
    if (buckets === 2) return hi >>> 31;
    // (key >> 33) + 1 is the top 31 bits of the key, plus one.
    j = Math.floor((b + 1) * (2147483648 / ((hi >>> 1) + 1)));
  }
  return b;
}

/** The shard that owns a user, from the user id's UTF-8 bytes. */
export function shardForUserBytes(userId: Uint8Array, shards: number): number {
  return shards === 1 ? 0 : jumpConsistentHash(0, fnv1a32(userId), shards);
}

/** `shardForUserBytes(bytes.subarray(start, end), shards)` without the subarray (column data). */
export function shardForUserRange(bytes: Uint8Array, start: number, end: number, shards: number): number {
  if (shards === 1) return 0;
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, FNV_PRIME);
  }
  return jumpConsistentHash(0, h >>> 0, shards);
}

const encoder = new TextEncoder();

/** The shard that owns a user id. */
export function shardForUser(userId: string, shards: number): number {
  return shardForUserBytes(encoder.encode(userId), shards);
}
