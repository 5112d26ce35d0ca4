/**
 * Custom analytics: `POST /query/custom/:name` runs an operator-installed plugin
 * (python/engine_polars/custom/<name>.py) on every shard and merges the partials by the plugin's
 * declared rule (src/merge/custom.ts); `GET /query/custom` lists the plugins. The list comes from
 * the shards' polars processes (`custom_list`, cached per engine: plugins load once per process),
 * so an unknown name is a 404 before any fan-out. No code from the request is ever run: `params`
 * is plain JSON handed to the plugin's `run`.
 *
 * Request (`:name` matching [a-z_][a-z0-9_]{0,63}): `{params?: {...} (≤ customMaxParamsBytes
 * serialized), filter?}`. Answer: `{name, merge, results}`; the list: `{functions, errors}`.
 *
 * Partial: whatever the plugin's `run` returns, types normalised (ints Int64, floats Float64,
 * strings LargeUtf8, booleans, nulls).
 */
import customMerge from '../merge/custom.js';
import { z } from 'zod';
import type { CustomMergeRule } from '../merge/custom.js';
import { defineKind } from './kind.js';
import { BUILTIN, type RequestLimits } from './limits.js';
import { filterDimensionFields, filterSchema, type PlanFilter } from './schemas.js';
import { notFound } from './request-error.js';

export const CUSTOM_NAME = /^[a-z_][a-z0-9_]{0,63}$/;

export interface CustomPlan {
  kind: 'custom';
  name: string;
  params: Record<string, unknown>;
  filter: PlanFilter;
}

type CustomBody = Omit<CustomPlan, 'kind' | 'name'>;

function schema(limits: RequestLimits) {
  return z.strictObject({
    params: z
      .record(z.string(), z.unknown())
      .nullish()
      .transform((p) => p ?? {})
      .refine((p) => Buffer.byteLength(JSON.stringify(p)) <= BUILTIN.customMaxParamsBytes, {
        error: (iss) => `${Buffer.byteLength(JSON.stringify(iss.input))} bytes serialized; at most ${BUILTIN.customMaxParamsBytes}`,
      }),
    filter: filterSchema(limits),
  });
}

export type CustomInput = z.input<ReturnType<typeof schema>>;

export const customList = defineKind<Record<string, never>>({
  name: 'custom_list',
  method: 'GET',
  path: '/query/custom',
  input: 'query',
  summary: 'The installed custom analytics plugins',
  schema: () => z.strictObject({}),
  async run(_req, rt) {
    const list = await rt.customPlugins();
    return { functions: list.plugins, errors: list.errors };
  },
});

export const customRun = defineKind<CustomBody>({
  name: 'custom',
  method: 'POST',
  path: '/query/custom/:name',
  input: 'body',
  summary: 'Runs an installed custom plugin on every shard and merges by its declared rule',
  schema,
  dimensions: (b) => filterDimensionFields(b.filter),
  async run(body, rt) {
    const name = rt.params.name ?? '';
    if (!CUSTOM_NAME.test(name)) throw notFound('NOT_FOUND', `no custom function \`${name}\` (names match [a-z_][a-z0-9_]{0,63})`);
    const plugin = (await rt.customPlugins()).plugins.find((p) => p.name === name);
    if (!plugin) throw notFound('NOT_FOUND', `no custom function \`${name}\`; see GET /query/custom`);
    const merge = plugin.merge as unknown as CustomMergeRule;
    const plan: CustomPlan = { kind: 'custom', name, params: body.params, filter: body.filter };
    const partials = await rt.fanOut(plan);
    const { results } = await rt.merge(customMerge, { name, merge }, partials);
    return { name, merge, results };
  },
});
