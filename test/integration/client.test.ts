/**
 * The typed client (src/client/) against real engines:
 * - batching: N tracked events arrive exactly once (count and sum), in ceil(N / batchSize) batches,
 *   each with its own Idempotency-Key; a partial batch goes out after flushIntervalMs by itself;
 * - retries: a 503 with Retry-After (rings full while polars is stopped) is retried after at least
 *   Retry-After, with the same Idempotency-Key, and the batch is then stored exactly once; a
 *   request that stays refused fails after maxRetries; a 400 is never retried;
 * - one typed method per query kind returns the engine's own answer (the same route asked
 *   without the client), and a bad query is a ShardlyticsError with the engine's field message;
 * - the package exports it as `shardlytics/client`.
 * Requests are observed by wrapping the real fetch (the engine itself is never replaced).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardlyticsClient, ShardlyticsError, type RetryInfo, type TrackEvent } from 'shardlytics/client';
import { getJson, postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { shardStats, storedTotals, until } from '../helpers/shard-probes.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Seen {
  method: string;
  url: string;
  headers: Headers;
  status: number;
}

/** The real fetch, recording each attempt's request headers and answer status. */
function recordingFetch(seen: Seen[]): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    seen.push({ method: init?.method ?? 'GET', url: String(input), headers: new Headers(init?.headers), status: res.status });
    return res;
  };
}

function clientFor(e: RunningEngine, extra: Partial<ConstructorParameters<typeof ShardlyticsClient>[0]> = {}) {
  return new ShardlyticsClient({ ingestUrl: e.ingestUrl, queryUrl: e.queryUrl, ...extra });
}

const T0 = Date.parse('2026-03-01T00:00:00Z');

describe('client ingest', () => {
  let engine: RunningEngine;
  beforeAll(async () => {
    engine = await startEngine({ shards: 2 });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('sends N tracked events in batches of batchSize, each with its own Idempotency-Key, and all arrive once', async () => {
    const seen: Seen[] = [];
    const client = clientFor(engine, { batchSize: 1000, flushIntervalMs: 60_000, fetch: recordingFetch(seen) });
    const N = 2500;
    let sum = 0;
    for (let i = 0; i < N; i++) {
      client.track({ event_type: ['view', 'click'][i % 2]!, user_id: `u${i % 97}`, value: i, timestamp: T0 + i });
      sum += i;
    }
    await client.flush();
    expect(client.stats).toEqual({ tracked: N, sent: N, batches: 3, failed: 0 });
    expect(seen.map((s) => [s.method, new URL(s.url).pathname, s.status])).toEqual(Array(3).fill(['POST', '/ingest/batch', 202]));
    const keys = seen.map((s) => s.headers.get('idempotency-key'));
    expect(keys.every((k) => UUID.test(k ?? ''))).toBe(true);
    expect(new Set(keys).size).toBe(3);
    expect(await storedTotals(engine.queryUrl)).toEqual({ count: N, sum });
    await client.close();
  });

  it('sends a partial batch by itself after flushIntervalMs', async () => {
    const before = await storedTotals(engine.queryUrl);
    const client = clientFor(engine, { batchSize: 10_000, flushIntervalMs: 50 });
    for (let i = 0; i < 7; i++) client.track({ event_type: 'tick', user_id: `t${i}`, value: 1 });
    // no flush(): the interval sends it
    await until(async () => (await storedTotals(engine.queryUrl)).count === before.count + 7, 'the interval flush', 30_000);
    expect(client.stats.batches).toBe(1);
    await client.close();
  });

  it('does not retry a 400, and reports the engine’s field error to flush() and onError', async () => {
    const seen: Seen[] = [];
    const failed: TrackEvent[][] = [];
    const client = clientFor(engine, { fetch: recordingFetch(seen), onError: (_err, events) => failed.push(events) });
    client.track({ event_type: 'ok', user_id: 'a', value: 1 });
    client.track({ event_type: 'bad', user_id: 'b', value: 'x' as unknown as number });
    const err = await client.flush().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ShardlyticsError);
    const e = err as ShardlyticsError;
    expect(e.status).toBe(400);
    expect(e.code).toBe('INVALID_EVENT');
    expect(e.attempts).toBe(1);
    expect(e.message).toMatch(/events\[1\]\.value/);
    expect(seen).toHaveLength(1);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toHaveLength(2);
    expect(client.stats).toMatchObject({ tracked: 2, sent: 0, failed: 2 });
    // the next flush starts clean
    await client.flush();
    await client.close();
    expect(() => client.track({ event_type: 'late', user_id: 'c' })).toThrow(/after close/);
  });

  it('sends the token as a bearer header', async () => {
    const seen: Seen[] = [];
    const client = clientFor(engine, { token: 'tok-123', fetch: recordingFetch(seen) });
    await client.sendBatch([{ event_type: 'auth', user_id: 'z' }]);
    await client.summary();
    expect(seen.map((s) => s.headers.get('authorization'))).toEqual(['Bearer tok-123', 'Bearer tok-123']);
  });
});

describe('client on an engine with tokens', () => {
  it('ingests and queries with a token of both scopes, and fails at once (401, no retry) with a wrong one', async () => {
    const token = 'client-ingest-and-query-0123';
    const guarded = await startEngine({ shards: 1, tokens: [{ token, scopes: ['ingest', 'query'] }] });
    try {
      const client = clientFor(guarded, { token });
      for (let i = 0; i < 30; i++) client.track({ event_type: 'secure', user_id: `s${i % 4}`, value: 1 });
      await client.close();
      expect((await client.summary()).stats.count).toBe(30);

      const seen: Seen[] = [];
      const wrong = clientFor(guarded, { token: 'not-the-right-token-000', fetch: recordingFetch(seen) });
      const err = (await wrong.sendBatch([{ event_type: 'x', user_id: 'y' }]).catch((e: unknown) => e)) as ShardlyticsError;
      expect(err).toBeInstanceOf(ShardlyticsError);
      expect(err.status).toBe(401);
      expect(seen).toHaveLength(1);
    } finally {
      await guarded.stop();
    }
  });
});

describe('client retries against a refusing engine', () => {
  let engine: RunningEngine;
  afterAll(async () => {
    await engine?.stop();
  });

  it('retries a 503 after Retry-After with the same Idempotency-Key, and the batch is stored once', async () => {
    // 256 KiB ring: with its polars process stopped, the shard stops draining and ingest answers 503.
    engine = await startEngine({ shards: 1, ringBytes: 256 * 1024, flushIntervalMs: 10, ringWaitMs: 300 });
    const pid = (await shardStats(engine.queryUrl))[0]!.polars_pid as number;
    process.kill(pid, 'SIGSTOP');
    let acked = 0;
    let ackedSum = 0;
    let resumed = false;
    try {
      // fill the ring with plain requests until the engine refuses one (the client's batch
      // below is twice as large, so it cannot fit either while polars stays stopped)
      const pad = { pad: 'x'.repeat(64) };
      const fill = async () => {
        for (let b = 0; ; b++) {
          const events = Array.from({ length: 1000 }, (_, i) => ({ event_type: 'fill', user_id: `f${i % 50}`, value: 1, metadata: pad }));
          const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events });
          if (res.status === 503) break;
          expect(res.status).toBe(202);
          acked += events.length;
          ackedSum += events.length;
          if (b > 10_000) throw new Error('the ring never filled');
        }
      };
      await fill();
      // A 503 can also come from a shard worker starved of CPU (a busy box) that drains on
      // afterwards: wait until it has taken all it can while polars is stopped (its in-flight cap),
      // then fill the ring again, so it stays full until polars goes on.
      for (let last = -1; ; ) {
        const taken = (await shardStats(engine.queryUrl))[0]!.events_received as number;
        if (taken === last) break;
        last = taken;
        await new Promise((r) => setTimeout(r, 1000));
      }
      await fill();

      const seen: Seen[] = [];
      const retries: RetryInfo[] = [];
      const client = clientFor(engine, {
        batchSize: 2000,
        maxRetries: 8,
        fetch: recordingFetch(seen),
        onRetry: (info) => {
          retries.push(info);
          if (!resumed) {
            // the engine said 503: let polars go on so a later attempt is accepted
            resumed = true;
            process.kill(pid, 'SIGCONT');
          }
        },
      });
      for (let i = 0; i < 2000; i++) client.track({ event_type: 'retried', user_id: `r${i % 50}`, value: 2, metadata: pad });
      await client.flush();

      expect(retries[0]!.status).toBe(503);
      for (const r of retries) if (r.status === 503) expect(r.delayMs).toBeGreaterThanOrEqual(1000); // Retry-After: 1
      expect(seen.length).toBe(retries.length + 1);
      expect(seen.at(-1)!.status).toBe(202);
      expect(seen.slice(0, -1).every((s) => s.status === 503)).toBe(true);
      const keys = new Set(seen.map((s) => s.headers.get('idempotency-key')));
      expect(keys.size).toBe(1);
      expect(UUID.test([...keys][0]!)).toBe(true);
      expect(client.stats).toMatchObject({ sent: 2000, batches: 1, failed: 0 });
      expect(await storedTotals(engine.queryUrl)).toEqual({ count: acked + 2000, sum: ackedSum + 4000 });
      await client.close();
    } finally {
      if (!resumed) process.kill(pid, 'SIGCONT');
    }
  });

  it('gives up after maxRetries when the engine keeps refusing, storing nothing', async () => {
    // 4 KiB rings: a 200-event batch never fits, so every attempt is a 503
    const tiny = await startEngine({ shards: 1, ringBytes: 4096 });
    try {
      const seen: Seen[] = [];
      const client = clientFor(tiny, { batchSize: 200, maxRetries: 2, fetch: recordingFetch(seen) });
      for (let i = 0; i < 200; i++) client.track({ event_type: 'big', user_id: `b${i}`, value: i, metadata: { i } });
      const err = (await client.flush().catch((e: unknown) => e)) as ShardlyticsError;
      expect(err).toBeInstanceOf(ShardlyticsError);
      expect(err.status).toBe(503);
      expect(err.attempts).toBe(3);
      expect(seen.map((s) => s.status)).toEqual([503, 503, 503]);
      expect(new Set(seen.map((s) => s.headers.get('idempotency-key'))).size).toBe(1);
      expect((await storedTotals(tiny.queryUrl)).count).toBe(0);
    } finally {
      await tiny.stop();
    }
  });
});

describe('client queries', () => {
  let engine: RunningEngine;
  let client: ShardlyticsClient;
  const events: TrackEvent[] = [];

  beforeAll(async () => {
    engine = await startEngine({ shards: 3 });
    client = clientFor(engine, { batchSize: 400 });
    const types = ['view', 'click', 'cart', 'buy'];
    for (let i = 0; i < 1200; i++) {
      const e: TrackEvent = {
        event_type: types[(i * 7) % 4 === 3 && i % 3 === 0 ? 3 : i % 3]!,
        user_id: `user-${i % 40}`,
        value: i % 50 === 0 ? 500 + i : (i % 23) + 0.25,
        timestamp: T0 + i * 1000,
        metadata: { plan: ['free', 'pro'][i % 2], page: `/p${i % 5}` },
      };
      events.push(e);
      client.track(e);
    }
    await client.flush();
  });
  afterAll(async () => {
    await client?.close();
    await engine?.stop();
  });

  /** The route's answer without the client, minus the envelope's per-request fields. */
  const strip = <T extends object>(a: T) => {
    const { query_time_ms: _q, timestamp: _t, ...rest } = a as Record<string, unknown>;
    return rest;
  };
  const viaPost = async (path: string, body: unknown) => strip((await postJson(`${engine.queryUrl}${path}`, body)).body);
  const viaGet = async (pathAndQuery: string) => strip((await getJson(`${engine.queryUrl}${pathAndQuery}`)).body);

  it('aggregate returns the engine’s answer, equal to brute force', async () => {
    const got = await client.aggregate({ groupBy: ['event_type'], metrics: ['value'] });
    expect(typeof got.query_time_ms).toBe('number');
    const counts = new Map<string, number>();
    for (const e of events) counts.set(e.event_type, (counts.get(e.event_type) ?? 0) + 1);
    expect(Object.fromEntries(got.results.map((r) => [r.event_type, r.count]))).toEqual(Object.fromEntries(counts));
    expect(strip(got)).toEqual(await viaPost('/query/aggregate', { groupBy: ['event_type'], metrics: ['value'] }));
  });

  it('window, topN and funnel (body kinds) return the engine’s answers', async () => {
    const w = { windowSize: '5m', groupBy: 'event_type', metric: 'value' as const, aggFunc: 'sum' as const, filter: { from: T0, to: new Date(T0 + 3_600_000).toISOString() } };
    expect(strip(await client.window(w))).toEqual(await viaPost('/query/window', w));
    const t = { groupBy: 'user_id', aggFunc: 'count' as const, n: 3 };
    const top = await client.topN(t);
    expect(top.results).toHaveLength(3);
    expect(strip(top)).toEqual(await viaPost('/query/top-n', t));
    const f = { steps: ['view', 'click', 'buy'], window: '1h' };
    const funnel = await client.funnel(f);
    expect(funnel.steps.map((s) => s.event_type)).toEqual(f.steps);
    expect(strip(funnel)).toEqual(await viaPost('/query/funnel', f));
  });

  it('percentiles, anomalies and summary (query-string kinds) return the engine’s answers', async () => {
    const p = await client.percentiles({ column: 'value', percentiles: [0.5, 0.995], exact: true, from: new Date(T0) });
    expect(Object.keys(p.percentiles!)).toEqual(['p50', 'p99.5']);
    expect(strip(p)).toEqual(await viaGet(`/query/percentiles?column=value&percentiles=0.5,0.995&exact=true&from=${new Date(T0).toISOString()}`));
    const a = await client.anomalies({ threshold: 2.5, limit: 5, event_type: ['view', 'click'] });
    expect(a.anomalies.length).toBeLessThanOrEqual(5);
    expect(strip(a)).toEqual(await viaGet('/query/anomalies?threshold=2.5&limit=5&event_type=view,click'));
    const s = await client.summary({ columns: ['value'] });
    expect(s.stats.count).toBe(events.length);
    expect(s.stats.distinct_users).toBe(40);
    expect(strip(s)).toEqual(await viaGet('/query/summary?columns=value'));
  });

  it('dashboard, customList and custom return the engine’s answers', async () => {
    const d = await client.dashboard();
    expect(d.summary.count).toBe(events.length);
    const raw = (await getJson(`${engine.queryUrl}/dashboard/metrics`)).body;
    expect(d.top_users).toEqual(raw.top_users);
    expect(d.recent_windows).toEqual(raw.recent_windows);
    const list = await client.customList();
    expect(list.functions.map((f) => f.name)).toContain('revenue_by_plan');
    const c = await client.custom('revenue_by_plan', {});
    expect(strip(c)).toEqual(await viaPost('/query/custom/revenue_by_plan', {}));
    const missing = (await client.custom('no_such_plugin').catch((e: unknown) => e)) as ShardlyticsError;
    expect(missing.status).toBe(404);
  });

  it('export yields every matching event, row by row', async () => {
    let n = 0;
    let sum = 0;
    for await (const row of client.export({ event_type: 'buy', pageSize: 100 })) {
      expect(row.event_type).toBe('buy');
      n++;
      sum += row.value ?? 0;
    }
    const buys = events.filter((e) => e.event_type === 'buy');
    expect(n).toBe(buys.length);
    expect(sum).toBeCloseTo(buys.reduce((s, e) => s + (e.value ?? 0), 0), 6);
    // leaving the loop early is fine (the download is cancelled)
    let first = 0;
    for await (const _row of client.export({})) if (++first === 3) break;
    expect(first).toBe(3);
  });

  it('turns a refused query into a ShardlyticsError naming the field, without retrying', async () => {
    const seen: Seen[] = [];
    const c = clientFor(engine, { fetch: recordingFetch(seen) });
    const err = (await c.topN({ groupBy: 'country' }).catch((e: unknown) => e)) as ShardlyticsError;
    expect(err).toBeInstanceOf(ShardlyticsError);
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/groupBy/);
    expect(typeof err.requestId).toBe('string');
    expect(seen).toHaveLength(1);
  });
});
