/**
 * Merge of `funnel` partials: per step, the users of every shard whose level reaches it. A user's
 * events all live on one shard (routing is by user_id), so each user is counted by exactly one
 * shard and the per-step sum is exact.
 */
import { decodePartial, requireColumn } from './decode-partial.js';
import { defineMerge } from './merge-def.js';

export interface FunnelSpec {
  steps: string[];
}

export interface FunnelStep {
  step: number;
  event_type: string;
  count: number;
  /** count / users at step 1 (0 when no user did step 1). */
  rate_from_start: number;
  /** count / users at the previous step (1 for step 1 with any user; 0 when the denominator is 0). */
  rate_from_previous: number;
}

/** The seed's shape: `percentage` of the step-1 users, 0..100. */
export interface FunnelSeedStep {
  step: number;
  event_type: string;
  count: number;
  percentage: number;
}

export interface FunnelAnswer {
  steps: FunnelStep[];
  funnel: FunnelSeedStep[];
  total_users: number;
}

/** Per-step user counts → the answer (pure; the route adds window, mode and timing). */
export function finishFunnel(spec: FunnelSpec, counts: number[]): FunnelAnswer {
  const total = counts[0] ?? 0;
  const ratio = (n: number, d: number) => (d === 0 ? 0 : n / d);
  const steps = spec.steps.map((event_type, i) => ({
    step: i + 1,
    event_type,
    count: counts[i]!,
    rate_from_start: ratio(counts[i]!, total),
    rate_from_previous: ratio(counts[i]!, i === 0 ? total : counts[i - 1]!),
  }));
  const funnel = steps.map((s) => ({ step: s.step, event_type: s.event_type, count: s.count, percentage: ratio(s.count * 100, total) }));
  return { steps, funnel, total_users: total };
}

/** Adds the shards' per-step counts; every partial must hold one row per step, in step order. */
export function mergeFunnelCounts(spec: FunnelSpec, partials: Uint8Array[]): number[] {
  const counts = spec.steps.map(() => 0);
  partials.forEach((ipc, shard) => {
    const p = decodePartial(ipc);
    const step = requireColumn(p, 'step');
    const users = requireColumn(p, 'users');
    if (p.rows !== counts.length) throw new Error(`funnel partial of shard ${shard}: expected ${counts.length} step rows, got ${p.rows}`);
    for (let i = 0; i < p.rows; i++) {
      if (step[i] !== i + 1) throw new Error(`funnel partial of shard ${shard}: expected step ${i + 1} at row ${i}, got ${String(step[i])}`);
      counts[i]! += users[i] as number;
    }
  });
  return counts;
}

export function mergeFunnelTask(spec: FunnelSpec, partials: Uint8Array[]): FunnelAnswer {
  return finishFunnel(spec, mergeFunnelCounts(spec, partials));
}

export default defineMerge('funnel', mergeFunnelTask);
