/**
 * The query kinds the client knows, with the route each one is served on and the client method
 * that calls it. The engine's list is src/kinds/registry.ts; src/client/kind-routes.test.ts checks
 * that the two agree (same names, methods and paths, a method for each), so a kind added to the
 * engine without a client method fails the suite. The client imports no engine code at run time.
 */
import type { ShardlyticsClient } from './client.js';

export interface KindRoute {
  method: 'GET' | 'POST';
  path: string;
  /** the ShardlyticsClient method that calls it */
  clientMethod: keyof ShardlyticsClient;
}

export const KIND_ROUTES = {
  aggregate: { method: 'POST', path: '/query/aggregate', clientMethod: 'aggregate' },
  window: { method: 'POST', path: '/query/window', clientMethod: 'window' },
  percentiles: { method: 'GET', path: '/query/percentiles', clientMethod: 'percentiles' },
  topn: { method: 'POST', path: '/query/top-n', clientMethod: 'topN' },
  anomalies: { method: 'GET', path: '/query/anomalies', clientMethod: 'anomalies' },
  funnel: { method: 'POST', path: '/query/funnel', clientMethod: 'funnel' },
  summary: { method: 'GET', path: '/query/summary', clientMethod: 'summary' },
  custom_list: { method: 'GET', path: '/query/custom', clientMethod: 'customList' },
  custom: { method: 'POST', path: '/query/custom/:name', clientMethod: 'custom' },
  export: { method: 'GET', path: '/query/export', clientMethod: 'export' },
  dashboard: { method: 'GET', path: '/dashboard/metrics', clientMethod: 'dashboard' },
} as const satisfies Record<string, KindRoute>;

export type KindName = keyof typeof KIND_ROUTES;
