/**
 * GET /dashboard/metrics and GET /query/summary with cached partials (config `partialCache`,
 * python/engine_polars/partial_cache.py) on real processes: small segments (`segmentRows`) so
 * that rolls make segments whose partials are kept, answers checked against brute force over the
 * acknowledged events after every few batches, after a polars process is killed and respawned,
 * after a restart on the same data dir (recovery from segments and the log) and after a restart
 * with another shard count (re-partitioning); and the same answers with `partialCache: false`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { engineTracker, getJson, makeDataDir, postJson } from '../helpers/engine-harness.js';
import { closeTo, rng, type TestEvent } from '../helpers/random-events.js';
import { rankError } from '../helpers/rank-error.js';
import { recentWindowsBrute } from '../helpers/recent-windows.js';
import { shardStats, until, waitReady } from '../helpers/shard-probes.js';

const { start, stop, dirs, cleanup } = engineTracker();
afterEach(cleanup);

function makeBatch(r: () => number, n: number, now: number): TestEvent[] {
  const types = ['view', 'click', 'buy', 'share', 'login', 'search'];
  return Array.from({ length: n }, () => {
    const recent = r() < 0.5;
    return {
      // recent events stay clear of the 15-minute edge so the test's clock and the server's agree
      timestamp: recent ? now - Math.floor(r() * 13 * 60_000) : now - 3_600_000 - Math.floor(r() * 86_400_000),
      event_type: types[Math.floor(r() * r() * types.length)]!,
      user_id: `u${Math.floor(r() * r() * r() * 2000)}`,
      value: r() < 0.1 ? null : Math.round(r() * 10_000) / 100,
    };
  });
}

function quartileBound(q: number): number {
  return Math.max(0.006, (2 * 2 * Math.PI * Math.sqrt(q * (1 - q))) / 200);
}

/** The dashboard and the summary against brute force over `events`. */
async function expectExact(queryUrl: string, events: TestEvent[]): Promise<Record<string, any>> {
  const res = await getJson(`${queryUrl}/dashboard/metrics`);
  expect(res.status).toBe(200);
  const body = res.body;
  const s = body.summary;
  const values = events.flatMap((e) => (e.value === null || e.value === undefined ? [] : [e.value])).sort((a, b) => a - b);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
  expect(s).toMatchObject({
    count: events.length,
    rows_held: events.length,
    value_count: values.length,
    null_count: events.length - values.length,
    min: values[0],
    max: values[values.length - 1],
    distinct_users: new Set(events.map((e) => e.user_id)).size,
    distinct_event_types: new Set(events.map((e) => e.event_type)).size,
    first_timestamp: Math.min(...events.map((e) => e.timestamp)),
    last_timestamp: Math.max(...events.map((e) => e.timestamp)),
  });
  expect(closeTo(s.mean, mean), `mean ${s.mean} vs ${mean}`).toBe(true);
  expect(closeTo(s.stddev, Math.sqrt(variance)), `stddev ${s.stddev} vs ${Math.sqrt(variance)}`).toBe(true);
  for (const [k, q] of [['p25', 0.25], ['p50', 0.5], ['p75', 0.75]] as const) {
    expect(rankError(values, s[k], q), k).toBeLessThanOrEqual(quartileBound(q));
  }
  const top = (key: 'user_id' | 'event_type') => {
    const counts = new Map<string, number>();
    for (const e of events) counts.set(e[key], (counts.get(e[key]) ?? 0) + 1);
    return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 5);
  };
  expect(body.top_users.map((r: Record<string, unknown>) => [r.user_id, r.count])).toEqual(top('user_id'));
  expect(body.top_events.map((r: Record<string, unknown>) => [r.event_type, r.count])).toEqual(top('event_type'));
  const starts: number[] = body.recent_windows.window_starts;
  const brute = recentWindowsBrute(events, starts);
  const rows: Array<Record<string, any>> = body.recent_windows.rows;
  expect(new Map(rows.map((r) => [`${r.window_start}|${r.event_type}`, r.count]))).toEqual(new Map([...brute].map(([k, g]) => [k, g.count])));
  for (const r of rows) expect(closeTo(r.value_sum ?? 0, brute.get(`${r.window_start}|${r.event_type}`)!.sum), `${r.window_start} ${r.event_type} sum`).toBe(true);

  const summary = await getJson(`${queryUrl}/query/summary`);
  expect(summary.status).toBe(200);
  expect(summary.body.stats).toMatchObject({ count: events.length, distinct_users: s.distinct_users, min: s.min, max: s.max });
  return body;
}

async function ingest(url: string, events: TestEvent[]): Promise<void> {
  const res = await postJson(`${url}/ingest/batch`, { events });
  expect(res.status).toBe(202);
}

describe('dashboard with cached partials', () => {
  it('stays exact through appends, segment rolls, a polars respawn, a restart and a re-partitioning', async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const r = rng(7);
    const now = Date.now();
    const events: TestEvent[] = [];
    let e = await start({ shards: 2, segmentRows: 3000, dataDir });
    for (let i = 0; i < 12; i++) {
      const batch = makeBatch(r, 1500, now);
      await ingest(e.ingestUrl, batch);
      events.push(...batch);
      if (i % 3 === 2) await expectExact(e.queryUrl, events);
    }
    await until(async () => (await shardStats(e.queryUrl)).every((st) => st.segments >= 2), 'two segments per shard');
    const warm = await expectExact(e.queryUrl, events);
    expect((await shardStats(e.queryUrl)).map((st) => st.polars_partial_cache_bytes > 0)).toEqual([true, true]);

    // a polars process killed: respawned, loads the segments, replays the log, no cache at first
    const before = await shardStats(e.queryUrl);
    process.kill(before[1]!.polars_pid as number, 'SIGKILL');
    await until(async () => (await shardStats(e.queryUrl))[1]!.polars_pid !== before[1]!.polars_pid, 'a new polars process');
    await waitReady(e.queryUrl);
    await expectExact(e.queryUrl, events);
    const more = makeBatch(r, 2500, now);
    await ingest(e.ingestUrl, more);
    events.push(...more);
    await expectExact(e.queryUrl, events);

    // restart on the same data dir: segments loaded, the log after them replayed
    await stop(e);
    e = await start({ shards: 2, segmentRows: 3000, dataDir });
    await expectExact(e.queryUrl, events);

    // the same answers without the cache (quartiles aside: one digest per shard there)
    await stop(e);
    e = await start({ shards: 2, segmentRows: 3000, dataDir, partialCache: false });
    const cold = await expectExact(e.queryUrl, events);
    expect((await shardStats(e.queryUrl)).map((st) => st.polars_partial_cache_bytes)).toEqual([0, 0]);
    const { p25: _a, p50: _b, p75: _c, mean, stddev, columns: _d, ...exactCold } = cold.summary;
    const { p25: _e, p50: _f, p75: _g, mean: warmMean, stddev: warmStd, columns: _h, ...exactWarm } = (await (async () => {
      await stop(e);
      e = await start({ shards: 2, segmentRows: 3000, dataDir });
      return expectExact(e.queryUrl, events);
    })()).summary;
    expect(exactWarm).toEqual(exactCold);
    expect(closeTo(warmMean, mean, 1e-12) && closeTo(warmStd, stddev, 1e-12)).toBe(true);
    expect(warm.top_users.length).toBe(5);

    // re-partitioned into 3 shards
    await stop(e);
    e = await start({ shards: 3, segmentRows: 3000, dataDir });
    await expectExact(e.queryUrl, events);
    const batch = makeBatch(r, 4000, now);
    await ingest(e.ingestUrl, batch);
    events.push(...batch);
    await expectExact(e.queryUrl, events);
  }, 180_000);
});
