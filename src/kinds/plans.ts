/**
 * What every plan a shard may be sent has in common: the JSON of a `query` frame (`header.plan`),
 * with snake_case keys because it crosses into Python, where `python/engine_polars/ops/<kind>.py`
 * parses and runs it. Each kind's full plan type lives in its own module (no union is kept: a
 * new kind adds no line here).
 */
import type { PlanFilter } from './schemas.js';

export type { PlanFilter };

export interface QueryPlan {
  readonly kind: string;
  readonly filter?: PlanFilter;
}
