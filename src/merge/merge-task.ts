/**
 * Piscina task: decode every shard's Arrow IPC partial and merge them into the answer rows.
 * Stateless and CPU-bound (a by-user aggregate can carry hundreds of thousands of groups), so it
 * runs in the merge pool instead of on the main thread that serves HTTP.
 */
import { decodePartial } from './decode-partial.js';
import { aggregateGroupsFromPartial, finishAggregate, mergeAggregateGroups, type AggregateSpec } from './aggregate.js';

export type MergeTask = { kind: 'aggregate'; spec: AggregateSpec; partials: Uint8Array[] };

export type MergeOutput = { rows: Array<Record<string, unknown>> };

export function runMerge(task: MergeTask): MergeOutput {
  switch (task.kind) {
    case 'aggregate': {
      const parts = task.partials.map((ipc) => aggregateGroupsFromPartial(decodePartial(ipc), task.spec));
      return { rows: finishAggregate(mergeAggregateGroups(parts, task.spec.metrics.length), task.spec) };
    }
  }
}

export default function mergeTask(task: MergeTask): MergeOutput {
  return runMerge(task);
}
