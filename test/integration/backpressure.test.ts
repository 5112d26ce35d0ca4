/** A batch that does not fit in the rings is rejected whole with 503 and Retry-After. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';

let engine: RunningEngine;

beforeAll(async () => {
  // 4 KiB rings: a 200-event batch cannot fit; the flush interval is long so nothing drains early.
  engine = await startEngine({ shards: 2, ringBytes: 4096 });
});
afterAll(async () => {
  await engine?.stop();
});

describe('backpressure', () => {
  it('answers 503 with Retry-After for a batch larger than the rings, and stores none of it', async () => {
    const events = Array.from({ length: 200 }, (_, i) => ({ event_type: 'click', user_id: `user-${i}`, value: i, metadata: { i } }));
    const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.body.message).toMatch(/nothing of this request was stored/);

    const agg = await postJson(`${engine.queryUrl}/query/aggregate`, {});
    expect(agg.body.results[0].count).toBe(0);
    const metrics = (await (await fetch(`${engine.ingestUrl}/metrics/ingestion`)).json()) as any;
    expect(metrics.rejected_events).toBe(200);
    expect(metrics.total_events).toBe(0);
  });

  it('accepts a batch that fits afterwards, and stores exactly it', async () => {
    const events = Array.from({ length: 20 }, (_, i) => ({ event_type: 'click', user_id: `user-${i}`, value: 1 }));
    const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events });
    expect(res.status).toBe(202);
    const agg = await postJson(`${engine.queryUrl}/query/aggregate`, {});
    expect(agg.body.results[0]).toMatchObject({ count: 20, value_sum: 20 });
  });
});
