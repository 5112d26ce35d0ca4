/**
 * The app one port serves: the request-id middleware first, then request metrics and access
 * control (CORS, bearer tokens), then the given apps (ingest, query or both), the routes every
 * port has (/health, /ready, /stats/shards, /metrics, /openapi.json, /docs), one error handler and
 * one 404. Sub-apps set no onError/notFound of their own, so these apply to all their routes.
 */
import { Hono } from 'hono';
import type { EngineContext } from '../engine-context.js';
import { errorHandler } from './http-error.js';
import { addOpsRoutes } from './ops-routes.js';
import { requestIdMiddleware, requestIdOf } from './request-id.js';
import { accessMiddleware } from './access/index.js';
import { httpMetricsMiddleware } from './metrics/http-metrics.js';

export function makeRootApp(apps: Hono[], ctx: Pick<EngineContext, 'logger'> & Partial<EngineContext>, opts: { opsRoutes?: boolean } = {}): Hono {
  const root = new Hono();
  root.use('*', requestIdMiddleware(ctx.logger));
  // Counted before access control, so refused requests (401/403) are counted too.
  if (ctx.prometheus) root.use('*', httpMetricsMiddleware(ctx.prometheus));
  // Access: CORS preflights for `corsOrigins`, then bearer tokens by route scope (src/router/access/).
  for (const access of accessMiddleware(ctx.config)) root.use('*', access);
  for (const app of apps) root.route('/', app);
  if (opts.opsRoutes !== false) addOpsRoutes(root, ctx as EngineContext);
  root.onError(errorHandler);
  root.notFound((c) => c.json({ error: 'NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}`, request_id: requestIdOf(c) }, 404));
  return root;
}
