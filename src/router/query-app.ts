/**
 * The analytics API (default port 3001). Every answer carries `query_time_ms` and `timestamp`.
 * Each query kind registers its routes from its own file in src/router/routes/.
 */
import { Hono } from 'hono';
import type { EngineContext } from '../engine-context.js';
import { parseAggregateRequest } from '../query/aggregate-request.js';
import type { EnrichmentCatalog } from '../query/dimensions.js';
import { fanOut } from '../query/fanout.js';
import { MAX_WINDOWS, tooManyWindows } from '../query/window-request.js';
import { readJsonBody } from './read-body.js';
import { registerAnomaliesRoutes } from './routes/anomalies.js';
import { registerCustomRoutes } from './routes/custom.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerEnrichmentRoutes } from './routes/enrichment.js';
import { registerExportRoutes } from './routes/export.js';
import { registerFunnelRoutes } from './routes/funnel.js';
import { registerPercentilesRoutes } from './routes/percentiles.js';
import { registerSummaryRoutes } from './routes/summary.js';
import { registerTopNRoutes } from './routes/topn.js';
import { registerWindowRoutes } from './routes/window.js';

/** The enrichment catalog, once the enrichment routes put one on the context. */
function enrichmentCatalog(ctx: EngineContext): EnrichmentCatalog | undefined {
  return (ctx as EngineContext & { enrichment?: EnrichmentCatalog }).enrichment;
}

/** Each shard checked its own data range; the union of the ranges may still span too many windows. */
function checkWindowSpan(rows: Array<Record<string, unknown>>, windowMs: number): void {
  let first = Infinity;
  let last = -Infinity;
  for (const r of rows) {
    const w = r.window_start as number;
    if (w < first) first = w;
    if (w > last) last = w;
  }
  const n = rows.length === 0 ? 0 : Math.round((last - first) / windowMs) + 1;
  if (n > MAX_WINDOWS) throw tooManyWindows(n, windowMs, windowMs, 'the data range');
}

export function makeQueryApp(ctx: EngineContext): Hono {
  const app = new Hono();

  app.post('/query/aggregate', async (c) => {
    const started = performance.now();
    const plan = parseAggregateRequest(await readJsonBody(c, ctx.config.maxBodyBytes), enrichmentCatalog(ctx));
    const partials = await fanOut(ctx, plan);
    const spec = { groupBy: plan.group_by, metrics: plan.metrics, ...(plan.window_ms ? { windowMs: plan.window_ms } : {}) };
    if (plan.window_ms) {
      const { rows } = await ctx.mergePool.merge({ kind: 'aggregate', spec, partials });
      checkWindowSpan(rows, plan.window_ms);
      return c.json({ results: rows, query_time_ms: performance.now() - started, timestamp: new Date().toISOString() });
    }
    // Serialized in the merge pool: a by-user answer is tens of MB of JSON, which would
    // otherwise be structured-cloned back to this thread and then stringified on it.
    const results = await ctx.mergePool.mergeToJson({ kind: 'aggregate', spec, partials }, 'rows');
    const tail = JSON.stringify({ query_time_ms: performance.now() - started, timestamp: new Date().toISOString() }).slice(1);
    c.header('content-type', 'application/json');
    return c.body(`{"results":${results},${tail}`);
  });

  registerWindowRoutes(app, ctx);
  registerPercentilesRoutes(app, ctx);
  registerTopNRoutes(app, ctx);
  registerAnomaliesRoutes(app, ctx);
  registerFunnelRoutes(app, ctx);
  registerSummaryRoutes(app, ctx);
  registerEnrichmentRoutes(app, ctx);
  registerCustomRoutes(app, ctx);
  registerExportRoutes(app, ctx);
  registerDashboardRoutes(app, ctx);
  return app;
}
