/**
 * GET /dashboard/metrics as plans: one `query_many` round trip per shard carries the summary's
 * plans, the top users and top event types by event count, and the last 15 one-minute windows by
 * event type. The order here is the order the route splits the partials in.
 */
import type { AggregatePlan } from './plan.js';
import { summaryPlans, type SummaryRequest } from './summary-request.js';
import type { TopNPlan } from './topn-request.js';

export const DASHBOARD_TOP = 5;
export const DASHBOARD_WINDOWS = 15;
export const DASHBOARD_WINDOW_MS = 60_000;

export interface DashboardPlans {
  summary: SummaryRequest;
  /** Count of plans in `all` that belong to the summary (they come first). */
  summaryPlanCount: number;
  topUsers: TopNPlan;
  topEvents: TopNPlan;
  windows: AggregatePlan;
  /** Window starts shown, oldest first (epoch ms, aligned to the minute). */
  windowStarts: number[];
  all: Array<AggregatePlan | TopNPlan | ReturnType<typeof summaryPlans>[number]>;
}

export function dashboardPlans(now: number): DashboardPlans {
  const summary: SummaryRequest = { columns: ['value'], filter: {} };
  const sPlans = summaryPlans(summary);
  const top = (group_by: string, shard_top: boolean): TopNPlan => ({
    kind: 'topn',
    filter: {},
    group_by,
    metric: null,
    agg: 'count',
    n: DASHBOARD_TOP,
    order: 'desc',
    shard_top,
  });
  const current = Math.floor(now / DASHBOARD_WINDOW_MS) * DASHBOARD_WINDOW_MS;
  const first = current - (DASHBOARD_WINDOWS - 1) * DASHBOARD_WINDOW_MS;
  const windows: AggregatePlan = {
    kind: 'aggregate',
    filter: { from: first, to: current + DASHBOARD_WINDOW_MS },
    group_by: ['window', 'event_type'],
    metrics: ['value'],
    window_ms: DASHBOARD_WINDOW_MS,
  };
  const topUsers = top('user_id', true);
  const topEvents = top('event_type', false);
  return {
    summary,
    summaryPlanCount: sPlans.length,
    topUsers,
    topEvents,
    windows,
    windowStarts: Array.from({ length: DASHBOARD_WINDOWS }, (_, i) => first + i * DASHBOARD_WINDOW_MS),
    all: [...sPlans, topUsers, topEvents, windows],
  };
}
