import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32c.js';

/** The textbook one-bit-at-a-time definition, as an independent reference. */
function bitwise(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

describe('crc32c', () => {
  it('gives the standard check value 0xE3069283 for "123456789"', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('gives 0 for no bytes and the RFC 3720 value for 32 zero bytes', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
  });

  it('matches the bit-at-a-time definition on random inputs of every length up to 100', () => {
    let seed = 7;
    const next = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let len = 0; len <= 100; len++) {
      const bytes = Uint8Array.from({ length: len }, next);
      expect(crc32c(bytes), `length ${len}`).toBe(bitwise(bytes));
    }
  });

  it('continues over pieces to the same value as over the whole', () => {
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff);
    for (const cut of [0, 1, 7, 8, 9, 500, 999, 1000]) {
      expect(crc32c(bytes.subarray(cut), crc32c(bytes.subarray(0, cut)))).toBe(crc32c(bytes));
    }
  });
});
