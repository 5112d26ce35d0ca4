/**
 * One HTTP exchange with the engine, retried per the policy in ./retry.ts, and the client's one
 * error type. A refused request's body is the engine's error (`{error, message, errors?,
 * request_id}`, docs/API.md "Errors"), kept whole on the error.
 */
import { isConnectionRefused, isRetryableStatus, retryDelayMs, type RetryPolicy } from './retry.js';

/** What the client reports before each retry (for logs and tests). */
export interface RetryInfo {
  /** 1 for the first retry */
  retry: number;
  /** the status that was answered, or 0 for a refused connection */
  status: number;
  /** how long the client waits before it */
  delayMs: number;
  method: string;
  url: string;
}

export class ShardlyticsError extends Error {
  constructor(
    message: string,
    /** HTTP status, or 0 when no answer came (network) */
    readonly status: number,
    /** the engine's `error` code (`INVALID_EVENT`, `OVERLOADED`, …), or the client's own (`NETWORK`, `CLIENT_CLOSED`, `BUFFER_FULL`) */
    readonly code: string,
    /** attempts made (1 + retries) */
    readonly attempts = 1,
    /** the engine's error body, when there was one */
    readonly body?: unknown,
    /** the engine's request id of the last attempt */
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'ShardlyticsError';
  }
}

export interface HttpOptions {
  fetch: typeof fetch;
  retry: RetryPolicy;
  token?: string;
  /** per attempt; undefined: none (a streamed export reads as long as it takes) */
  timeoutMs?: number;
  onRetry?: (info: RetryInfo) => void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function errorOf(res: Response, attempts: number): Promise<ShardlyticsError> {
  const text = await res.text().catch(() => '');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  const b = (typeof body === 'object' && body !== null ? body : {}) as { error?: string; message?: string; request_id?: string };
  const what = b.message ?? (text.slice(0, 200) || res.statusText);
  return new ShardlyticsError(`${res.status} ${b.error ?? 'HTTP_ERROR'}: ${what}`, res.status, b.error ?? 'HTTP_ERROR', attempts, body, b.request_id ?? res.headers.get('x-request-id') ?? undefined);
}

/**
 * Sends the request, retrying 503/429 (after `Retry-After`, with backoff) and refused
 * connections; answers the first 2xx response, unread. `init.body` must be re-sendable (a string).
 */
export async function send(url: string, init: RequestInit & { body?: string }, opts: HttpOptions): Promise<Response> {
  const headers = new Headers(init.headers);
  if (opts.token) headers.set('authorization', `Bearer ${opts.token}`);
  const method = init.method ?? 'GET';
  for (let attempt = 1; ; attempt++) {
    let res: Response;
    try {
      res = await opts.fetch(url, { ...init, headers, ...(opts.timeoutMs ? { signal: AbortSignal.timeout(opts.timeoutMs) } : {}) });
    } catch (err) {
      if (isConnectionRefused(err) && attempt <= opts.retry.maxRetries) {
        const delayMs = retryDelayMs(attempt, null, opts.retry);
        opts.onRetry?.({ retry: attempt, status: 0, delayMs, method, url });
        await sleep(delayMs);
        continue;
      }
      throw new ShardlyticsError(`${method} ${url} failed: ${(err as Error).message}${isConnectionRefused(err) ? ' (connection refused)' : ''}`, 0, 'NETWORK', attempt);
    }
    if (res.ok) return res;
    if (isRetryableStatus(res.status) && attempt <= opts.retry.maxRetries) {
      const delayMs = retryDelayMs(attempt, res.headers.get('retry-after'), opts.retry);
      await res.body?.cancel();
      opts.onRetry?.({ retry: attempt, status: res.status, delayMs, method, url });
      await sleep(delayMs);
      continue;
    }
    throw await errorOf(res, attempt);
  }
}
