/** POST /query/top-n: the exact top N groups of any dimension (src/merge/topn.ts says how). */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';
import { fanOut } from '../../query/fanout.js';
import { parseTopNRequest } from '../../query/topn-request.js';
import { readJsonBody } from '../read-body.js';

export function registerTopNRoutes(app: Hono, ctx: EngineContext): void {
  app.post('/query/top-n', async (c) => {
    const started = performance.now();
    const plan = parseTopNRequest(await readJsonBody(c, ctx.config.maxBodyBytes), ctx.enrichment);
    const partials = await fanOut(ctx, plan);
    const spec = { groupBy: plan.group_by, metric: plan.metric, aggFunc: plan.agg, n: plan.n, order: plan.order };
    const { results } = await ctx.mergePool.merge({ kind: 'topn', spec, partials });
    return c.json({
      results,
      groupBy: plan.group_by,
      metric: plan.metric,
      aggFunc: plan.agg,
      n: plan.n,
      order: plan.order,
      query_time_ms: performance.now() - started,
      timestamp: new Date().toISOString(),
    });
  });
}
