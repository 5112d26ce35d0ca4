/**
 * GET /dashboard/metrics: summary, top 5 users and event types, the last 15 one-minute windows by
 * event type and the ingestion rate, from one fan-out (query_many) per shard.
 */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';
import { dashboardPlans } from '../../query/dashboard-plans.js';
import { fanOutMany } from '../../query/fanout.js';
import { queryFields } from '../../query/request-fields.js';

export function registerDashboardRoutes(app: Hono, ctx: EngineContext): void {
  app.get('/dashboard/metrics', async (c) => {
    const started = performance.now();
    queryFields(c.req.url, []);
    const plans = dashboardPlans(Date.now());
    const perPlan = await fanOutMany(ctx, plans.all);
    const k = plans.summaryPlanCount;
    const [summary, topUsers, topEvents, windows] = await Promise.all([
      ctx.mergePool.merge({ kind: 'summary', spec: { columns: plans.summary.columns, shards: ctx.shards.length }, partials: perPlan.slice(0, k).flat() }),
      ctx.mergePool.merge({ kind: 'topn', spec: { groupBy: 'user_id', metric: null, aggFunc: 'count', n: plans.topUsers.n, order: 'desc' }, partials: perPlan[k]! }),
      ctx.mergePool.merge({ kind: 'topn', spec: { groupBy: 'event_type', metric: null, aggFunc: 'count', n: plans.topEvents.n, order: 'desc' }, partials: perPlan[k + 1]! }),
      ctx.mergePool.merge({
        kind: 'aggregate',
        spec: { groupBy: ['window', 'event_type'], metrics: ['value'], windowMs: plans.windows.window_ms! },
        partials: perPlan[k + 2]!,
      }),
    ]);
    const ingestion = ctx.metrics.snapshot();
    return c.json({
      summary,
      top_users: topUsers.results,
      top_events: topEvents.results,
      recent_windows: {
        window_ms: plans.windows.window_ms,
        window_starts: plans.windowStarts,
        rows: windows.rows,
      },
      ingestion: {
        total_events: ingestion.total_events,
        throughput_per_second: ingestion.throughput_per_second,
        rejected_events: ingestion.rejected_events,
        buffered: ctx.writer.buffered(),
      },
      shards: ctx.shards.length,
      query_time_ms: performance.now() - started,
      timestamp: new Date().toISOString(),
    });
  });
}
