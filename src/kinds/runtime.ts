/**
 * The per-request runtime a kind runs with (KindRuntime), made from the engine's query services.
 * The router builds the services once and a runtime per request.
 */
import type { Logger } from 'pino';
import type { ShardHandle } from '../shards/shard-handle.js';
import type { CustomListResult } from '../shards/protocol.js';
import type { EnrichmentCatalog } from './enrichment-catalog.js';
import { fanOut, fanOutMany, queryShard, requireAllReady, takeCut, type VisibilityCut } from './fanout.js';
import { JsonText, type IngestionSummary, type KindRuntime } from './kind.js';
import type { RequestLimits } from './limits.js';
import type { MergePool } from './merge-pool.js';
import type { QueryStages } from './query-stages.js';
import { invalidField } from './request-error.js';
import { isTableColumn } from './schemas.js';

export interface QueryServices {
  readonly shards: readonly ShardHandle[];
  readonly mergePool: MergePool;
  readonly limits: RequestLimits;
  readonly catalog: EnrichmentCatalog;
  readonly logger: Logger;
  ingestion(): IngestionSummary;
}

const plugins = new WeakMap<readonly ShardHandle[], Promise<CustomListResult>>();

/** The plugin list, asked of shard 0 once per engine (plugins load once per process); a failed ask is not cached. */
function pluginList(svc: QueryServices): Promise<CustomListResult> {
  let p = plugins.get(svc.shards);
  if (!p) {
    const shard = svc.shards[0];
    if (!shard) return Promise.resolve({ plugins: [], errors: [] });
    requireAllReady([shard]);
    p = shard.customList(svc.limits.queryTimeoutMs);
    plugins.set(svc.shards, p);
    p.then(
      (list) => {
        for (const e of list.errors) svc.logger.warn({ module: e.module }, `custom plugin not loaded: ${e.message}`);
      },
      () => plugins.delete(svc.shards),
    );
  }
  return p;
}

/**
 * 400 for a `<table>.<column>` the enrichment catalog does not know. Right after a restart the
 * catalog is rebuilt from what the shards restored: an unknown column waits for that first.
 */
export async function checkDimensions(pairs: Array<[field: string, name: string]>, catalog: EnrichmentCatalog): Promise<void> {
  const unknown = () => pairs.find(([, name]) => isTableColumn(name) && !catalog.hasColumn(...(name.split('.') as [string, string])));
  if (!unknown()) return;
  await catalog.restored;
  const miss = unknown();
  if (miss) throw invalidField(miss[0], `unknown enrichment column ${JSON.stringify(miss[1])} (see GET /enrichment)`);
}

export function makeRuntime(svc: QueryServices, opts: { deadline: number; params: Record<string, string>; logger: Logger; stages?: QueryStages | null }): KindRuntime {
  const { deadline, stages } = opts;
  const merged = stages ? (ms: number) => stages.merged(ms) : undefined;
  // One visibility cut per request, taken at its first fan-out: a request's several fan-outs
  // (anomalies' two phases, an export's pages) all see the same events.
  let cut: VisibilityCut | null = null;
  const cutOnce = () => (cut ??= takeCut(svc.shards));
  return {
    limits: svc.limits,
    shardCount: svc.shards.length,
    params: opts.params,
    logger: opts.logger,
    deadline,
    fanOut: (plan, bodies) => fanOut(svc, plan, deadline, bodies, cutOnce(), stages),
    fanOutMany: (plans) => fanOutMany(svc, plans, deadline, cutOnce(), stages),
    queryShard: (shard, plan, at = deadline) => queryShard(svc, shard, plan, at, cutOnce(), stages),
    requireAllReady: () => requireAllReady(svc.shards),
    merge: (merge, spec, partials, at = deadline) => svc.mergePool.merge(merge, spec, partials, at, merged),
    mergeStream: (merge, spec, partials) => svc.mergePool.stream(merge, spec, partials, deadline, merged),
    mergeJson: async (merge, spec, partials, field) => new JsonText(await svc.mergePool.mergeToJson(merge, spec, partials, field, deadline, merged)),
    customPlugins: () => pluginList(svc),
    ingestion: () => svc.ingestion(),
  };
}
