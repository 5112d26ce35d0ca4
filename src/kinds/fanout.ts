/**
 * Sends plans to the shards and collects their partials. Before anything is sent the request is
 * checked whole: every shard ready (else 503), every shard able to admit a query (else 429, so a
 * query is never half-started), the plan within `maxPlanBytes`. Each shard gets the time left
 * until the request's deadline.
 *
 * Read-your-writes comes from the shards: each drains its ring and hands everything to polars
 * before running the plan, and the plan is posted after every acknowledged ingest request has
 * finished pushing.
 */
import type { ShardHandle } from '../shards/shard-handle.js';
import type { RequestLimits } from './limits.js';
import type { QueryPlan } from './plans.js';
import { overLimit, timedOut } from './request-error.js';

export interface FanOutTarget {
  readonly shards: readonly ShardHandle[];
  readonly limits: RequestLimits;
}

/** 503 naming the first shard that is not ready (SHARD_RESTORING while it replays its log). */
export function requireAllReady(shards: readonly ShardHandle[]): void {
  for (const s of shards) {
    const notReady = s.readiness();
    if (notReady) throw notReady;
  }
}

/** 429 (counted in the shard's stats) when any shard runs and queues as many queries as it may. */
function admitAll(shards: readonly ShardHandle[]): void {
  const busy = shards.find((s) => !s.canAdmit());
  if (busy) throw busy.busyError();
}

/** The plan's JSON size, bounded by `maxPlanBytes`; names the filter when it is what is large. */
export function checkPlanBytes(plans: QueryPlan[], maxPlanBytes: number): void {
  const bytes = Buffer.byteLength(JSON.stringify(plans.length === 1 ? plans[0] : plans), 'utf8');
  if (bytes <= maxPlanBytes) return;
  const filterBytes = Math.max(...plans.map((p) => (p.filter ? Buffer.byteLength(JSON.stringify(p.filter), 'utf8') : 0)));
  const field = filterBytes * 2 > bytes ? 'filter' : '(request)';
  throw overLimit(field, `the query plan sent to each shard is ${bytes} bytes`, 'maxPlanBytes', maxPlanBytes);
}

function timeLeft(deadline: number, what: string): number {
  const left = deadline - Date.now();
  if (left <= 0) throw timedOut(what);
  return left;
}

export async function fanOut(t: FanOutTarget, plan: QueryPlan, deadline: number, bodies?: ReadonlyArray<Uint8Array | undefined>): Promise<Uint8Array[]> {
  requireAllReady(t.shards);
  checkPlanBytes([plan], t.limits.maxPlanBytes);
  admitAll(t.shards);
  const timeoutMs = timeLeft(deadline, `the ${plan.kind} query`);
  const results = await Promise.all(t.shards.map((s, i) => s.query(plan, { body: bodies?.[i], timeoutMs })));
  return results.map((r) => r.ipc);
}

/**
 * Several plans, one round trip per shard (query_many). Returns, per plan, one partial per shard;
 * each partial is copied into its own buffer so it can be transferred to the merge pool.
 */
export async function fanOutMany(t: FanOutTarget, plans: QueryPlan[], deadline: number): Promise<Uint8Array[][]> {
  requireAllReady(t.shards);
  checkPlanBytes(plans, t.limits.maxPlanBytes);
  admitAll(t.shards);
  const timeoutMs = timeLeft(deadline, `the ${plans.map((p) => p.kind).join('+')} queries`);
  const results = await Promise.all(t.shards.map((s) => s.queryMany(plans, timeoutMs)));
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

/** One plan to one shard (the paged export asks shards one at a time). */
export async function queryShard(t: FanOutTarget, shard: number, plan: QueryPlan, deadline: number): Promise<Uint8Array> {
  const s = t.shards[shard]!;
  requireAllReady([s]);
  checkPlanBytes([plan], t.limits.maxPlanBytes);
  admitAll([s]);
  const { ipc } = await s.query(plan, { timeoutMs: timeLeft(deadline, `the ${plan.kind} query`) });
  return ipc;
}
