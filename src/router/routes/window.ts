/**
 * POST /query/window: event-time tumbling and hopping windows, one row per (window, group).
 * Shards return panes of size `slide`; src/merge/window.ts assembles them into windows.
 */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';
import type { EnrichmentCatalog } from '../../query/dimensions.js';
import { fanOut } from '../../query/fanout.js';
import { MAX_WINDOWS, parseWindowRequest, tooManyWindows } from '../../query/window-request.js';
import { readJsonBody } from '../read-body.js';

/** The enrichment catalog, once the enrichment routes put one on the context. */
function catalogOf(ctx: EngineContext): EnrichmentCatalog | undefined {
  return (ctx as EngineContext & { enrichment?: EnrichmentCatalog }).enrichment;
}

export function registerWindowRoutes(app: Hono, ctx: EngineContext): void {
  app.post('/query/window', async (c) => {
    const started = performance.now();
    const req = parseWindowRequest(await readJsonBody(c, ctx.config.maxBodyBytes), catalogOf(ctx));
    const partials = await fanOut(ctx, req.plan);
    const spec = { windowMs: req.windowMs, slideMs: req.slideMs, groupBy: req.plan.group_by, metric: req.plan.metric, aggFunc: req.aggFunc };
    const { rows, windowsSpanned } = await ctx.mergePool.merge({ kind: 'window', spec, partials });
    // Each shard checked its own data range; the union of the ranges may still span too many.
    if (windowsSpanned > MAX_WINDOWS) throw tooManyWindows(windowsSpanned, req.windowMs, req.slideMs, 'the data range');
    return c.json({
      results: rows,
      windowSize: req.windowMs,
      slide: req.slideMs,
      groupBy: req.plan.group_by,
      metric: req.plan.metric,
      aggFunc: req.aggFunc,
      query_time_ms: performance.now() - started,
      timestamp: new Date().toISOString(),
    });
  });
}
