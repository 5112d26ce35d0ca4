/**
 * No request can hurt the engine: every hostile request of issue 6 against a real engine
 * (2 shards, 240,000 distinct users). Each answers its status code with a message naming the
 * field and the bound, and afterwards every shard's polars process is the same process (pid
 * unchanged) and the stored count is intact.
 *
 *   custom plugin params nested 1,500 deep                   → 400 (maxJsonDepth)
 *   aggregate with a 100,000-value filter.user_id list       → 400 (maxFilterValues)
 *   aggregate with 10,000 long user ids (1.3 MB of plan)     → 400 (maxPlanBytes)
 *   anomalies by user_id over 240,000 users                  → 200, groups sent as Arrow bodies
 *   window 1 s / 1 ms slide by user_id over 6,000 events      → 400 RESULT_TOO_LARGE (maxResultCells)
 *   aggregate by 5 keys                                      → 400 (maxGroupByKeys)
 *   aggregate by user_id × metadata key with a small bound   → 400 RESULT_TOO_LARGE
 *   answer over maxResponseBytes                             → 400 naming maxResponseBytes
 *   lone surrogates in a filter, impossible dates             → 400
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';

const USERS = 240_000;
const T0 = Date.UTC(2026, 0, 1);
let engine: RunningEngine;
let pids: number[] = [];
let stored = 0;

async function polarsPids(url: string): Promise<number[]> {
  const res = await getJson(`${url}/stats/shards`);
  return res.body.shards.map((s: { polars_pid: number }) => s.polars_pid);
}

async function count(url: string): Promise<number> {
  return (await postJson(`${url}/query/aggregate`, {})).body.results[0].count;
}

/** The engine is unhurt: same polars processes, same rows. */
async function expectUnhurt(): Promise<void> {
  expect(await polarsPids(engine.queryUrl)).toEqual(pids);
  expect(await count(engine.queryUrl)).toBe(stored);
}

function expectNamed(res: { status: number; body: any }, status: number, ...words: string[]): void {
  expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(status);
  for (const w of words) expect(JSON.stringify(res.body)).toContain(w);
}

beforeAll(async () => {
  engine = await startEngine({ shards: 2, maxResultCells: 1_000_000 });
  for (let start = 0; start < USERS; start += 10_000) {
    const events = Array.from({ length: 10_000 }, (_, k) => {
      const i = start + k;
      return { event_type: i % 3 === 0 ? 'click' : 'page_view', user_id: `user-${i}`, value: (i * 7919) % 1000, timestamp: T0 + i * 10, metadata: { page: `/p${i % 50}` } };
    });
    const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events });
    expect(res.status).toBe(202);
  }
  stored = await count(engine.queryUrl);
  expect(stored).toBe(USERS);
  pids = await polarsPids(engine.queryUrl);
}, 300_000);

afterAll(async () => {
  await engine?.stop();
});

describe('hostile query requests', () => {
  it('refuses custom params nested 1,500 deep before parsing them', async () => {
    let params: unknown = 1;
    for (let i = 0; i < 1500; i++) params = { a: params };
    const res = await postJson(`${engine.queryUrl}/query/custom/revenue_by_plan`, { params });
    expectNamed(res, 400, 'maxJsonDepth');
    await expectUnhurt();
  });

  it('refuses a 100,000-value user_id filter by maxFilterValues', async () => {
    const ids = Array.from({ length: 100_000 }, (_, i) => `user-${i}-${'x'.repeat(100)}`);
    const res = await postJson(`${engine.queryUrl}/query/aggregate`, { filter: { user_id: ids } });
    expectNamed(res, 400, 'filter.user_id', 'maxFilterValues');
    await expectUnhurt();
  });

  it('refuses a plan over maxPlanBytes, naming the filter', async () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => `${i}-${'y'.repeat(120)}`);
    const res = await postJson(`${engine.queryUrl}/query/aggregate`, { filter: { user_id: ids } });
    expectNamed(res, 400, 'filter', 'maxPlanBytes');
    await expectUnhurt();
  });

  it('answers anomalies by user_id over 240,000 users, each shard getting only its own groups', async () => {
    const res = await getJson(`${engine.queryUrl}/query/anomalies?groupBy=user_id&threshold=3&limit=10`);
    expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(200);
    // One event per user: no user has two values, so no z-score exists and nothing is anomalous.
    expect(res.body.count).toBe(0);
    expect(res.body.groups).toHaveLength(USERS);
    await expectUnhurt();
  });

  it('refuses 1 ms hopping panes by user_id by the estimated result cells', async () => {
    // 6,000 events (one user each) in one minute: 61,000 windows × 6,000 users, 6,000,000 cells.
    const filter = { from: T0, to: T0 + 60_000 };
    const res = await postJson(`${engine.queryUrl}/query/window`, { windowSize: '1s', slide: '1ms', groupBy: 'user_id', filter });
    expectNamed(res, 400, 'RESULT_TOO_LARGE', 'maxResultCells', 'windowSize');
    await expectUnhurt();
  });

  it('refuses more groupBy keys than maxGroupByKeys', async () => {
    const res = await postJson(`${engine.queryUrl}/query/aggregate`, { groupBy: ['event_type', 'user_id', 'metadata.a', 'metadata.b', 'metadata.c'] });
    expectNamed(res, 400, 'groupBy', 'maxGroupByKeys');
    await expectUnhurt();
  });

  it('refuses an answer over maxResponseBytes', async () => {
    const small = await startEngine({ shards: 2, maxResponseBytes: 64 * 1024 });
    try {
      const events = Array.from({ length: 5000 }, (_, i) => ({ event_type: 'click', user_id: `u${i}`, value: i }));
      expect((await postJson(`${small.ingestUrl}/ingest/batch`, { events })).status).toBe(202);
      const res = await postJson(`${small.queryUrl}/query/aggregate`, { groupBy: ['user_id'] });
      expectNamed(res, 400, 'maxResponseBytes');
      // The same query within the bound still answers.
      const ok = await postJson(`${small.queryUrl}/query/aggregate`, { groupBy: ['user_id'], filter: { user_id: ['u1', 'u2'] } });
      expect(ok.status).toBe(200);
      expect(ok.body.results.map((r: { user_id: string }) => r.user_id)).toEqual(['u1', 'u2']);
    } finally {
      await small.stop();
    }
  });

  it('refuses a group-by whose estimated cells exceed maxResultCells, before grouping', async () => {
    const small = await startEngine({ shards: 2, maxResultCells: 1000 });
    try {
      const events = Array.from({ length: 5000 }, (_, i) => ({ event_type: 'click', user_id: `u${i}`, value: i, metadata: { page: `/p${i % 7}` } }));
      expect((await postJson(`${small.ingestUrl}/ingest/batch`, { events })).status).toBe(202);
      const res = await postJson(`${small.queryUrl}/query/aggregate`, { groupBy: ['user_id', 'metadata.page'] });
      expectNamed(res, 400, 'RESULT_TOO_LARGE', 'maxResultCells');
      const fine = await postJson(`${small.queryUrl}/query/aggregate`, { groupBy: ['metadata.page'] });
      expect(fine.status).toBe(200);
      expect(fine.body.results).toHaveLength(7);
    } finally {
      await small.stop();
    }
  });

  it('refuses lone surrogates and impossible dates in filters', async () => {
    expectNamed(await postJson(`${engine.queryUrl}/query/aggregate`, { filter: { user_id: ['a\ud800'] } }), 400, 'filter.user_id[0]');
    expectNamed(await postJson(`${engine.queryUrl}/query/top-n`, { groupBy: 'user_id', filter: { event_type: 'x\udc00' } }), 400, 'filter.event_type');
    expectNamed(await postJson(`${engine.queryUrl}/query/aggregate`, { filter: { from: '2026-02-31' } }), 400, 'filter.from');
    await expectUnhurt();
  });
});
