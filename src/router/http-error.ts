/**
 * The router's one error type and its catalogue. Every client-visible failure is an HttpError
 * with a status, a stable `code` and a message naming the field; `errorHandler` renders it.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { RequestError } from '../kinds/request-error.js';
import { ShardError, type ShardErrorCode } from '../shards/shard-errors.js';
import { requestIdOf } from './request-id.js';

export interface FieldError {
  index?: number;
  field: string;
  reason: string;
}

export class HttpError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: { errors?: FieldError[]; retryAfterSeconds?: number; closeConnection?: boolean },
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string, errors?: FieldError[]) =>
  new HttpError(400, 'BAD_REQUEST', message, errors ? { errors } : undefined);
export const invalidEvents = (errors: FieldError[], total: number) =>
  new HttpError(400, 'INVALID_EVENT', `${total} invalid field(s); first: ${describe(errors[0]!)}`, { errors });
export const malformedJson = (detail: string) => new HttpError(400, 'MALFORMED_JSON', `body is not valid JSON: ${detail}`);
export const unsupportedMediaType = (expected: string, actual: string | undefined) =>
  new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `expected Content-Type ${expected}, got ${actual ?? 'none'}`);
export const payloadTooLarge = (limit: number) =>
  new HttpError(413, 'PAYLOAD_TOO_LARGE', `body exceeds maxBodyBytes (${limit} bytes)`, { closeConnection: true });
export const overloaded = (message: string, retryAfterSeconds = 1) =>
  new HttpError(503, 'OVERLOADED', message, { retryAfterSeconds });
export const unavailable = (message: string, retryAfterSeconds = 1) =>
  new HttpError(503, 'UNAVAILABLE', message, { retryAfterSeconds });
export const notFound = (message: string) => new HttpError(404, 'NOT_FOUND', message);
/** The request's Accept allows none of the kind's answer formats (and it named no `format`). */
export const notAcceptable = (accept: string, offered: Readonly<Record<string, string>>) =>
  new HttpError(
    406,
    'NOT_ACCEPTABLE',
    `Accept ${JSON.stringify(accept.length > 200 ? `${accept.slice(0, 200)}…` : accept)} allows none of ${Object.values(offered).join(', ')}: accept one of them (or */*), or name the answer's \`format\` (${Object.keys(offered).map((f) => JSON.stringify(f)).join(' or ')}), which wins over Accept`,
  );
/** The body stopped short: the client went away or was cut off at `requestTimeoutMs`. Not our failure. */
export const bodyIncomplete = (detail: string) =>
  new HttpError(408, 'REQUEST_INCOMPLETE', `the request body did not arrive in full (${detail}); the client closed the connection or passed requestTimeoutMs`, { closeConnection: true });

function describe(e: FieldError): string {
  return `${e.index !== undefined ? `events[${e.index}].` : ''}${e.field}: ${e.reason}`;
}

/**
 * Hono onError: HttpError → its status; ShardError → 503/504/400; anything else → 500. Every body
 * carries `request_id` (the request-id middleware adds it to a branch that leaves it out).
 */
export function errorHandler(err: Error, c: Context): Response {
  if (err instanceof HttpError) {
    if (err.details?.retryAfterSeconds !== undefined) c.header('Retry-After', String(err.details.retryAfterSeconds));
    // The unread rest of an oversized body is discarded by closing the connection after answering.
    if (err.details?.closeConnection) c.header('Connection', 'close');
    return c.json(
      { error: err.code, message: err.message, ...(err.details?.errors ? { errors: err.details.errors } : {}), request_id: requestIdOf(c) },
      err.status,
    );
  }
  if (err instanceof RequestError) {
    const errors = err.problems.length > 0 ? { errors: err.problems } : {};
    return c.json({ error: err.code, message: err.message, ...errors, request_id: requestIdOf(c) }, requestErrorStatus(err));
  }
  if (err instanceof ShardError) {
    const { status, retryAfterSeconds, internal } = shardErrorStatus(err.code);
    if (internal) return internalError(c, err.code);
    if (retryAfterSeconds !== undefined) c.header('Retry-After', String(retryAfterSeconds));
    return c.json({ error: err.code, message: err.message, request_id: requestIdOf(c) }, status);
  }
  return internalError(c);
}

/** The query layer's errors know nothing of HTTP: their reason picks the status here. */
function requestErrorStatus(err: RequestError): ContentfulStatusCode {
  return err.reason === 'not_found' ? 404 : err.reason === 'timeout' ? 504 : 400;
}

/** The status `errorHandler` answers `err` with (for logs and metrics that see the error first). */
export function errorStatus(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof RequestError) return requestErrorStatus(err);
  if (err instanceof ShardError) return shardErrorStatus(err.code).status;
  return 500;
}

/**
 * The status of a shard-layer error. Overload and restoring are retryable (429/503 with
 * Retry-After), time-outs are 504, a request polars refuses is the client's (400), and a custom
 * plugin that fails, or anything else the shard could not explain, is a 500 that keeps
 * its code but whose message (a plugin's exception text, a path) stays in the log.
 */
export function shardErrorStatus(code: ShardErrorCode): { status: ContentfulStatusCode; retryAfterSeconds?: number; internal?: true } {
  switch (code) {
    case 'SHARD_BUSY':
      return { status: 429, retryAfterSeconds: 1 };
    case 'SHARD_RESTORING':
    case 'POLARS_DIED':
    case 'SHARD_STOPPING':
      return { status: 503, retryAfterSeconds: 1 };
    case 'SHARD_DOWN':
      return { status: 503, retryAfterSeconds: 5 };
    case 'SHARD_TIMEOUT':
    case 'POLARS_TIMEOUT':
      return { status: 504 };
    case 'BAD_PLAN':
    case 'PLAN_TOO_LARGE':
    case 'RESULT_TOO_LARGE':
    case 'CUSTOM_BAD_PARAMS':
      return { status: 400 };
    case 'INSUFFICIENT_STORAGE':
      return { status: 507, retryAfterSeconds: 1 };
    case 'CUSTOM_FAILED':
    case 'CUSTOM_BAD_RESULT':
    case 'POLARS_ERROR':
    case 'INTERNAL':
      return { status: 500, internal: true };
  }
}

/**
 * A 500 never shows the internal message (it may carry paths, plans or data); the request id
 * leads to it in the engine log, where the request-id middleware wrote the error with its stack.
 */
export function internalError(c: Context, code = 'INTERNAL'): Response {
  const id = requestIdOf(c);
  return c.json({ error: code, message: `internal error; see the engine log for request ${id}`, request_id: id }, 500);
}
