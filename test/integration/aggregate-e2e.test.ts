/**
 * Acceptance: the real engine (3 shards, real rings, workers and polars processes) ingests
 * 100,000+ random events through all three ingest endpoints; aggregates equal brute force.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { expectBruteAggregate, type AggregateFilter } from '../helpers/expect-aggregate.js';
import { makeEvents, type TestEvent } from '../helpers/random-events.js';

const N_BATCH = 70_000;
const N_NDJSON = 30_000;
const N_SINGLE = 1_500;
const events = makeEvents(N_BATCH + N_NDJSON + N_SINGLE, 7);
let engine: RunningEngine;

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function compare(results: Array<Record<string, any>>, groupBy: Array<'event_type' | 'user_id'>, filter: AggregateFilter = {}): void {
  expectBruteAggregate(results, events, groupBy, filter);
}

beforeAll(async () => {
  engine = await startEngine({ shards: 3 });
  const batches: TestEvent[][] = [];
  for (let i = 0; i < N_BATCH; i += 1000) batches.push(events.slice(i, Math.min(i + 1000, N_BATCH)));
  await pool(batches, 4, async (batch) => {
    const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events: batch });
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(batch.length);
  });
  const ndjson: string[] = [];
  for (let i = N_BATCH; i < N_BATCH + N_NDJSON; i += 2500) {
    ndjson.push(events.slice(i, Math.min(i + 2500, N_BATCH + N_NDJSON)).map((e) => JSON.stringify(e)).join('\n') + '\n');
  }
  await pool(ndjson, 4, async (body) => {
    const res = await postJson(`${engine.ingestUrl}/ingest/ndjson`, body, 'application/x-ndjson');
    expect(res.status).toBe(202);
  });
  await pool(events.slice(N_BATCH + N_NDJSON), 16, async (e) => {
    // Half of the singles send the timestamp as ISO-8601.
    const body = e.timestamp % 2 ? { ...e, timestamp: new Date(e.timestamp).toISOString() } : e;
    const res = await postJson(`${engine.ingestUrl}/ingest`, body);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted: 1 });
  });
});

afterAll(async () => {
  await engine?.stop();
});

describe('aggregates over 100k events on 3 shards', () => {
  it('counts every acknowledged event exactly once (no groupBy)', async () => {
    const res = await postJson(`${engine.queryUrl}/query/aggregate`, { groupBy: [], metrics: ['value'] });
    expect(res.status).toBe(200);
    expect(res.body.results).toHaveLength(1);
    expect(res.body.results[0].count).toBe(events.length);
    expect(typeof res.body.query_time_ms).toBe('number');
    compare(res.body.results, []);
  });

  it('matches brute force grouped by event_type', async () => {
    const res = await postJson(`${engine.queryUrl}/query/aggregate`, { groupBy: ['event_type'], metrics: ['value'] });
    compare(res.body.results, ['event_type']);
  });

  it('matches brute force grouped by user_id', async () => {
    const res = await postJson(`${engine.queryUrl}/query/aggregate`, { groupBy: ['user_id'], metrics: ['value'] });
    compare(res.body.results, ['user_id']);
  });

  it('matches brute force with a time and event_type filter, grouped by both keys', async () => {
    const from = Date.UTC(2026, 0, 1, 6);
    const to = Date.UTC(2026, 0, 1, 13, 30);
    const filter = { from, to: new Date(to).toISOString(), event_type: ['click', 'purchase'] };
    const res = await postJson(`${engine.queryUrl}/query/aggregate`, { groupBy: ['event_type', 'user_id'], metrics: ['value'], filter });
    expect(res.status).toBe(200);
    compare(res.body.results, ['event_type', 'user_id'], { from, to, event_type: ['click', 'purchase'] });
  });

  it('spreads users over all three shards and reports them in /stats/shards', async () => {
    const res = await fetch(`${engine.queryUrl}/stats/shards`);
    const body = (await res.json()) as { shards: Array<{ rows_held: number; events_received: number; polars_pid: number; polars_rss_bytes: number }> };
    expect(body.shards).toHaveLength(3);
    expect(body.shards.reduce((n, s) => n + s.rows_held, 0)).toBe(events.length);
    for (const s of body.shards) {
      expect(s.rows_held).toBeGreaterThan(events.length / 10);
      expect(s.events_received).toBe(s.rows_held);
      expect(s.polars_pid).toBeGreaterThan(0);
      expect(s.polars_rss_bytes).toBeGreaterThan(0);
    }
  });

  it('counts accepted events in /metrics/ingestion', async () => {
    const res = await fetch(`${engine.ingestUrl}/metrics/ingestion`);
    const m = (await res.json()) as Record<string, any>;
    expect(m.total_events).toBe(events.length);
    expect(m.rejected_events).toBe(0);
    expect(m.latency.p95_ms).toBeGreaterThan(0);
  });
});
