import { describe, expect, it, vi } from 'vitest';

// Watch the comparisons the token book makes (the real function still runs).
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

const { timingSafeEqual } = await import('node:crypto');
const { TokenBook, sameToken } = await import('./tokens.js');

const compared = vi.mocked(timingSafeEqual);

describe('token comparison', () => {
  it('tells equal tokens from unequal ones, including different lengths and a shared prefix', () => {
    expect(sameToken('0123456789abcdef', '0123456789abcdef')).toBe(true);
    expect(sameToken('0123456789abcdef', '0123456789abcdeF')).toBe(false);
    expect(sameToken('0123456789abcdef', '0123456789abcdef0')).toBe(false);
    expect(sameToken('0123456789abcdef', '')).toBe(false);
    expect(sameToken('', '')).toBe(true);
  });

  it('compares fixed-size SHA-256 digests with timingSafeEqual, whatever the lengths', () => {
    compared.mockClear();
    sameToken('short', 'a much longer token than the other one');
    expect(compared).toHaveBeenCalledTimes(1);
    const [a, b] = compared.mock.calls[0]! as [Buffer, Buffer];
    expect([a.length, b.length]).toEqual([32, 32]);
  });

  it('finds a token\'s scopes, and compares with every configured token (no early exit on a hit)', () => {
    const book = new TokenBook([
      { token: 'ingest-token-0000001', scopes: ['ingest'] },
      { token: 'query-token-00000001', scopes: ['query'] },
      { token: 'admin-token-00000001', scopes: ['admin'] },
    ]);
    for (const [presented, scopes] of [
      ['ingest-token-0000001', ['ingest']],
      ['admin-token-00000001', ['admin']],
      ['query-token-0000000', null],
      ['x', null],
      ['', null],
    ] as const) {
      compared.mockClear();
      expect(book.scopesOf(presented)).toEqual(scopes);
      expect(compared).toHaveBeenCalledTimes(3);
      for (const call of compared.mock.calls) expect((call as [Buffer, Buffer]).map((b) => b.length)).toEqual([32, 32]);
    }
  });
});
