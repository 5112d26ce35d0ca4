/**
 * Where the dashboard's time went while the engine ingested: its `query stages` log lines
 * (debug level, src/kinds/query-stages.ts) of one time span, per request the slowest shard's
 * stages. `wait` is a shard's polars round trip minus the op inside it: the time the query waited
 * in polars' queue behind appends or a segment roll (one process runs one frame at a time), plus
 * the pipes. A request is counted as stalled when some shard waited longer than `stallMs`.
 */
import { readFileSync } from 'node:fs';
import type { ShardTiming } from '../../src/shards/protocol.js';
import { summarize, type Timing } from './timing.js';

function loadAverage(): number | null {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}

export interface DashboardStages {
  requests: number;
  /** the whole request as the engine timed it */
  ms: Timing;
  /** per request, the largest shard `op_ms` (the polars op: parse, run, Arrow encode) */
  op_ms: Timing;
  op_cpu_ms: Timing;
  /** per request, the largest shard wait (polars_ms − op_ms) */
  wait_ms: Timing;
  /** per request, the largest shard queue + hand-over (the ring's events logged, synced and acknowledged by polars before the query) */
  handover_ms: Timing;
  /** per request, the largest shard log sync inside the hand-over */
  sync_ms: Timing;
  merge_ms: Timing;
  /** requests where some shard waited more than `stall_ms` */
  stalled: number;
  stall_ms: number;
  /** among the slowest 5 % of requests: mean ms, mean largest op_ms, mean largest wait */
  slowest: { requests: number; ms: number; op_ms: number; wait_ms: number; handover_ms: number };
  /** segment rolls logged in the span: when (ms from the span's start, at its end), shard, rows, ms */
  rolls: Array<{ at_ms: number; shard: unknown; rows: unknown; ms: unknown }>;
  /** requests that waited more than `stall_ms` in some shard: when (ms from the span's start, at the answer), ms, op, wait, hand-over */
  stalls: Array<{ at_ms: number; ms: number; op_ms: number; wait_ms: number; handover_ms: number }>;
  /** /proc/loadavg's 1-minute load at the span's end (other processes on the box count too) */
  load_1m: number | null;
}

/** A shard's timing as a log line carries it (src/shards/protocol.ts), every field read as possibly absent. */
type ShardStage = Partial<ShardTiming>;

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

export function dashboardStages(lines: ReadonlyArray<Record<string, any>>, fromMs: number, toMs: number, stallMs = 100): DashboardStages {
  const inSpan = lines.filter((l) => typeof l.time === 'number' && l.time >= fromMs && l.time <= toMs);
  const rows = inSpan
    .filter((l) => l.msg === 'query stages' && l.kind === 'dashboard')
    .map((l) => {
      const shards: ShardStage[] = (l.fan_outs as Array<{ shards: ShardStage[] }>).flatMap((f) => f.shards);
      const max = (f: (s: ShardStage) => number) => Math.max(0, ...shards.map(f));
      return {
        at: Number(l.time) - fromMs,
        ms: Number(l.ms),
        op: max((s) => s.op_ms ?? 0),
        cpu: max((s) => s.op_cpu_ms ?? 0),
        wait: max((s) => (s.polars_ms ?? 0) - (s.op_ms ?? 0)),
        handover: max((s) => (s.handover_ms ?? 0) + (s.queued_ms ?? 0)),
        sync: max((s) => s.sync_ms ?? 0),
        merge: Number(l.merge_ms ?? 0),
      };
    });
  const byMs = [...rows].sort((a, b) => b.ms - a.ms);
  const slow = byMs.slice(0, Math.max(1, Math.ceil(rows.length * 0.05)));
  return {
    requests: rows.length,
    ms: summarize(rows.map((r) => r.ms)),
    op_ms: summarize(rows.map((r) => r.op)),
    op_cpu_ms: summarize(rows.map((r) => r.cpu)),
    wait_ms: summarize(rows.map((r) => r.wait)),
    handover_ms: summarize(rows.map((r) => r.handover)),
    sync_ms: summarize(rows.map((r) => r.sync)),
    merge_ms: summarize(rows.map((r) => r.merge)),
    stalled: rows.filter((r) => r.wait > stallMs).length,
    stall_ms: stallMs,
    slowest: {
      requests: rows.length ? slow.length : 0,
      ms: mean(slow.map((r) => r.ms)),
      op_ms: mean(slow.map((r) => r.op)),
      wait_ms: mean(slow.map((r) => r.wait)),
      handover_ms: mean(slow.map((r) => r.handover)),
    },
    rolls: inSpan.filter((l) => l.msg === 'segment rolled').map((l) => ({ at_ms: Number(l.time) - fromMs, shard: l.shard, rows: l.rows, ms: l.ms })),
    stalls: rows.filter((r) => r.wait > stallMs).map((r) => ({ at_ms: r.at, ms: r.ms, op_ms: r.op, wait_ms: r.wait, handover_ms: r.handover })),
    load_1m: loadAverage(),
  };
}
