/** The client's retry policy: what is retried, Retry-After, backoff bounds, jitter and the cap. */
import { describe, expect, it } from 'vitest';
import { isConnectionRefused, isRetryableStatus, parseRetryAfter, retryDelayMs, type RetryPolicy } from './retry.js';

const POLICY: RetryPolicy = { maxRetries: 5, baseDelayMs: 100, maxDelayMs: 30_000 };
const low = () => 0;
const high = () => 0.999999;

describe('retry policy', () => {
  it('retries 503 and 429 only, and connections the server refused', () => {
    expect([503, 429].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 408, 413, 415, 500, 502, 504].some(isRetryableStatus)).toBe(false);
    expect(isConnectionRefused(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }))).toBe(true);
    expect(isConnectionRefused(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } }))).toBe(false);
    expect(isConnectionRefused(new Error('other'))).toBe(false);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-11-28T10:00:00Z');
    expect(parseRetryAfter('1', now)).toBe(1000);
    expect(parseRetryAfter(' 5 ', now)).toBe(5000);
    expect(parseRetryAfter('Sat, 28 Nov 2026 10:00:07 GMT', now)).toBe(7000);
    expect(parseRetryAfter('Sat, 28 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(null, now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
  });

  it('never retries sooner than Retry-After, adding at most 20% jitter', () => {
    expect(retryDelayMs(1, '1', POLICY, low)).toBe(1000);
    expect(retryDelayMs(1, '1', POLICY, high)).toBe(1200);
    expect(retryDelayMs(3, '5', POLICY, low)).toBe(5000);
  });

  it('backs off exponentially with equal jitter when no Retry-After is given', () => {
    for (let retry = 1; retry <= 6; retry++) {
      const step = 100 * 2 ** (retry - 1);
      expect(retryDelayMs(retry, null, POLICY, low)).toBe(step / 2);
      expect(retryDelayMs(retry, null, POLICY, high)).toBe(step);
    }
  });

  it('takes the longer of Retry-After and the backoff', () => {
    // retry 6: backoff step 3200 ms is longer than Retry-After: 1
    expect(retryDelayMs(6, '1', POLICY, high)).toBe(3200);
  });

  it('caps every wait at maxDelayMs, Retry-After included', () => {
    expect(retryDelayMs(30, null, POLICY, high)).toBe(30_000);
    expect(retryDelayMs(1, '3600', POLICY, low)).toBe(30_000);
    expect(retryDelayMs(1, '2', { ...POLICY, maxDelayMs: 500 }, low)).toBe(500);
  });
});
