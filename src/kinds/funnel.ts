/**
 * POST /query/funnel: conversion funnels, computed per user on each shard (users live on one
 * shard) and merged by adding the per-step counts (src/merge/funnel.ts); exact.
 *
 * Request: `{steps: [...]` (funnelMinSteps..funnelMaxSteps event types; the seed's
 * `eventSequence` is accepted as an alias, not both), `window?: "1h"` (ordered mode: every step
 * within this long after the step-1 event), `mode?: "ordered" | "unordered"`, `filter?}`.
 * Semantics: python/engine_polars/ops/funnel.py and docs/api/funnel.md.
 *
 * Answer: src/merge/funnel.ts `FunnelAnswer` (per step users, conversion, and the seed's
 * `funnel` with `count` and `percentage`), plus `window_ms` and `mode`.
 *
 * Partial (one row per step, in step order, also on an empty shard): `step` Int64 (1-based),
 * `users` Int64 (users of the shard whose level is ≥ step).
 */
import funnelMerge from '../merge/funnel.js';
import { z } from 'zod';
import { defineKind } from './kind.js';
import { BUILTIN, type RequestLimits } from './limits.js';
import { duration, filterDimensionFields, filterSchema, text, type PlanFilter } from './schemas.js';

export const FUNNEL_MODES = ['ordered', 'unordered'] as const;
export type FunnelMode = (typeof FUNNEL_MODES)[number];
const MAX_STEP_CHARS = 256;

export interface FunnelPlan {
  kind: 'funnel';
  filter: PlanFilter;
  steps: string[];
  mode: FunnelMode;
  /** Ordered mode only: every step within this many ms of the step-1 event; null for none. */
  window_ms: number | null;
}

const stepList = z.array(text(1, MAX_STEP_CHARS)).min(BUILTIN.funnelMinSteps).max(BUILTIN.funnelMaxSteps);

function schema(limits: RequestLimits) {
  return z
    .strictObject({
      steps: stepList.nullish(),
      eventSequence: stepList.nullish(),
      window: duration.nullish(),
      mode: z.enum(FUNNEL_MODES).nullish(),
      filter: filterSchema(limits),
    })
    .transform((b, ctx): FunnelPlan => {
      if (b.steps != null && b.eventSequence != null) {
        ctx.addIssue({ code: 'custom', path: ['eventSequence'], message: 'the same field as `steps`; give one of them' });
      }
      const steps = b.steps ?? b.eventSequence;
      if (steps == null) {
        ctx.addIssue({ code: 'custom', path: ['steps'], message: `required: a list of ${BUILTIN.funnelMinSteps}..${BUILTIN.funnelMaxSteps} event types (\`eventSequence\` is accepted too)` });
      }
      const mode = b.mode ?? 'ordered';
      if (b.window != null && mode === 'unordered') {
        ctx.addIssue({ code: 'custom', path: ['window'], message: 'applies to the ordered mode only (an unordered funnel has no step-1 event to measure from)' });
      }
      return { kind: 'funnel', filter: b.filter, steps: steps ?? [], mode, window_ms: b.window ?? null };
    });
}

export type FunnelInput = z.input<ReturnType<typeof schema>>;

export default defineKind<FunnelPlan>({
  name: 'funnel',
  method: 'POST',
  path: '/query/funnel',
  input: 'body',
  summary: 'Ordered (optionally windowed) or unordered conversion funnels over users',
  schema,
  dimensions: (plan) => filterDimensionFields(plan.filter),
  async run(plan, rt) {
    const partials = await rt.fanOut(plan);
    const answer = await rt.merge(funnelMerge, { steps: plan.steps }, partials);
    return { ...answer, window_ms: plan.window_ms, mode: plan.mode };
  },
});
