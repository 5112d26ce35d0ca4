/**
 * Custom analytics: POST /query/custom/:name runs an operator-installed plugin on every shard and
 * merges the partials by the plugin's declared rule; GET /query/custom lists the plugins. The
 * plugin list comes from the shards' polars processes (`custom_list`, asked once per engine and
 * cached: plugins are loaded once per process), so an unknown name is a 404 before fan-out.
 */
import type { Context, Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';
import type { CustomMergeRule } from '../../merge/custom.js';
import { isCustomName, parseCustomRequest } from '../../query/custom-request.js';
import { fanOut } from '../../query/fanout.js';
import type { CustomListResult, CustomPluginInfo } from '../../shards/protocol.js';
import { ShardError } from '../../shards/shard-errors.js';
import { HttpError, notFound, unavailable } from '../http-error.js';
import { readJsonBody } from '../read-body.js';

const plugins = new WeakMap<EngineContext, Promise<CustomListResult>>();

function pluginList(ctx: EngineContext): Promise<CustomListResult> {
  let p = plugins.get(ctx);
  if (!p) {
    const shard = ctx.shards[0];
    if (!shard || !shard.isReady()) return Promise.reject(unavailable('shard 0 is not ready'));
    p = shard.customList(ctx.config.queryTimeoutMs);
    plugins.set(ctx, p);
    // A failed ask is not cached: the next request asks again.
    p.then(
      (list) => {
        for (const e of list.errors) ctx.logger.warn({ module: e.module }, `custom plugin not loaded: ${e.message}`);
      },
      () => plugins.delete(ctx),
    );
  }
  return p;
}

/** Plugin errors keep their stable code: bad params → 400, a failing or malformed plugin → 500. */
function pluginError(err: unknown): unknown {
  if (!(err instanceof ShardError)) return err;
  const message = err.message.replace(/^shard \d+: [A-Z_]+: /, '');
  if (err.code === 'CUSTOM_BAD_PARAMS') return new HttpError(400, err.code, message);
  if (err.code === 'CUSTOM_FAILED' || err.code === 'CUSTOM_BAD_RESULT') return new HttpError(500, err.code, message);
  return err;
}

export function registerCustomRoutes(app: Hono, ctx: EngineContext): void {
  app.get('/query/custom', async (c: Context) => {
    const started = performance.now();
    const list = await pluginList(ctx);
    return c.json({ functions: list.plugins, errors: list.errors, query_time_ms: performance.now() - started, timestamp: new Date().toISOString() });
  });

  app.post('/query/custom/:name', async (c: Context) => {
    const started = performance.now();
    const name = c.req.param('name')!;
    if (!isCustomName(name)) throw notFound(`no custom function \`${name}\` (names match [a-z_][a-z0-9_]{0,63})`);
    const body = await readJsonBody(c, ctx.config.maxBodyBytes);
    const plugin: CustomPluginInfo | undefined = (await pluginList(ctx)).plugins.find((p) => p.name === name);
    if (!plugin) throw notFound(`no custom function \`${name}\`; see GET /query/custom`);
    const plan = parseCustomRequest(name, body, ctx.enrichment);
    const merge = plugin.merge as unknown as CustomMergeRule;
    let partials: Uint8Array[];
    try {
      partials = await fanOut(ctx, plan);
    } catch (err) {
      throw pluginError(err);
    }
    const { results } = await ctx.mergePool.merge({ kind: 'custom', spec: { name, merge }, partials });
    return c.json({ name, merge, results, query_time_ms: performance.now() - started, timestamp: new Date().toISOString() });
  });
}
