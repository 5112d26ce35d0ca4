/**
 * Which scope each route needs, in one table: `METHOD /pattern` (Hono's route pattern, as the
 * app registered it) → the scopes any one of which lets a token in. `admin` implies every scope.
 * A route missing here needs `admin` (fail closed); test/integration/access.test.ts checks that
 * every route the engine serves is listed, and the token matrix runs against this table.
 */
import type { Scope } from '../../config/schema.js';

/** `open`: no token needed. Otherwise a token with one of these scopes (or `admin`). */
export type RouteAccess = 'open' | readonly Scope[];

const OPS: readonly Scope[] = ['query', 'admin'];

export const ROUTE_SCOPES: Readonly<Record<string, RouteAccess>> = {
  // Liveness stays open: probes and load balancers carry no token (it shows no event data).
  'GET /health': 'open',

  'POST /ingest': ['ingest'],
  'POST /ingest/batch': ['ingest'],
  'POST /ingest/ndjson': ['ingest'],
  'POST /ingest/arrow': ['ingest'],

  // Operations reads: what the engine is doing, never the events themselves.
  'GET /ready': OPS,
  'GET /stats/shards': OPS,
  'GET /metrics/ingestion': OPS,
  'GET /status/buffer': OPS,
  'GET /metrics': OPS,
  'GET /openapi.json': OPS,
  'GET /docs': OPS,

  // The query kinds (src/kinds/registry.ts).
  'POST /query/aggregate': ['query'],
  'POST /query/window': ['query'],
  'GET /query/percentiles': ['query'],
  'POST /query/top-n': ['query'],
  'GET /query/anomalies': ['query'],
  'POST /query/funnel': ['query'],
  'GET /query/summary': ['query'],
  'POST /query/custom/:name': ['query'],
  'GET /query/export': ['query'],
  'GET /dashboard/metrics': ['query'],
  // Which operator plugins are installed (their names and errors) is the operator's business.
  'GET /query/custom': ['admin'],

  'GET /enrichment': ['query'],
  'POST /enrichment/:table': ['admin'],
  'DELETE /enrichment/:table': ['admin'],

  // The live page and its event stream (an EventSource cannot send headers: `?token=` too).
  'GET /': ['query'],
  'GET /dashboard/stream': ['query'],
  // The page's code and style: the same for everyone, no data in them, and a browser loads them
  // with <script>/<link> tags that carry no header.
  'GET /assets/page.js': 'open',
  'GET /assets/page.css': 'open',
  'GET /assets/uplot.min.js': 'open',
  'GET /assets/uplot.min.css': 'open',
};

/** Routes that also take the token as `?token=`: pages a browser opens without custom headers. */
export const QUERY_TOKEN_ROUTES: ReadonlySet<string> = new Set(['GET /', 'GET /dashboard/stream']);

/** Unmatched requests (404s) still need a valid token, of any scope, so the route list stays private. */
const UNMATCHED: RouteAccess = ['ingest', 'query', 'admin'];

/** The access rule of `method pattern` (HEAD is GET); `pattern` null when no route matched. */
export function routeAccess(method: string, pattern: string | null): RouteAccess {
  if (pattern === null) return UNMATCHED;
  return ROUTE_SCOPES[`${method === 'HEAD' ? 'GET' : method} ${pattern}`] ?? ['admin'];
}

/** Whether a token holding `held` may use a route needing one of `needed`. */
export function grants(held: readonly Scope[], needed: RouteAccess): boolean {
  if (needed === 'open' || held.includes('admin')) return true;
  return needed.some((s) => held.includes(s));
}
