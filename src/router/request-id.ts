/**
 * Request ids: every request gets one (the client's `x-request-id` when it is sane, else a new
 * UUID), every answer echoes it, every error body and every log line about the request carries
 * it, and each answer that is not a success is logged once here (5xx at error, 4xx at info).
 */
import { randomUUID } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';

declare module 'hono' {
  interface ContextVariableMap {
    requestId: string;
    /** Set by the middleware; route code reads it through `requestLog(c)`. */
    rootLogger: Logger;
    requestLogger: Logger;
  }
}

export const REQUEST_ID_HEADER = 'x-request-id';
const CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The client's id when it is 1–128 characters of `[A-Za-z0-9._:-]`, else a fresh UUID. */
export function pickRequestId(header: string | undefined): string {
  return header !== undefined && CLIENT_ID.test(header) ? header : randomUUID();
}

/** This request's id (one is made up and remembered if the middleware did not run). */
export function requestIdOf(c: Context): string {
  let id = c.get('requestId');
  if (id === undefined) {
    id = randomUUID();
    c.set('requestId', id);
  }
  return id;
}

/**
 * The request's pino logger: every line carries `request_id`. Made on first use, so the ingest
 * hot path, which logs nothing when all goes well, pays no child-logger cost.
 *
 * @example requestLog(c).warn({ shard }, 'shard answered late')
 */
export function requestLog(c: Context): Logger {
  let log = c.get('requestLogger');
  if (log === undefined) {
    const root = c.get('rootLogger');
    if (root === undefined) throw new Error('requestLog: the request-id middleware is not installed on this app');
    log = root.child({ request_id: requestIdOf(c) });
    c.set('requestLogger', log);
  }
  return log;
}

function errorCode(c: Context, status: number): string | undefined {
  const code = (c.error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  return status === 404 ? 'NOT_FOUND' : undefined;
}

/**
 * Adds `request_id` to a JSON error body rendered without it (an error branch that does not put
 * it in itself). Error bodies are small, so reading one back costs nothing that matters.
 */
async function stampErrorBody(c: Context, id: string): Promise<void> {
  if (!c.res.headers.get('content-type')?.startsWith('application/json')) return;
  let body: unknown;
  try {
    body = await c.res.clone().json();
  } catch {
    return;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body) || 'request_id' in body) return;
  const res = new Response(JSON.stringify({ ...body, request_id: id }), { status: c.res.status, headers: c.res.headers });
  res.headers.delete('content-length');
  c.res = undefined;
  c.res = res;
}

/** The middleware every port's root app installs first. */
export function requestIdMiddleware(logger: Logger): MiddlewareHandler {
  return async (c, next) => {
    const id = pickRequestId(c.req.header(REQUEST_ID_HEADER));
    c.set('requestId', id);
    c.set('rootLogger', logger);
    // Set before the route runs, so c.json/c.body (errors included) build the answer with it.
    c.header(REQUEST_ID_HEADER, id);
    await next();
    const status = c.res.status;
    if (status >= 400) {
      if (c.error) await stampErrorBody(c, id);
      const fields = { request_id: id, method: c.req.method, path: c.req.path, status };
      if (status >= 500) logger.error({ ...fields, code: errorCode(c, status), err: c.error }, 'request failed');
      else logger.info({ ...fields, code: errorCode(c, status) }, 'request rejected');
    }
    // A route that returned its own Response object (a stream, say) bypassed the prepared header.
    if (c.res.headers.get(REQUEST_ID_HEADER) !== id) c.header(REQUEST_ID_HEADER, id);
  };
}
