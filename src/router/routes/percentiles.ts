/**
 * GET /query/percentiles: one fan-out; each shard returns a t-digest per group (or, with
 * `exact=true`, its value histogram) and src/merge/percentiles.ts merges them.
 */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';
import { fanOut } from '../../query/fanout.js';
import { parsePercentilesRequest } from '../../query/percentiles-request.js';
import type { PercentileGroup } from '../../merge/percentiles.js';

export function registerPercentilesRoutes(app: Hono, ctx: EngineContext): void {
  app.get('/query/percentiles', async (c) => {
    const started = performance.now();
    const { plan, percentiles } = parsePercentilesRequest(c.req.url, ctx.enrichment);
    const partials = await fanOut(ctx, plan);
    const spec = { groupBy: plan.group_by, exact: plan.exact, percentiles, compression: plan.compression };
    const groups = (await ctx.mergePool.merge({ kind: 'percentiles', spec, partials })) as PercentileGroup[];
    const method = plan.exact ? { exact: true, interpolation: 'linear' } : { exact: false, compression: plan.compression };
    const body =
      plan.group_by === null
        ? { column: plan.column, percentiles: groups[0]!.percentiles, count: groups[0]!.count }
        : {
            column: plan.column,
            groupBy: plan.group_by,
            results: groups.map((g) => ({ [plan.group_by!]: g.key, count: g.count, percentiles: g.percentiles })),
          };
    return c.json({ ...body, ...method, query_time_ms: performance.now() - started, timestamp: new Date().toISOString() });
  });
}
