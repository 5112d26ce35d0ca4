/**
 * Sends plans to the shards and collects their partials. Before anything is sent the request is
 * checked whole: every shard ready (else 503), every shard able to admit a query (else 429, so a
 * query is never half-started), the plan within `maxPlanBytes`. Each shard gets the time left
 * until the request's deadline.
 *
 * Whole requests or nothing: every fan-out carries a visibility cut, each target ring's producer
 * `pushed` count read in one synchronous step (`takeCut`). Ingest pushes a request into all of its
 * rings in one synchronous call (src/router/ingest-writer.ts), so no request is half-counted in a
 * cut; each shard drains at least up to its cut and runs the plan over exactly the rows before it
 * (`rows_upto`, see shard-worker.ts), so an answer holds each ingest request whole or not at all.
 * Read-your-writes: the cut is taken after every acknowledged request finished pushing. All the
 * fan-outs of one query request (anomalies' two phases, an export's pages) share one cut, taken at
 * its first (src/kinds/runtime.ts).
 */
import type { ShardHandle } from '../shards/shard-handle.js';
import type { RequestLimits } from './limits.js';
import type { QueryPlan } from './plans.js';
import { timed, type QueryStages } from './query-stages.js';
import { overLimit, timedOut } from './request-error.js';

export interface FanOutTarget {
  readonly shards: readonly ShardHandle[];
  readonly limits: RequestLimits;
}

/** Per shard, the records pushed into its ring when the cut was taken. */
export type VisibilityCut = readonly number[];

/**
 * Reads every ring's `pushed` counter in one synchronous step. The main thread is the only
 * producer and pushes a whole request into every target ring without yielding, so the cut never
 * falls between two parts of one request.
 */
export function takeCut(shards: readonly ShardHandle[]): VisibilityCut {
  return shards.map((s) => s.ring.pushed());
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

export async function fanOut(
  t: FanOutTarget,
  plan: QueryPlan,
  deadline: number,
  bodies?: ReadonlyArray<Uint8Array | undefined>,
  cut: VisibilityCut = takeCut(t.shards),
  stages?: QueryStages | null,
): Promise<Uint8Array[]> {
  requireAllReady(t.shards);
  checkPlanBytes([plan], t.limits.maxPlanBytes);
  admitAll(t.shards);
  const timeoutMs = timeLeft(deadline, `the ${plan.kind} query`);
  const results = await timed(
    () => Promise.all(t.shards.map((s, i) => s.query(plan, { body: bodies?.[i], timeoutMs, cut: cut[i]! }))),
    stages ? (ms, rs) => stages.fanOut(plan.kind, ms, rs.map((r) => r.timing)) : undefined,
  );
  return results.map((r) => r.ipc);
}

/**
 * Several plans, one round trip per shard (query_many). Returns, per plan, one partial per shard;
 * each partial is copied into its own buffer so it can be transferred to the merge pool.
 */
export async function fanOutMany(t: FanOutTarget, plans: QueryPlan[], deadline: number, cut: VisibilityCut = takeCut(t.shards), stages?: QueryStages | null): Promise<Uint8Array[][]> {
  requireAllReady(t.shards);
  checkPlanBytes(plans, t.limits.maxPlanBytes);
  admitAll(t.shards);
  const kinds = plans.map((p) => p.kind).join('+');
  const timeoutMs = timeLeft(deadline, `the ${kinds} queries`);
  const results = await timed(
    () => Promise.all(t.shards.map((s, i) => s.queryMany(plans, timeoutMs, cut[i]!))),
    stages ? (ms, rs) => stages.fanOut(kinds, ms, rs.map((r) => r.timing)) : undefined,
  );
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

/**
 * One plan to one shard (the paged export asks shards one at a time, every page with the cut
 * taken at the export's start, so the pages of one export are one consistent snapshot).
 */
export async function queryShard(t: FanOutTarget, shard: number, plan: QueryPlan, deadline: number, cut: VisibilityCut = takeCut(t.shards), stages?: QueryStages | null): Promise<Uint8Array> {
  const s = t.shards[shard]!;
  requireAllReady([s]);
  checkPlanBytes([plan], t.limits.maxPlanBytes);
  admitAll([s]);
  const { ipc } = await timed(
    () => s.query(plan, { timeoutMs: timeLeft(deadline, `the ${plan.kind} query`), cut: cut[shard]! }),
    stages ? (ms, r) => stages.fanOut(`${plan.kind} (shard ${shard})`, ms, [r.timing]) : undefined,
  );
  return ipc;
}
