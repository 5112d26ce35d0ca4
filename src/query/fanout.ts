/**
 * Sends one plan to every shard and collects the partials. Read-your-writes comes from the
 * shards: each drains its ring and hands everything to polars before running the plan, and the
 * plan is posted after every acknowledged ingest request has finished pushing.
 */
import type { EngineContext } from '../engine-context.js';
import type { QueryPlan } from './plan.js';
import { unavailable } from '../router/http-error.js';

/** A query needs every shard: 503 naming the first one that is down. */
function requireAllReady(ctx: EngineContext): void {
  const down = ctx.shards.find((s) => !s.isReady());
  if (down) throw unavailable(`shard ${down.shard} is not ready${down.failure() ? `: ${down.failure()!.message}` : ''}`);
}

/**
 * Several plans, one round trip per shard (query_many). Returns, per plan, one partial per shard;
 * each partial is copied into its own buffer so it can be transferred to the merge pool.
 */
export async function fanOutMany(ctx: EngineContext, plans: QueryPlan[]): Promise<Uint8Array[][]> {
  requireAllReady(ctx);
  const results = await Promise.all(ctx.shards.map((s) => s.queryMany(plans, ctx.config.queryTimeoutMs)));
  const perPlan: Uint8Array[][] = plans.map(() => []);
  for (const r of results) {
    let offset = 0;
    r.parts.forEach((len, i) => {
      perPlan[i]!.push(r.ipc.slice(offset, offset + len));
      offset += len;
    });
  }
  return perPlan;
}

export async function fanOut(ctx: EngineContext, plan: QueryPlan): Promise<Uint8Array[]> {
  requireAllReady(ctx);
  const results = await Promise.all(ctx.shards.map((s) => s.query(plan, ctx.config.queryTimeoutMs)));
  return results.map((r) => r.ipc);
}
