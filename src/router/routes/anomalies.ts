/**
 * GET /query/anomalies: z-scores in two fan-outs. Phase 1 merges every shard's moments into
 * the mean and standard deviation (global or per group); phase 2 sends them back and merges
 * each shard's events beyond the threshold (src/merge/anomalies.ts says why it is exact).
 */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';
import { anomaliesPlan, anomalyMomentsPlan, parseAnomaliesRequest } from '../../query/anomalies-request.js';
import { fanOut } from '../../query/fanout.js';
import { usableGroups, type AnomalyEvents, type AnomalyGroupMoments } from '../../merge/anomalies.js';

export function registerAnomaliesRoutes(app: Hono, ctx: EngineContext): void {
  app.get('/query/anomalies', async (c) => {
    const started = performance.now();
    const req = parseAnomaliesRequest(c.req.url, ctx.enrichment);
    const momentPartials = await fanOut(ctx, anomalyMomentsPlan(req));
    const groups = (await ctx.mergePool.merge({
      kind: 'anomalies',
      spec: { phase: 'moments', groupBy: req.groupBy, column: req.column, ddof: req.ddof },
      partials: momentPartials,
    })) as AnomalyGroupMoments[];
    const usable = usableGroups(groups);
    let events: AnomalyEvents = { anomalies: [], count: 0 };
    if (usable.length > 0) {
      const partials = await fanOut(ctx, anomaliesPlan(req, usable));
      events = (await ctx.mergePool.merge({ kind: 'anomalies', spec: { phase: 'events', groupBy: req.groupBy, limit: req.limit }, partials })) as AnomalyEvents;
    }
    const moments =
      req.groupBy === null
        ? { mean: groups[0]?.mean ?? null, stddev: groups[0]?.stddev ?? null, values: groups[0]?.count ?? 0 }
        : { groups: groups.map((g) => ({ [req.groupBy!]: g.key, mean: g.mean, stddev: g.stddev, count: g.count })) };
    return c.json({
      anomalies: events.anomalies,
      count: events.count,
      ...moments,
      stddev_kind: req.ddof === 1 ? 'sample' : 'population',
      ddof: req.ddof,
      column: req.column,
      threshold: req.threshold,
      limit: req.limit,
      ...(req.groupBy !== null ? { groupBy: req.groupBy } : {}),
      query_time_ms: performance.now() - started,
      timestamp: new Date().toISOString(),
    });
  });
}
