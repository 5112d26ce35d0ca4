/**
 * The JSON batch routes write column blocks (src/router/event-columns.ts): on a real engine
 * (worker shards, rings, polars processes, HTTP on 127.0.0.1), events posted to /ingest/batch
 * and /ingest/ndjson, with ISO and missing timestamps, null and absent values, non-ASCII strings
 * and metadata of several shapes, are stored exactly: aggregates by event type, user and a
 * metadata key equal a brute force over the events sent. A part larger than a ring is still a 503.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postBody, postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { bruteForceGroups as bruteForce, storedGroups as stored } from '../helpers/aggregate-groups.js';
import { shardStats, storedTotals, until } from '../helpers/shard-probes.js';
import { jsonDepthExceeded } from '../../src/router/json-depth.js';

const NOW = Date.now();

interface Sent {
  timestamp?: number | string;
  event_type: string;
  user_id: string;
  value?: number | null;
  metadata?: Record<string, unknown> | null;
}

function makeEvents(n: number, seed: number, offset: number): Sent[] {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const types = ['view', 'click', 'kauf ü', 'regarder 👀'];
  const plans = ['free', 'pro', 'prö', 'a"b\\c'];
  return Array.from({ length: n }, (_, i) => {
    const e: Sent = { event_type: types[Math.floor(rand() * types.length)]!, user_id: `u${Math.floor(rand() * rand() * 200)}${i % 7 === 0 ? 'é😀' : ''}` };
    const t = rand();
    if (t < 0.3) e.timestamp = new Date(NOW - Math.floor(rand() * 86_400_000)).toISOString();
    else if (t < 0.9) e.timestamp = NOW - Math.floor(rand() * 86_400_000);
    // value unique per event (sums tell events apart), some null, some absent
    if (i % 11 === 0) e.value = null;
    else if (i % 13 !== 0) e.value = offset + i;
    const m = rand();
    if (m < 0.2) e.metadata = null;
    else if (m < 0.6) e.metadata = { plan: plans[Math.floor(rand() * plans.length)] };
    else if (m < 0.8) e.metadata = { plan: plans[Math.floor(rand() * plans.length)], n: i, nested: { a: [1, 'x'] } };
    return e;
  });
}

const planOf = (e: Sent) => (e.metadata?.plan === undefined ? 'null' : String(e.metadata.plan));

describe('JSON batch routes as column blocks', () => {
  let e: RunningEngine;
  const sent: Sent[] = [];

  beforeAll(async () => {
    e = await startEngine({ shards: 3 });
  });
  afterAll(async () => {
    await e?.stop();
  });

  it('stores batches and NDJSON exactly: aggregates by event type, user and metadata.plan equal a brute force', async () => {
    for (let b = 0; b < 6; b++) {
      const events = makeEvents(700, 100 + b, b * 10_000);
      const res =
        b % 2 === 0
          ? await postJson(`${e.ingestUrl}/ingest/batch`, b % 4 === 0 ? { events } : events)
          : await postJson(`${e.ingestUrl}/ingest/ndjson`, events.map((x) => JSON.stringify(x)).join('\n') + '\n', 'application/x-ndjson');
      expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(202);
      expect(res.body.accepted).toBe(events.length);
      sent.push(...events);
    }
    expect(await stored(e.queryUrl, ['event_type'])).toEqual(bruteForce(sent, (x) => x.event_type));
    expect(await stored(e.queryUrl, ['user_id'])).toEqual(bruteForce(sent, (x) => x.user_id));
    expect(await stored(e.queryUrl, ['metadata.plan'])).toEqual(bruteForce(sent, planOf));
  });

  it('stores a timestamp as validation reads it: ISO strings and the receive time for a missing one', async () => {
    const at = Date.UTC(2026, 5, 1, 12, 30, 15, 250);
    const events = [
      { event_type: 'ts', user_id: 'iso', timestamp: '2026-06-01T14:30:15.250+02:00', value: 1 },
      { event_type: 'ts', user_id: 'ms', timestamp: at, value: 2 },
      { event_type: 'ts', user_id: 'missing', value: 4 },
    ];
    const before = Date.now();
    expect((await postJson(`${e.ingestUrl}/ingest/batch`, { events })).status).toBe(202);
    const exact = await postJson(`${e.queryUrl}/query/aggregate`, { filter: { from: at, to: at + 1, event_type: ['ts'] }, metrics: ['value'] });
    expect(exact.body.results[0]).toMatchObject({ count: 2, value_sum: 3 });
    const now = await postJson(`${e.queryUrl}/query/aggregate`, { filter: { from: before, to: Date.now() + 1, event_type: ['ts'] }, metrics: ['value'] });
    expect(now.body.results[0]).toMatchObject({ count: 1, value_sum: 4 });
  });
});

describe('depth of a batch parsed before it is scanned (batch-body.ts)', () => {
  let e: RunningEngine;
  beforeAll(async () => {
    e = await startEngine({ shards: 2 });
  });
  afterAll(async () => {
    await e?.stop();
  });

  const deep = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
  const event = '"event_type":"x","user_id":"u","value":1';

  it.each([
    ['metadata nested 200,000 deep', `{"events":[{${event}},{${event},"metadata":${deep(200_000)}}]}`],
    ['a deep value JSON.parse drops (a duplicate key)', `[{${event},"metadata":${deep(40)},"metadata":{}}]`],
  ])('%s → 400 naming the character, as the scan before parsing did, nothing stored', async (_name, body) => {
    const at = jsonDepthExceeded(body, 32);
    expect(at).toBeGreaterThan(0);
    const res = await postJson(`${e.ingestUrl}/ingest/batch`, body);
    expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(400);
    expect(res.body.message).toBe('body nests deeper than maxJsonDepth (32)');
    expect(res.body.errors[0].reason).toBe(`character ${at} opens nesting level 33; at most 32 levels of arrays/objects`);
    const count = await postJson(`${e.queryUrl}/query/aggregate`, {});
    expect(count.body.results[0]?.count ?? 0).toBe(0);
  });

  it('stores a batch whose strings hold brackets and whose metadata nests to the limit', async () => {
    // body, events, event: 29 levels left
    const md = deep(29);
    const res = await postJson(`${e.ingestUrl}/ingest/batch`, `{"events":[{${event},"metadata":{"q":"[{[{"}},{${event},"metadata":${md}}]}`);
    expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(202);
    const count = await postJson(`${e.queryUrl}/query/aggregate`, {});
    expect(count.body.results[0].count).toBe(2);
  });
});

describe('a JSON batch larger than a ring', () => {
  let e: RunningEngine;
  beforeAll(async () => {
    e = await startEngine({ shards: 1, ringBytes: 64 * 1024 });
  });
  afterAll(async () => {
    await e?.stop();
  });

  it('is refused whole with 503 (as before the column blocks), and nothing is stored', async () => {
    const events = makeEvents(3000, 9, 0);
    const res = await postJson(`${e.ingestUrl}/ingest/batch`, { events });
    expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(503);
    expect(res.body.message).toMatch(/ring is full .*nothing of this request was stored/);
    const count = await postJson(`${e.queryUrl}/query/aggregate`, {});
    expect(count.body.results[0]?.count ?? 0).toBe(0);
  });
});

describe('a JSON batch that finds its ring full', () => {
  it('waits for room and is stored once the shard drains again, on the scan path and the parse path (NDJSON)', async () => {
    const tiny = await startEngine({ shards: 1, ringBytes: 64 * 1024 });
    let pid = 0;
    try {
      // a stopped polars process acknowledges nothing: the shard stops draining at its in-flight
      // cap and the ring fills; a request that does not fit then waits (it used to get a 503 at once)
      pid = (await shardStats(tiny.ingestUrl))[0]!.polars_pid;
      process.kill(pid, 'SIGSTOP');
      const sent: Sent[] = [];
      const waiting: Array<{ req: Promise<{ status: number; body: any }>; events: Sent[] }> = [];
      for (let i = 0; i < 80 && waiting.length < 2; i++) {
        const events = makeEvents(300, 300 + i, (i + 1) * 1000);
        // once one waits, the next goes by the other route: both wait, in order
        const ndjson = waiting.length > 0 ? waiting.length === 1 : i % 2 === 1;
        const req = ndjson
          ? postBody(`${tiny.ingestUrl}/ingest/ndjson`, events.map((ev) => JSON.stringify(ev)).join('\n'), { 'content-type': 'application/x-ndjson' })
          : postJson(`${tiny.ingestUrl}/ingest/batch`, { events });
        const outcome = await Promise.race([req, new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
        if (outcome === null) waiting.push({ req, events });
        else {
          expect(outcome.status, JSON.stringify(outcome.body).slice(0, 300)).toBe(202);
          sent.push(...events);
        }
      }
      expect(waiting.length).toBe(2);
      process.kill(pid, 'SIGCONT');
      pid = 0;
      for (const w of waiting) {
        const res = await w.req;
        expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(202);
        sent.push(...w.events);
      }
      await until(async () => (await storedTotals(tiny.queryUrl)).count === sent.length, 'every accepted event stored');
      expect(await stored(tiny.queryUrl, ['user_id'])).toEqual(bruteForce(sent, (ev) => ev.user_id));
    } finally {
      if (pid) process.kill(pid, 'SIGCONT');
      await tiny.stop();
    }
  });
});
