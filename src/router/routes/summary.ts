/**
 * GET /query/summary: three plans (summary, event types, digests per column) in one `query_many`
 * round trip per shard, merged by src/merge/summary.ts.
 */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';
import { fanOutMany } from '../../query/fanout.js';
import { parseSummaryRequest, summaryPlans } from '../../query/summary-request.js';

export function registerSummaryRoutes(app: Hono, ctx: EngineContext): void {
  app.get('/query/summary', async (c) => {
    const started = performance.now();
    const req = parseSummaryRequest(c.req.url);
    const perPlan = await fanOutMany(ctx, summaryPlans(req));
    const spec = { columns: req.columns, shards: ctx.shards.length };
    const stats = await ctx.mergePool.merge({ kind: 'summary', spec, partials: perPlan.flat() });
    return c.json({ stats, query_time_ms: performance.now() - started, timestamp: new Date().toISOString() });
  });
}
