/**
 * `maxFutureSkew` (issue 7, item 6): an event whose timestamp is more than that far ahead of the
 * receive time is rejected with a 400 naming its index and `timestamp`; the whole request is
 * rejected and nothing of it is stored. Real engine, real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';

const DAY = 86_400_000;

async function count(e: RunningEngine): Promise<number> {
  const res = await postJson(`${e.queryUrl}/query/aggregate`, {});
  expect(res.status).toBe(200);
  return res.body.results[0]?.count ?? 0;
}

describe('maxFutureSkew', () => {
  let e: RunningEngine;
  beforeAll(async () => {
    e = await startEngine({ shards: 2, maxFutureSkew: DAY });
  });
  afterAll(async () => {
    await e?.stop();
  });

  it('rejects a batch with one event too far ahead (400 naming the index and `timestamp`), storing none of it', async () => {
    const now = Date.now();
    const events = [
      { event_type: 'view', user_id: 'a', timestamp: now - DAY },
      { event_type: 'view', user_id: 'b' },
      { event_type: 'view', user_id: 'c', timestamp: new Date(now + 3 * DAY).toISOString() },
      { event_type: 'view', user_id: 'd', timestamp: now + 60_000 },
    ];
    const res = await postJson(`${e.ingestUrl}/ingest/batch`, { events });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ index: 2, field: 'timestamp', reason: expect.stringMatching(/ahead of the receive time .*at most maxFutureSkew \(1d\) ahead/) }]);
    const ndjson = events.map((ev) => JSON.stringify(ev)).join('\n');
    expect((await postJson(`${e.ingestUrl}/ingest/ndjson`, ndjson, 'application/x-ndjson')).status).toBe(400);
    const single = await postJson(`${e.ingestUrl}/ingest`, events[2]);
    expect(single.status).toBe(400);
    expect(single.body.errors).toEqual([{ field: 'timestamp', reason: expect.stringMatching(/maxFutureSkew/) }]);
    expect(await count(e)).toBe(0);

    // the same batch without the far-future event is taken whole
    const ok = await postJson(`${e.ingestUrl}/ingest/batch`, { events: events.filter((_, i) => i !== 2) });
    expect(ok.status).toBe(202);
    expect(await count(e)).toBe(3);
  });

  it('reads durations ("1d", "90m", ms) and "none"; a bad value fails naming the key', () => {
    const load = (value: unknown) => loadConfig({ env: {}, argv: [], overrides: { maxFutureSkew: value } }).maxFutureSkew;
    expect(load('1d')).toBe(DAY);
    expect(load('90m')).toBe(90 * 60_000);
    expect(load(5000)).toBe(5000);
    expect(load(null)).toBeNull();
    expect(load('none')).toBeNull();
    expect(loadConfig({ env: {}, argv: [] }).maxFutureSkew).toBeNull();
    expect(loadConfig({ env: { ENGINE_MAX_FUTURE_SKEW: '12h' }, argv: [] }).maxFutureSkew).toBe(12 * 3_600_000);
    expect(loadConfig({ env: {}, argv: ['--max-future-skew', '2d'] }).maxFutureSkew).toBe(2 * DAY);
    expect(() => load('soon')).toThrow(/`maxFutureSkew`/);
  });
});
