/**
 * Where one query request's time went, stage by stage: the query app logs it at debug level as
 * `query stages`, one line per request. Made only when debug is on (the runtime gets null and
 * records nothing otherwise); the shards' timings travel with every partial anyway (a few
 * numbers: protocol.ts ShardTiming).
 *
 * Stages: `read_ms` (body or query string read and validated), per fan-out the time from
 * dispatch to the last partial and each shard's ShardTiming (admission queue, hand-over of the
 * ring's events (the log's sync in it), polars round trip and the op inside it), `merge_ms` (every
 * merge added up: an inline merge's own run, a pooled merge's round trip, so pooled merges that run
 * at once overlap; a streamed merge's time to its length, the rest overlapping the send) and `serialize_ms` (the envelope).
 *
 * @example
 * {"msg":"query stages","kind":"aggregate","ms":21.4,"read_ms":0.3,"fan_outs":[{"plans":"aggregate",
 *  "ms":19.8,"shards":[{"queued_ms":0,"handover_ms":0.1,"sync_ms":0,"polars_ms":19.1,"op_ms":18.2,"op_cpu_ms":17.9}, …]}],
 *  "merge_ms":0.6,"serialize_ms":0.1}
 */
import type { ShardTiming } from '../shards/protocol.js';

export interface FanOutStage {
  /** the plan kinds, `+`-joined for a query_many */
  plans: string;
  ms: number;
  shards: ShardTiming[];
}

const round = (ms: number) => Math.round(ms * 100) / 100;

export class QueryStages {
  private readMs = 0;
  private readonly fanOuts: FanOutStage[] = [];
  private mergeMs = 0;
  private serializeMs = 0;

  read(ms: number): void {
    this.readMs += ms;
  }

  fanOut(plans: string, ms: number, shards: ReadonlyArray<ShardTiming | undefined>): void {
    const timings = shards.map((t) => (t ? (Object.fromEntries(Object.entries(t).map(([k, v]) => [k, round(v)])) as unknown as ShardTiming) : { handover_ms: 0, polars_ms: 0, op_ms: 0 }));
    this.fanOuts.push({ plans, ms: round(ms), shards: timings });
  }

  merged(ms: number): void {
    this.mergeMs += ms;
  }

  serialized(ms: number): void {
    this.serializeMs += ms;
  }

  /** The log line's fields. */
  fields(): Record<string, unknown> {
    return { read_ms: round(this.readMs), fan_outs: this.fanOuts, merge_ms: round(this.mergeMs), serialize_ms: round(this.serializeMs) };
  }
}

/** `work`'s result; its duration goes to `record` (when there is one). */
export async function timed<T>(work: () => Promise<T>, record: ((ms: number, result: T) => void) | undefined): Promise<T> {
  if (!record) return work();
  const started = performance.now();
  const result = await work();
  record(performance.now() - started, result);
  return result;
}
