/**
 * One shared data set for the query integration tests: the real engine with 4 shards and
 * 200,000 generated events with a skewed user distribution, ingested through /ingest/batch.
 * Each test file calls `startQueryFixture()` in beforeAll and `stop()` in afterAll; brute-force
 * answers are computed from `events` (the exact events the engine acknowledged).
 */
import { postJson, startEngine, type RunningEngine } from './engine-harness.js';
import { makeEvents, type TestEvent } from './random-events.js';

export const FIXTURE_EVENTS = 200_000;
export const FIXTURE_SHARDS = 4;

export interface QueryFixture {
  engine: RunningEngine;
  events: TestEvent[];
  queryUrl: string;
  ingestUrl: string;
  stop: () => Promise<void>;
}

export async function startQueryFixture(n = FIXTURE_EVENTS, seed = 20261128): Promise<QueryFixture> {
  const engine = await startEngine({ shards: FIXTURE_SHARDS });
  const events = makeEvents(n, seed, { users: 20_000, spanMs: 6 * 3_600_000 });
  const batches: TestEvent[][] = [];
  for (let i = 0; i < n; i += 5000) batches.push(events.slice(i, i + 5000));
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events: batch });
        if (res.status !== 202) throw new Error(`fixture ingest failed: ${res.status} ${JSON.stringify(res.body)}`);
      }
    }),
  );
  return { engine, events, queryUrl: engine.queryUrl, ingestUrl: engine.ingestUrl, stop: engine.stop };
}
