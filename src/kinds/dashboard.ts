/**
 * GET /dashboard/metrics: summary, top 5 users and event types by events, the last 15 one-minute
 * windows by event type and the ingestion rate, from one `query_many` round trip per shard.
 *
 * Answer: `{summary, top_users, top_events, recent_windows: {window_ms, window_starts, rows},
 * ingestion: {total_events, throughput_per_second, rejected_events, buffered}, shards}`.
 */
import aggregateMerge from '../merge/aggregate.js';
import topnMerge from '../merge/topn.js';
import summaryMerge from '../merge/summary.js';
import { z } from 'zod';
import type { AggregatePlan } from './aggregate.js';
import { defineKind } from './kind.js';
import { summaryPlans, type SummaryRequest } from './summary.js';
import type { TopNPlan } from './topn.js';

export const DASHBOARD_TOP = 5;
export const DASHBOARD_WINDOWS = 15;
export const DASHBOARD_WINDOW_MS = 60_000;

/** The dashboard's plans at `now`; the order here is the order `run` splits the partials in. */
export function dashboardPlans(now: number) {
  const summary: SummaryRequest = { columns: ['value'], filter: {} };
  const sPlans = summaryPlans(summary);
  const top = (group_by: string, shard_top: boolean): TopNPlan => ({ kind: 'topn', filter: {}, group_by, metric: null, agg: 'count', n: DASHBOARD_TOP, order: 'desc', shard_top });
  const current = Math.floor(now / DASHBOARD_WINDOW_MS) * DASHBOARD_WINDOW_MS;
  const first = current - (DASHBOARD_WINDOWS - 1) * DASHBOARD_WINDOW_MS;
  const windows: AggregatePlan = {
    kind: 'aggregate',
    filter: { from: first, to: current + DASHBOARD_WINDOW_MS },
    group_by: ['window', 'event_type'],
    metrics: ['value'],
    window_ms: DASHBOARD_WINDOW_MS,
  };
  return {
    summary,
    summaryPlanCount: sPlans.length,
    /** which of the summary's plans counts the events per type */
    typeCountsAt: sPlans.findIndex((p) => p.kind === 'aggregate'),
    windowStarts: Array.from({ length: DASHBOARD_WINDOWS }, (_, i) => first + i * DASHBOARD_WINDOW_MS),
    // No top-n plan for the event types: the summary's own event-type plan (aggregate by
    // event_type, no metrics, no filter: the events per type) is the partial a top-n by count
    // sends, so the shards group their rows by type once, not twice.
    all: [...sPlans, top('user_id', true), windows],
  };
}

export default defineKind<Record<string, never>>({
  name: 'dashboard',
  method: 'GET',
  path: '/dashboard/metrics',
  input: 'query',
  summary: 'Summary, top users and event types, recent windows and ingestion rate in one answer',
  schema: () => z.strictObject({}),
  async run(_req, rt) {
    const plans = dashboardPlans(Date.now());
    const perPlan = await rt.fanOutMany(plans.all);
    const k = plans.summaryPlanCount;
    // the summary's event-type partials, copied: a merge may move its partials' buffers to the pool
    const typeCounts = perPlan[plans.typeCountsAt]!.map((p) => p.slice());
    const [summary, topUsers, topEvents, windows] = await Promise.all([
      rt.merge(summaryMerge, { columns: plans.summary.columns, shards: rt.shardCount }, perPlan.slice(0, k).flat()),
      rt.merge(topnMerge, { groupBy: 'user_id', metric: null, aggFunc: 'count', n: DASHBOARD_TOP, order: 'desc' }, perPlan[k]!),
      rt.merge(topnMerge, { groupBy: 'event_type', metric: null, aggFunc: 'count', n: DASHBOARD_TOP, order: 'desc' }, typeCounts),
      rt.merge(aggregateMerge, { groupBy: ['window', 'event_type'], metrics: ['value'], windowMs: DASHBOARD_WINDOW_MS }, perPlan[k + 1]!),
    ]);
    return {
      summary,
      top_users: topUsers.results,
      top_events: topEvents.results,
      recent_windows: { window_ms: DASHBOARD_WINDOW_MS, window_starts: plans.windowStarts, rows: windows.rows },
      ingestion: rt.ingestion(),
      shards: rt.shardCount,
    };
  },
});
