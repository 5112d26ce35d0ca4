/**
 * GET /dashboard/metrics on the real engine: every part checked against brute force over the
 * acknowledged events (recent ones inside the last 15 minutes, older ones outside).
 * Bad input: the route takes no parameters; an unknown one is a 400 naming it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { closeTo, rng, type TestEvent } from '../helpers/random-events.js';
import { recentWindowsBrute } from '../helpers/recent-windows.js';

let engine: RunningEngine;
const events: TestEvent[] = [];
let now = 0;

beforeAll(async () => {
  engine = await startEngine({ shards: 3 });
  const r = rng(99);
  now = Date.now();
  const types = ['view', 'click', 'buy', 'share', 'login', 'logout', 'search'];
  for (let i = 0; i < 20_000; i++) {
    const recent = r() < 0.7;
    events.push({
      // Recent events stay clear of the 15-minute edge so the test's clock and the server's agree.
      timestamp: recent ? now - Math.floor(r() * 13 * 60_000) : now - 3_600_000 - Math.floor(r() * 86_400_000),
      event_type: types[Math.floor(r() * r() * types.length)]!,
      user_id: `u${Math.floor(r() * r() * 3000)}`,
      value: r() < 0.1 ? null : Math.round(r() * 10_000) / 100,
    });
  }
  for (let i = 0; i < events.length; i += 5000) {
    const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events: events.slice(i, i + 5000) });
    expect(res.status).toBe(202);
  }
});
afterAll(async () => {
  await engine?.stop();
});

function topByCount(key: 'user_id' | 'event_type', n: number): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const e of events) counts.set(e[key], (counts.get(e[key]) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, n);
}

describe('GET /dashboard/metrics', () => {
  it('answers summary, top users, top event types, recent windows and ingestion in one response', async () => {
    const res = await getJson(`${engine.queryUrl}/dashboard/metrics`);
    expect(res.status).toBe(200);
    const body = res.body;
    expect(body.summary.count).toBe(events.length);
    expect(body.summary.distinct_users).toBe(new Set(events.map((e) => e.user_id)).size);
    expect(body.ingestion.total_events).toBe(events.length);
    expect(typeof body.query_time_ms).toBe('number');

    const users = topByCount('user_id', 5);
    expect(body.top_users.map((r: Record<string, unknown>) => [r.user_id, r.count])).toEqual(users);
    const types = topByCount('event_type', 5);
    expect(body.top_events.map((r: Record<string, unknown>) => [r.event_type, r.count])).toEqual(types);

    const starts: number[] = body.recent_windows.window_starts;
    expect(starts).toHaveLength(15);
    const brute = recentWindowsBrute(events, starts);
    const rows: Array<Record<string, any>> = body.recent_windows.rows;
    expect(rows.length).toBe(brute.size);
    for (const row of rows) {
      const want = brute.get(`${row.window_start}|${row.event_type}`);
      expect(want, `${row.window_start} ${row.event_type}`).toBeDefined();
      expect(row.count).toBe(want!.count);
      expect(closeTo(row.value_sum ?? 0, want!.sum)).toBe(true);
    }
  });

  it('answers with zeros and empty lists, not an error, on an empty engine', async () => {
    const empty = await startEngine({ shards: 2 });
    try {
      const res = await getJson(`${empty.queryUrl}/dashboard/metrics`);
      expect(res.status).toBe(200);
      expect(res.body.summary.count).toBe(0);
      expect(res.body.top_users).toEqual([]);
      expect(res.body.top_events).toEqual([]);
      expect(res.body.recent_windows.rows).toEqual([]);
    } finally {
      await empty.stop();
    }
  });

  it('rejects an unknown query parameter with 400 naming it', async () => {
    const res = await getJson(`${engine.queryUrl}/dashboard/metrics?minutes=5`);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/minutes/);
  });
});
