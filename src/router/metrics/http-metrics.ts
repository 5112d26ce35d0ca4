/**
 * The root-app middleware that counts every request by its route pattern (never the raw path),
 * times it, and counts ingest events by outcome. The ingest routes say how many events a request
 * carried with `noteIngestEvents` as soon as they know; the outcome is the answer's status.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { routePatternOf } from '../route-pattern.js';
import type { EngineMetrics } from './engine-metrics.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** Events the ingest request carried (set once they are parsed). */
    ingestEvents: number;
  }
}

/** Records how many events this ingest request carries (counted as accepted or rejected). */
export function noteIngestEvents(c: Context, events: number): void {
  c.set('ingestEvents', events);
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** Label for a request no route matched (404s, CORS preflights). */
export const UNMATCHED_ROUTE = 'unmatched';

function reasonOf(c: Context, status: number): string {
  const code = (c.error as { code?: unknown } | undefined)?.code;
  // Error codes come from our own catalogues (HttpError, RequestError, ShardError): a fixed set.
  return typeof code === 'string' && /^[A-Z_]{1,40}$/.test(code) ? code : `HTTP_${status}`;
}

export function httpMetricsMiddleware(metrics: EngineMetrics): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      const route = routePatternOf(c) ?? UNMATCHED_ROUTE;
      const method = METHODS.has(c.req.method) ? c.req.method : 'OTHER';
      const status = c.res.status;
      metrics.httpRequests.inc({ route, method, status: String(status) });
      metrics.httpDuration.observe({ route, method }, (performance.now() - started) / 1000);
      const events = c.get('ingestEvents');
      if (events !== undefined) {
        if (status < 300) metrics.ingestEvents.inc({ route }, events);
        else metrics.ingestRejected.inc({ route, reason: reasonOf(c, status) }, events);
      }
    }
  };
}
