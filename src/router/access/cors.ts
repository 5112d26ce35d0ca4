/**
 * CORS for the configured origins only (hono/cors does the headers). A request from any other
 * origin, or with no Origin, gets no `Access-Control-*` header at all; a preflight from one is
 * refused (403). Preflights are answered here, before access control: a browser never sends a
 * token with one. `Vary: Origin` goes on every answer so a cache never hands one origin's
 * answer to another.
 */
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { HttpError } from '../http-error.js';

export const CORS_ALLOW_METHODS = ['GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS'];
export const CORS_ALLOW_HEADERS = ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-Id'];
export const CORS_EXPOSE_HEADERS = ['X-Request-Id', 'Retry-After', 'Idempotent-Replayed', 'X-Query-Time-Ms', 'X-Timestamp'];

export function corsMiddleware(origins: readonly string[]): MiddlewareHandler {
  const allowed = new Set(origins);
  const answer = cors({
    origin: [...origins],
    allowMethods: CORS_ALLOW_METHODS,
    allowHeaders: CORS_ALLOW_HEADERS,
    exposeHeaders: CORS_EXPOSE_HEADERS,
    maxAge: 600,
  });
  return async (c, next) => {
    c.header('Vary', 'Origin', { append: true });
    const origin = c.req.header('origin');
    const preflight = c.req.method === 'OPTIONS' && origin !== undefined && c.req.header('access-control-request-method') !== undefined;
    if (origin !== undefined && allowed.has(origin)) return answer(c, next);
    if (preflight) throw new HttpError(403, 'CORS_ORIGIN_NOT_ALLOWED', `origin ${JSON.stringify(origin)} is not in corsOrigins`);
    return next();
  };
}
