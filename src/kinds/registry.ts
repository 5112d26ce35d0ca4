/**
 * The query kinds the analytics API serves, in one list. Adding a kind: its module in src/kinds/
 * (route, schema, run) and one line here, its merge file in src/merge/ (exported as default with
 * `defineMerge`, found by name: no list), its op in python/engine_polars/ops/ and one line in
 * ops/__init__.py, and its page in docs/api/.
 */
import aggregate from './aggregate.js';
import anomalies from './anomalies.js';
import { customList, customRun } from './custom.js';
import dashboard from './dashboard.js';
import exportKind from './export.js';
import funnel from './funnel.js';
import type { QueryKind } from './kind.js';
import percentiles from './percentiles.js';
import summary from './summary.js';
import topn from './topn.js';
import window from './window.js';

export const KINDS: readonly QueryKind[] = [aggregate, window, percentiles, topn, anomalies, funnel, summary, customList, customRun, exportKind, dashboard];
