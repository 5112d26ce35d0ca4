/**
 * The analytics API (default port 3001). Every answer carries `query_time_ms` and `timestamp`.
 * Each query kind registers its routes from its own file in src/router/routes/.
 */
import { Hono } from 'hono';
import type { EngineContext } from '../engine-context.js';
import { parseAggregateRequest } from '../query/aggregate-request.js';
import { fanOut } from '../query/fanout.js';
import { readJsonBody } from './read-body.js';
import { registerAnomaliesRoutes } from './routes/anomalies.js';
import { registerCustomRoutes } from './routes/custom.js';
import { registerEnrichmentRoutes } from './routes/enrichment.js';
import { registerExportRoutes } from './routes/export.js';
import { registerFunnelRoutes } from './routes/funnel.js';
import { registerPercentilesRoutes } from './routes/percentiles.js';
import { registerSummaryRoutes } from './routes/summary.js';
import { registerTopNRoutes } from './routes/topn.js';
import { registerWindowRoutes } from './routes/window.js';

export function makeQueryApp(ctx: EngineContext): Hono {
  const app = new Hono();

  app.post('/query/aggregate', async (c) => {
    const started = performance.now();
    const plan = parseAggregateRequest(await readJsonBody(c, ctx.config.maxBodyBytes));
    const partials = await fanOut(ctx, plan);
    const { rows } = await ctx.mergePool.merge({ kind: 'aggregate', spec: { groupBy: plan.group_by, metrics: plan.metrics }, partials });
    return c.json({ results: rows, query_time_ms: performance.now() - started, timestamp: new Date().toISOString() });
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
  return app;
}
