/**
 * POST /query/funnel body → `funnel` plan. `{steps: [...] (2..20 event types; the seed's
 * `eventSequence` is accepted as an alias, not both), window?: "1h", mode?: "ordered" |
 * "unordered", filter?}`. Semantics are documented in python/engine_polars/ops/funnel.py and
 * docs/api/funnel.md.
 *
 * Partial (one row per step, in step order, also on an empty shard): `step` Int64 (1-based),
 * `users` Int64 (users of the shard whose level is ≥ step). Users live on one shard, so the
 * merge is a per-step sum and the answer is exact.
 */
import { badRequest } from '../router/http-error.js';
import type { EnrichmentCatalog } from './dimensions.js';
import { parseFilter } from './filter.js';
import type { PlanFilter } from './plan.js';
import { durationField, enumField, requireFields } from './request-fields.js';

export const FUNNEL_MODES = ['ordered', 'unordered'] as const;
export type FunnelMode = (typeof FUNNEL_MODES)[number];
export const FUNNEL_MIN_STEPS = 2;
export const FUNNEL_MAX_STEPS = 20;
/** Longest `window`: a year. */
export const FUNNEL_MAX_WINDOW_MS = 366 * 86_400_000;
const MAX_TYPE_LENGTH = 256;
const FIELDS = ['steps', 'eventSequence', 'window', 'mode', 'filter'];

export interface FunnelPlan {
  kind: 'funnel';
  filter: PlanFilter;
  steps: string[];
  mode: FunnelMode;
  /** Ordered mode only: every step within this many ms of the step-1 event; null for none. */
  window_ms: number | null;
}

function stepList(raw: unknown, field: string): string[] {
  if (!Array.isArray(raw)) {
    throw badRequest(`\`${field}\`: expected a list of ${FUNNEL_MIN_STEPS}..${FUNNEL_MAX_STEPS} event types, got ${JSON.stringify(raw) ?? 'nothing'}`, [
      { field, reason: 'expected a list of event types' },
    ]);
  }
  if (raw.length < FUNNEL_MIN_STEPS || raw.length > FUNNEL_MAX_STEPS) {
    throw badRequest(`\`${field}\`: expected ${FUNNEL_MIN_STEPS}..${FUNNEL_MAX_STEPS} steps, got ${raw.length}`, [{ field, reason: `${raw.length} steps` }]);
  }
  raw.forEach((s, i) => {
    if (typeof s !== 'string' || s.length === 0 || s.length > MAX_TYPE_LENGTH) {
      throw badRequest(`\`${field}[${i}]\`: expected a non-empty event type (at most ${MAX_TYPE_LENGTH} characters), got ${JSON.stringify(s)}`, [
        { field: `${field}[${i}]`, reason: `got ${JSON.stringify(s)}` },
      ]);
    }
  });
  return raw as string[];
}

export function parseFunnelRequest(body: unknown, catalog?: EnrichmentCatalog): FunnelPlan {
  const obj = requireFields(body, FIELDS);
  const hasSteps = obj.steps !== undefined && obj.steps !== null;
  const hasAlias = obj.eventSequence !== undefined && obj.eventSequence !== null;
  if (hasSteps && hasAlias) {
    throw badRequest('`steps` and `eventSequence` are the same field; give one of them', [{ field: 'eventSequence', reason: 'given with steps' }]);
  }
  if (!hasSteps && !hasAlias) {
    throw badRequest(`\`steps\`: required (a list of ${FUNNEL_MIN_STEPS}..${FUNNEL_MAX_STEPS} event types; \`eventSequence\` is accepted too)`, [
      { field: 'steps', reason: 'required' },
    ]);
  }
  const steps = hasSteps ? stepList(obj.steps, 'steps') : stepList(obj.eventSequence, 'eventSequence');
  const mode = enumField(obj.mode, 'mode', FUNNEL_MODES, 'ordered');
  let windowMs: number | null = null;
  if (obj.window !== undefined && obj.window !== null) {
    if (mode === 'unordered') {
      throw badRequest('`window` applies to the ordered mode only (an unordered funnel has no step-1 event to measure from)', [
        { field: 'window', reason: 'not with mode unordered' },
      ]);
    }
    windowMs = durationField(obj.window, 'window', { maxMs: FUNNEL_MAX_WINDOW_MS });
  }
  return { kind: 'funnel', filter: parseFilter(obj.filter, 'filter', catalog), steps, mode, window_ms: windowMs };
}
