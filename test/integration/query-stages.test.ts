/**
 * The per-request stage timings (src/kinds/query-stages.ts): at debug level every query request
 * logs one `query stages` line saying where its time went, with each shard's hand-over, polars
 * round trip and the op inside it; at info level nothing is logged or recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { makeEvents } from '../helpers/random-events.js';

let debug: RunningEngine;
let info: RunningEngine;

beforeAll(async () => {
  [debug, info] = await Promise.all([
    startEngine({ shards: 2, logLevel: 'debug' }, { captureLogs: true, captureLevel: 'debug' }),
    startEngine({ shards: 2 }, { captureLogs: true }),
  ]);
  const events = makeEvents(5_000, 7);
  for (const e of [debug, info]) expect((await postJson(`${e.ingestUrl}/ingest/batch`, { events })).status).toBe(202);
});

afterAll(async () => {
  await Promise.all([debug?.stop(), info?.stop()]);
});

const stageLines = (e: RunningEngine) => e.logs.filter((l) => l.msg === 'query stages');

describe('query stage timings', () => {
  it('logs, at debug level, one line per request with every fan-out and each shard\'s timings', async () => {
    const before = stageLines(debug).length;
    expect((await postJson(`${debug.queryUrl}/query/aggregate`, { groupBy: ['event_type'] })).status).toBe(200);
    expect((await getJson(`${debug.queryUrl}/query/summary`)).status).toBe(200);
    expect((await getJson(`${debug.queryUrl}/query/anomalies?threshold=1`)).status).toBe(200);
    const lines = stageLines(debug).slice(before);
    expect(lines.map((l) => [l.kind, l.status, l.fan_outs.map((f: { plans: string }) => f.plans)])).toEqual([
      ['aggregate', 200, ['aggregate']],
      ['summary', 200, ['summary+aggregate+percentiles']],
      ['anomalies', 200, ['aggregate', 'anomalies']],
    ]);
    for (const l of lines) {
      expect(l.ms).toBeGreaterThanOrEqual(l.read_ms + l.fan_outs.reduce((n: number, f: { ms: number }) => n + f.ms, 0) * 0.99);
      expect(l.merge_ms).toBeGreaterThan(0);
      for (const f of l.fan_outs) {
        expect(f.shards).toHaveLength(2);
        for (const s of f.shards) {
          expect(s.op_ms).toBeGreaterThan(0);
          // the op runs inside the polars round trip, which runs inside the fan-out
          expect(s.polars_ms).toBeGreaterThanOrEqual(s.op_ms);
          expect(s.handover_ms).toBeGreaterThanOrEqual(s.sync_ms);
          expect(s.op_cpu_ms).toBeGreaterThan(0);
          expect(f.ms).toBeGreaterThanOrEqual(s.queued_ms + s.handover_ms + s.polars_ms - 0.05);
        }
      }
    }
  });

  it('logs nothing of the kind at info level', async () => {
    expect((await postJson(`${info.queryUrl}/query/aggregate`, { groupBy: ['event_type'] })).status).toBe(200);
    expect(info.logs.length).toBeGreaterThan(0);
    expect(stageLines(info)).toEqual([]);
  });
});
