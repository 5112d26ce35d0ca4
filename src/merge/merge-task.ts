/**
 * Piscina task: decode every shard's Arrow IPC partial and merge them into the answer.
 * Stateless and CPU-bound (a by-user aggregate can carry hundreds of thousands of groups), so it
 * runs in the merge pool instead of on the main thread that serves HTTP.
 */
import { MERGERS, type MergeKind, type MergeOutput, type MergeSpec } from './mergers.js';

export type { MergeOutput };

export interface MergeTask<K extends MergeKind = MergeKind> {
  kind: K;
  spec: MergeSpec<K>;
  partials: Uint8Array[];
}

export function runMerge<K extends MergeKind>(task: MergeTask<K>): MergeOutput<K> {
  const merge = MERGERS[task.kind] as (spec: unknown, partials: Uint8Array[]) => MergeOutput<K>;
  return merge(task.spec, task.partials);
}

/**
 * With `asJson`, the worker also serializes the answer: a large answer then crosses back to the
 * main thread as one string instead of a structured clone of every row object, and the HTTP
 * thread never spends time in JSON.stringify for it.
 */
export default function mergeTask(task: MergeTask & { asJson?: boolean; jsonField?: string }): unknown {
  const out = runMerge(task);
  return task.asJson ? mergedJson(out, task.jsonField) : out;
}

/** JSON text of a merge output, or of one of its fields. */
export function mergedJson(out: unknown, field?: string): string {
  return JSON.stringify(field === undefined ? out : (out as Record<string, unknown>)[field]);
}
