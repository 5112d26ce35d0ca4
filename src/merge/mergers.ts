/**
 * Merge dispatch for the merge pool: partial kind → merge function over every shard's Arrow IPC
 * partial. Each kind's function lives in its own file in src/merge/.
 */
import { decodePartial } from './decode-partial.js';
import { aggregateGroupsFromPartial, finishAggregate, mergeAggregateGroups, type AggregateSpec } from './aggregate.js';
import { mergeAnomaliesTask } from './anomalies.js';
import { mergeCustomTask } from './custom.js';
import { mergeEnrichmentTask } from './enrichment.js';
import { mergeExportTask } from './export.js';
import { mergeFunnelTask } from './funnel.js';
import { mergePercentilesTask } from './percentiles.js';
import { mergeSummaryTask } from './summary.js';
import { mergeTopNTask } from './topn.js';
import { mergeWindowTask } from './window.js';

export type Merger = (spec: any, partials: Uint8Array[]) => unknown;

export function mergeAggregateTask(spec: AggregateSpec, partials: Uint8Array[]): { rows: Array<Record<string, unknown>> } {
  const parts = partials.map((ipc) => aggregateGroupsFromPartial(decodePartial(ipc), spec));
  // Users live on exactly one shard, so tuples containing user_id never meet across shards.
  return { rows: finishAggregate(mergeAggregateGroups(parts, spec.metrics.length, spec.groupBy.includes('user_id')), spec) };
}

export const MERGERS = {
  aggregate: mergeAggregateTask,
  window: mergeWindowTask,
  percentiles: mergePercentilesTask,
  topn: mergeTopNTask,
  anomalies: mergeAnomaliesTask,
  funnel: mergeFunnelTask,
  summary: mergeSummaryTask,
  enrichment: mergeEnrichmentTask,
  custom: mergeCustomTask,
  export: mergeExportTask,
} satisfies Record<string, Merger>;

export type MergeKind = keyof typeof MERGERS;
export type MergeSpec<K extends MergeKind> = Parameters<(typeof MERGERS)[K]>[0];
export type MergeOutput<K extends MergeKind = MergeKind> = ReturnType<(typeof MERGERS)[K]>;
