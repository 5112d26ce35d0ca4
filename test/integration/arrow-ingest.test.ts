/**
 * POST /ingest/arrow on real engines (worker shards, rings, logs, polars processes, HTTP on
 * 127.0.0.1): stored aggregates against a brute force over the events sent, every refusal with
 * its status and nothing stored, the routing hash of the JSON routes, ?wait=true, Idempotency-Key,
 * the counters, and a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeVector, makeData, Utf8, Float64, vectorFromArray } from 'apache-arrow';
import { arrowBody, type ArrowEvent } from '../helpers/arrow-body.js';
import { makeDataDir, postBody, postJson, removeDataDir, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { bruteForceGroups as bruteForce, storedGroups as stored } from '../helpers/aggregate-groups.js';
import { shardStats, storedTotals, until } from '../helpers/shard-probes.js';
import { shardForUser } from '../../src/router/route-hash.js';

const ARROW = 'application/vnd.apache.arrow.stream';
const NOW = Date.now();

const post = (url: string, body: Uint8Array | string, headers: Record<string, string> = {}) => postBody(url, body, { 'content-type': ARROW, ...headers });

/** Deterministic events: `value` unique per event (so sums tell events apart), some nulls, metadata in both text forms. */
function makeEvents(n: number, seed: number, offset = 0): ArrowEvent[] {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const types = ['view', 'click', 'buy', 'refund'];
  return Array.from({ length: n }, (_, i) => ({
    timestamp: NOW - Math.floor(rand() * 86_400_000),
    event_type: types[Math.floor(rand() * types.length)]!,
    user_id: `u${Math.floor(rand() * rand() * 300)}${i % 17 === 0 ? 'é' : ''}`,
    value: i % 13 === 0 ? null : offset + i,
    metadata: i % 5 === 0 ? null : rand() < 0.5 ? `{"plan":"${rand() < 0.5 ? 'pro' : 'free'}"}` : `{ "plan": "${rand() < 0.5 ? 'pro' : 'free'}" }`,
  }));
}

const planOf = (e: ArrowEvent) => (e.metadata == null ? 'null' : String(JSON.parse(e.metadata).plan));

describe('POST /ingest/arrow', () => {
  let e: RunningEngine;
  const sent: ArrowEvent[] = [];

  beforeAll(async () => {
    e = await startEngine({ shards: 3, maxBodyBytes: 1 << 20, maxFutureSkew: 86_400_000 });
  });
  afterAll(async () => {
    await e?.stop();
  });

  it('stores a mixed ingest (string layouts, timestamp units, several record batches, nulls, both metadata forms) exactly: aggregates by event_type and user equal a brute force', async () => {
    const bodies: Array<[ArrowEvent[], Parameters<typeof arrowBody>[1]]> = [
      [makeEvents(1500, 1, 0), { strings: 'utf8' }],
      [makeEvents(1200, 2, 10_000), { strings: 'dict', timestamp: 'us', batchRows: 250 }],
      [makeEvents(900, 3, 20_000), { strings: 'large', timestamp: 'ns' }],
      [makeEvents(700, 4, 30_000).map((ev) => ({ ...ev, timestamp: Math.floor(ev.timestamp / 1000) * 1000 })), { timestamp: 's', batchRows: 100 }],
    ];
    for (const [events, opts] of bodies) {
      const res = await post(`${e.ingestUrl}/ingest/arrow`, arrowBody(events, opts));
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      expect(res.body).toMatchObject({ accepted: events.length, buffered: expect.any(Number), timestamp: expect.any(String), latency: expect.any(Number) });
      sent.push(...events);
    }
    const byTypeUser = bruteForce(sent, (ev) => `${ev.event_type}|${ev.user_id}`);
    expect(await stored(e.queryUrl, ['event_type', 'user_id'])).toEqual(byTypeUser);
    // metadata was stored as JSON.stringify writes it: both text forms group together
    expect(await stored(e.queryUrl, ['metadata.plan'])).toEqual(bruteForce(sent, planOf));
    expect(await storedTotals(e.queryUrl)).toEqual({ count: sent.length, sum: sent.reduce((t, ev) => t + (ev.value ?? 0), 0) });
  });

  it('puts each user on the shard the routing hash names, as the JSON routes do', async () => {
    const stats = await shardStats(e.ingestUrl);
    const expected = [0, 1, 2].map((s) => sent.filter((ev) => shardForUser(ev.user_id, 3) === s).length);
    expect(stats.map((s) => s.events_received)).toEqual(expected);
    // the same user through /ingest/batch lands on the same shard: its per-user count grows there
    const user = sent[0]!.user_id;
    const before = (await shardStats(e.ingestUrl)).map((s) => s.events_received);
    const res = await postJson(`${e.ingestUrl}/ingest/batch`, { events: [{ event_type: 'view', user_id: user, value: 1 }] });
    expect(res.status).toBe(202);
    await until(async () => (await storedTotals(e.queryUrl)).count === sent.length + 1, 'the JSON event stored');
    const after = (await shardStats(e.ingestUrl)).map((s) => s.events_received);
    expect(after.map((n, i) => n - before[i]!)).toEqual([0, 1, 2].map((s) => (s === shardForUser(user, 3) ? 1 : 0)));
    sent.push({ timestamp: 0, event_type: 'view', user_id: user, value: 1 });
  });

  it('refuses every bad request with its status, naming the column and row, and stores none of it', async () => {
    const good = makeEvents(20, 9, 50_000);
    const base = await storedTotals(e.queryUrl);
    const bad = (patch: (evs: ArrowEvent[]) => void) => {
      const evs = good.map((ev) => ({ ...ev }));
      patch(evs);
      return arrowBody(evs);
    };
    const utf8Column = (rows: number[][]) => {
      const offsets = new Int32Array(rows.length + 1);
      rows.forEach((r, i) => (offsets[i + 1] = offsets[i]! + r.length));
      return makeVector(makeData({ type: new Utf8(), length: rows.length, nullCount: 0, valueOffsets: offsets, data: Uint8Array.from(rows.flat()) }));
    };
    const cases: Array<{ name: string; send: () => Promise<{ status: number; body: any }>; status: number; field?: string; index?: number }> = [
      { name: 'JSON content type', send: () => post(`${e.ingestUrl}/ingest/arrow`, arrowBody(good), { 'content-type': 'application/json' }), status: 415 },
      { name: 'no content type', send: () => fetch(`${e.ingestUrl}/ingest/arrow`, { method: 'POST', body: arrowBody(good) }).then(async (r) => ({ status: r.status, body: await r.json() })), status: 415 },
      { name: 'over maxBodyBytes', send: () => post(`${e.ingestUrl}/ingest/arrow`, arrowBody(makeEvents(40_000, 5))), status: 413 },
      { name: 'not Arrow', send: () => post(`${e.ingestUrl}/ingest/arrow`, JSON.stringify({ events: good })), status: 400, field: '(body)' },
      { name: 'missing user_id', send: () => post(`${e.ingestUrl}/ingest/arrow`, arrowBody(good, { omit: ['user_id'] })), status: 400, field: 'user_id' },
      { name: 'missing timestamp', send: () => post(`${e.ingestUrl}/ingest/arrow`, arrowBody(good, { omit: ['timestamp'] })), status: 400, field: 'timestamp' },
      { name: 'unknown column', send: () => post(`${e.ingestUrl}/ingest/arrow`, arrowBody(good, { columns: { extra: vectorFromArray(good.map(() => 1), new Float64()) } })), status: 400, field: 'extra' },
      { name: 'value as strings', send: () => post(`${e.ingestUrl}/ingest/arrow`, arrowBody(good, { columns: { value: vectorFromArray(good.map(() => '1'), new Utf8()) } })), status: 400, field: 'value' },
      { name: 'empty event_type', send: () => post(`${e.ingestUrl}/ingest/arrow`, bad((evs) => (evs[4]!.event_type = ''))), status: 400, field: 'event_type', index: 4 },
      { name: 'null user_id', send: () => post(`${e.ingestUrl}/ingest/arrow`, arrowBody(good, { columns: { user_id: vectorFromArray(good.map((ev, i) => (i === 7 ? null : ev.user_id)), new Utf8()) } })), status: 400, field: 'user_id', index: 7 },
      { name: 'bad UTF-8 user_id', send: () => post(`${e.ingestUrl}/ingest/arrow`, arrowBody(good, { columns: { user_id: utf8Column(good.map((_, i) => (i === 11 ? [0x75, 0xed, 0xa0, 0x80] : [0x75, 0x31]))) } })), status: 400, field: 'user_id', index: 11 },
      { name: 'NaN value', send: () => post(`${e.ingestUrl}/ingest/arrow`, bad((evs) => (evs[2]!.value = NaN))), status: 400, field: 'value', index: 2 },
      { name: 'metadata not an object', send: () => post(`${e.ingestUrl}/ingest/arrow`, bad((evs) => (evs[9]!.metadata = '[1,2]'))), status: 400, field: 'metadata', index: 9 },
      { name: 'timestamp out of range', send: () => post(`${e.ingestUrl}/ingest/arrow`, bad((evs) => (evs[13]!.timestamp = -62135596800001))), status: 400, field: 'timestamp', index: 13 },
      { name: 'beyond maxFutureSkew', send: () => post(`${e.ingestUrl}/ingest/arrow`, bad((evs) => (evs[19]!.timestamp = Date.now() + 2 * 86_400_000))), status: 400, field: 'timestamp', index: 19 },
      { name: 'bad wait', send: () => post(`${e.ingestUrl}/ingest/arrow?wait=maybe`, arrowBody(good)), status: 400, field: 'wait' },
    ];
    for (const c of cases) {
      const res = await c.send();
      expect(res.status, `${c.name}: ${JSON.stringify(res.body)}`).toBe(c.status);
      if (c.field) expect(res.body.errors[0], c.name).toMatchObject({ field: c.field, ...(c.index !== undefined ? { index: c.index } : {}) });
    }
    expect(await storedTotals(e.queryUrl)).toEqual(base);
  });

  it('counts what it accepts and refuses in /metrics/ingestion and /metrics, by route', async () => {
    const m = (await (await fetch(`${e.ingestUrl}/metrics/ingestion`)).json()) as any;
    expect(m.total_events).toBe(sent.length);
    const text = await (await fetch(`${e.ingestUrl}/metrics`)).text();
    const sample = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    expect(sample(/^shardlytics_ingest_events_total\{route="\/ingest\/arrow"\} (\d+)/m)).toBe(sent.length - 1);
    expect(sample(/^shardlytics_ingest_rejected_events_total\{route="\/ingest\/arrow",reason="INVALID_EVENT"\} (\d+)/m)).toBe(7 * 20);
  });

  it('answers 413 for a part larger than its shard\'s whole ring, and 503 + Retry-After after waiting for room that does not come', async () => {
    // ringWaitMs: the wait before the 503 is the point, not its default length (5 s)
    const tiny = await startEngine({ shards: 1, ringBytes: 64 * 1024, ringWaitMs: 300 });
    let pid = 0;
    try {
      const big = await post(`${tiny.ingestUrl}/ingest/arrow`, arrowBody(makeEvents(3000, 6)));
      expect(big.status).toBe(413);
      expect(big.body.message).toMatch(/more than the whole ring/);
      // a stopped polars process acknowledges nothing: the shard stops draining at its in-flight
      // cap, the ring fills, and a request that does not fit waits, then is refused
      pid = (await shardStats(tiny.ingestUrl))[0]!.polars_pid;
      process.kill(pid, 'SIGSTOP');
      let accepted = 0;
      let refused: Awaited<ReturnType<typeof post>> | null = null;
      for (let i = 0; i < 30 && !refused; i++) {
        const res = await post(`${tiny.ingestUrl}/ingest/arrow`, arrowBody(makeEvents(900, 100 + i)));
        if (res.status === 202) accepted++;
        else refused = res;
      }
      expect(refused?.status, JSON.stringify(refused?.body)).toBe(503);
      expect(refused!.headers.get('retry-after')).toBe('1');
      expect(refused!.body.message).toMatch(/ring is full.*nothing of this request was stored/);
      process.kill(pid, 'SIGCONT');
      pid = 0;
      await until(async () => (await storedTotals(tiny.queryUrl)).count === accepted * 900, 'every accepted event stored');
      expect(accepted).toBeGreaterThan(0);
    } finally {
      if (pid) process.kill(pid, 'SIGCONT');
      await tiny.stop();
    }
  });
});

describe('POST /ingest/arrow acknowledgement, keys and restart', () => {
  it('?wait=true answers 200 once durable; an Idempotency-Key retry replays and stores nothing; another body with the key → 422; everything survives a restart', async () => {
    const dataDir = makeDataDir();
    const first = await startEngine({ shards: 2, dataDir });
    const a = makeEvents(800, 21, 0);
    const b = makeEvents(600, 22, 1000);
    const c = makeEvents(400, 23, 2000);
    let restarted: RunningEngine | null = null;
    try {
      const waited = await post(`${first.ingestUrl}/ingest/arrow?wait=true`, arrowBody(a, { strings: 'dict' }));
      expect(waited.status).toBe(200);
      expect(waited.body).toMatchObject({ accepted: 800, durable: true });
      const stats = await shardStats(first.ingestUrl);
      expect(stats.reduce((t, s) => t + s.events_durable, 0)).toBeGreaterThanOrEqual(800);

      const bodyB = arrowBody(b);
      const keyed = await post(`${first.ingestUrl}/ingest/arrow?wait=true`, bodyB, { 'idempotency-key': 'arrow-b' });
      expect(keyed.status).toBe(200);
      const retry = await post(`${first.ingestUrl}/ingest/arrow?wait=true`, bodyB, { 'idempotency-key': 'arrow-b' });
      expect(retry.status).toBe(200);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.body).toEqual(keyed.body);
      const other = await post(`${first.ingestUrl}/ingest/arrow`, arrowBody(c), { 'idempotency-key': 'arrow-b' });
      expect(other.status).toBe(422);
      expect(other.body.error).toBe('IDEMPOTENCY_KEY_REUSED');
      // 202 without waiting: durable within a flush interval, and kept by a clean stop
      expect((await post(`${first.ingestUrl}/ingest/arrow`, arrowBody(c, { timestamp: 'ms' }))).status).toBe(202);

      const all = [...a, ...b, ...c];
      const expected = bruteForce(all, (ev) => `${ev.event_type}|${ev.user_id}`);
      expect(await stored(first.queryUrl, ['event_type', 'user_id'])).toEqual(expected);
      await first.stop();

      restarted = await startEngine({ shards: 2, dataDir });
      expect(await stored(restarted.queryUrl, ['event_type', 'user_id'])).toEqual(expected);
      expect(await stored(restarted.queryUrl, ['metadata.plan'])).toEqual(bruteForce(all, planOf));
      // the key survived the restart: still a replay, still nothing stored
      const afterRestart = await post(`${restarted.ingestUrl}/ingest/arrow?wait=true`, bodyB, { 'idempotency-key': 'arrow-b' });
      expect(afterRestart.status).toBe(200);
      expect(afterRestart.headers.get('idempotent-replayed')).toBe('true');
      expect((await storedTotals(restarted.queryUrl)).count).toBe(all.length);
    } finally {
      await first.stop();
      await restarted?.stop();
      removeDataDir(dataDir);
    }
  });
});
