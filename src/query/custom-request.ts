/**
 * POST /query/custom/:name body → `custom` plan: `{params?: {...}, filter?}`. The name picks an
 * operator-installed plugin module (python/engine_polars/custom/<name>.py); it must match
 * [a-z_][a-z0-9_]{0,63} (so it can only ever name a module in that folder) and is checked
 * against the plugins the shards discovered before any fan-out (unknown → 404). No code from the
 * request is ever evaluated: `params` is plain JSON handed to the plugin's `run`.
 *
 * Partial: whatever the plugin's `run` returns, types normalised (ints Int64, floats Float64,
 * strings Utf8, booleans, nulls); merged by its declared `MERGE` in src/merge/custom.ts.
 */
import { badRequest } from '../router/http-error.js';
import type { EnrichmentCatalog } from './dimensions.js';
import { parseFilter } from './filter.js';
import type { PlanFilter } from './plan.js';
import { requireFields } from './request-fields.js';

export const CUSTOM_NAME = /^[a-z_][a-z0-9_]{0,63}$/;
/** Serialized size limit of `params`. */
export const CUSTOM_MAX_PARAMS_BYTES = 64 * 1024;

export interface CustomPlan {
  kind: 'custom';
  name: string;
  params: Record<string, unknown>;
  filter: PlanFilter;
}

/** True when `name` is a well-formed plugin name (the route answers 404 otherwise). */
export function isCustomName(name: string): boolean {
  return CUSTOM_NAME.test(name);
}

export function parseCustomRequest(name: string, body: unknown, catalog?: EnrichmentCatalog): CustomPlan {
  const obj = requireFields(body, ['params', 'filter']);
  const params = obj.params ?? {};
  if (typeof params !== 'object' || Array.isArray(params)) {
    throw badRequest(`\`params\`: expected an object, got ${Array.isArray(params) ? 'array' : typeof params}`, [{ field: 'params', reason: 'not an object' }]);
  }
  const bytes = Buffer.byteLength(JSON.stringify(params));
  if (bytes > CUSTOM_MAX_PARAMS_BYTES) {
    throw badRequest(`\`params\`: ${bytes} bytes serialized; at most ${CUSTOM_MAX_PARAMS_BYTES}`, [{ field: 'params', reason: 'too large' }]);
  }
  return { kind: 'custom', name, params: params as Record<string, unknown>, filter: parseFilter(obj.filter, 'filter', catalog) };
}
