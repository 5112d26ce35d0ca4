/**
 * The analytics API (default port 3001). Every answer carries `query_time_ms` and `timestamp`.
 */
import { Hono } from 'hono';
import type { EngineContext } from '../engine-context.js';
import { parseAggregateRequest } from '../query/aggregate-request.js';
import { fanOut } from '../query/fanout.js';
import { readJsonBody } from './read-body.js';

export function makeQueryApp(ctx: EngineContext): Hono {
  const app = new Hono();

  app.post('/query/aggregate', async (c) => {
    const started = performance.now();
    const plan = parseAggregateRequest(await readJsonBody(c, ctx.config.maxBodyBytes));
    const partials = await fanOut(ctx, plan);
    const { rows } = await ctx.mergePool.merge({ kind: 'aggregate', spec: { groupBy: plan.group_by, metrics: plan.metrics }, partials });
    return c.json({ results: rows, query_time_ms: performance.now() - started, timestamp: new Date().toISOString() });
  });

  return app;
}
