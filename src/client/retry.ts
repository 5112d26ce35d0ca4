/**
 * When to retry and how long to wait. Pure: the clock and the random source are parameters, so
 * the policy is tested without waiting.
 *
 * Retried: 503 (rings full, a shard restoring, the engine stopping) and 429 (a shard's query
 * queue full) — the engine stored nothing of such a request and says when to come back in
 * `Retry-After` — and a connection the server refused (nothing was sent). Never retried: any
 * other 4xx (the request is wrong and will stay wrong), other 5xx (a 500 is a bug, a 504 a query
 * too heavy for its timeout), and a connection that broke after the request went out (the engine
 * may have stored it; retrying is safe only once the engine honors `Idempotency-Key`).
 */

export interface RetryPolicy {
  /** retries after the first attempt (0: never retry) */
  maxRetries: number;
  /** first backoff step, doubled per retry */
  baseDelayMs: number;
  /** no wait is longer than this, `Retry-After` included */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 5, baseDelayMs: 100, maxDelayMs: 30_000 };

/** HTTP statuses the engine answers when it stored nothing and asks to come back later. */
export function isRetryableStatus(status: number): boolean {
  return status === 503 || status === 429;
}

/** True for a fetch failure where the server never got the request (connection refused). */
export function isConnectionRefused(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string } } | null)?.cause;
  return cause?.code === 'ECONNREFUSED';
}

/**
 * `Retry-After` in ms: delay-seconds ("5") or an HTTP date; null when absent or unreadable.
 * A date in the past is 0.
 */
export function parseRetryAfter(header: string | null, now = Date.now()): number | null {
  if (header === null) return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/**
 * The wait before retry number `retry` (1-based). Exponential backoff with "equal jitter"
 * (between half and all of base·2^(retry−1), never zero, so clients refused together spread
 * out); with `Retry-After`, never sooner than it says, plus up to 20% jitter for the same reason.
 * Capped at `maxDelayMs`.
 *
 * @example retryDelayMs(1, '1', DEFAULT_RETRY) // 1000..1200
 */
export function retryDelayMs(retry: number, retryAfter: string | null, policy: RetryPolicy, random: () => number = Math.random, now = Date.now()): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  const backoff = step / 2 + (random() * step) / 2;
  const asked = parseRetryAfter(retryAfter, now);
  const delay = asked === null ? backoff : Math.max(asked * (1 + 0.2 * random()), backoff);
  return Math.round(Math.min(policy.maxDelayMs, delay));
}
