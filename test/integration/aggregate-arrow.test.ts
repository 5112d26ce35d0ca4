/**
 * POST /query/aggregate with `format: "arrow"`: an Arrow IPC stream of the same rows, columns and
 * order as the JSON answer. A by-user grouping takes the fast path (each shard sends its finished
 * rows as columns, interleaved by key into the answer's batches); others are merged as for JSON
 * and written as Arrow. Checked against the JSON answer, an independent brute force and the
 * documented row order; the limits hold before any byte is sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableFromIPC } from 'apache-arrow';
import type { EngineConfig } from '../../src/config/schema.js';
import { shardForUser } from '../../src/router/route-hash.js';
import { ARROW_BATCH_ROWS } from '../../src/merge/aggregate-arrow.js';
import { arrowBody } from '../helpers/arrow-body.js';
import { postBody, postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { expectBruteAggregate } from '../helpers/expect-aggregate.js';
import { makeEvents, type TestEvent } from '../helpers/random-events.js';
import { shardStats, until, waitReady } from '../helpers/shard-probes.js';

const SPECIAL_USERS = ['Ünïcode', 'zz', '😀', '\uff5e', 'a"quote', 'back\\slash', 'user-1 ', 'a-user-name-longer-than-thirty-two-bytes-of-utf8'];
const events: TestEvent[] = makeEvents(12_000, 23, { users: 2_000 });
SPECIAL_USERS.forEach((user_id, i) => {
  for (let k = 0; k < 3; k++) events.push({ timestamp: Date.UTC(2026, 0, 1) + i * 1000 + k, event_type: k === 2 ? 'click' : 'purchase', user_id, value: k === 1 ? null : i + k / 4 });
});

type Row = Record<string, string | number | null>;
const running: RunningEngine[] = [];

async function engineWith(shards: number, evs: TestEvent[], config: Partial<EngineConfig> = {}): Promise<RunningEngine> {
  const engine = await startEngine({ shards, maxResultCells: 1_000_000, ...config });
  running.push(engine);
  for (let i = 0; i < evs.length; i += 5_000) {
    const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events: evs.slice(i, i + 5_000) });
    expect(res.status).toBe(202);
  }
  return engine;
}

async function asJson(engine: RunningEngine, body: Record<string, unknown>): Promise<Row[]> {
  const res = await postJson(`${engine.queryUrl}/query/aggregate`, body);
  expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(200);
  return res.body.results;
}

/** The Arrow answer's rows (Int64 as numbers), its column names and types, and the response. */
async function asArrow(engine: RunningEngine, body: Record<string, unknown>) {
  const res = await fetch(`${engine.queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, format: 'arrow' }) });
  const bytes = new Uint8Array(await res.arrayBuffer());
  expect(res.status, new TextDecoder().decode(bytes.subarray(0, 300))).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/vnd.apache.arrow.stream');
  expect(Number(res.headers.get('content-length'))).toBe(bytes.length);
  expect(Number(res.headers.get('x-query-time-ms'))).toBeGreaterThan(0);
  expect(Number.isNaN(Date.parse(res.headers.get('x-timestamp') ?? ''))).toBe(false);
  const table = tableFromIPC(bytes);
  const rows: Row[] = table.toArray().map((r) => Object.fromEntries(Object.entries(r.toJSON() as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : (v as string | number | null)])));
  return { rows, bytes: bytes.length, batches: table.batches.length, fields: table.schema.fields.map((f) => `${f.name}:${String(f.type)}`) };
}

/** Code point order (what the answer promises), null last. */
function compareKey(a: string | number | null, b: string | number | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  if (typeof a === 'number') return a - (b as number);
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b as string, 'utf8'));
}

function expectOrdered(rows: Row[], keys: string[]): void {
  for (let i = 1; i < rows.length; i++) {
    const c = keys.map((k) => compareKey(rows[i - 1]![k]!, rows[i]![k]!)).find((d) => d !== 0) ?? 0;
    expect(c, `rows ${i - 1} and ${i} out of order`).toBeLessThan(0);
  }
}

const MOMENTS = ['value_count', 'value_sum', 'value_mean', 'value_min', 'value_max', 'value_stddev'].map((f) => `${f}:${f === 'value_count' ? 'Int64' : 'Float64'}`);

let three: RunningEngine;

beforeAll(async () => {
  three = await engineWith(3, events);
}, 60_000);

afterAll(async () => {
  await Promise.all(running.map((e) => e.stop()));
});

describe('aggregate answered as Arrow', () => {
  it('by (event_type, user_id), user_id and (user_id, event_type) over 3 shards: the JSON rows, brute force, sorted by the keys', async () => {
    for (const groupBy of [['event_type', 'user_id'], ['user_id'], ['user_id', 'event_type']] as Array<Array<'event_type' | 'user_id'>>) {
      const json = await asJson(three, { groupBy });
      const arrow = await asArrow(three, { groupBy });
      expect(arrow.fields).toEqual([...groupBy.map((k) => `${k}:Utf8`), 'count:Int64', ...MOMENTS]);
      expect(arrow.rows.length).toBeGreaterThan(1_000);
      expect(arrow.rows).toEqual(json);
      expectBruteAggregate(arrow.rows, events, groupBy);
      expectOrdered(arrow.rows, groupBy);
    }
    // the answer interleaves every shard's rows, special users included
    const users = new Set((await asArrow(three, { groupBy: ['user_id'] })).rows.map((r) => shardForUser(r.user_id as string, 3)));
    expect(users.size).toBe(3);
  });

  it('with a window key, metadata keys, a filter, no metrics: the JSON rows in the JSON order', async () => {
    const cases: Array<Record<string, unknown>> = [
      { groupBy: ['user_id', 'window'], windowSize: '1h' },
      { groupBy: ['window', 'user_id'], windowSize: '6h', metrics: [] },
      { groupBy: ['metadata.plan', 'user_id'], filter: { event_type: ['click', 'purchase'] } },
      { groupBy: ['user_id'], filter: { from: Date.UTC(2026, 0, 1, 6), to: Date.UTC(2026, 0, 1, 12) } },
      // no user key: merged as for JSON, then written as Arrow
      { groupBy: ['event_type'] },
      { groupBy: ['metadata.plan', 'event_type'] },
      { groupBy: ['window', 'event_type'], windowSize: '1h' },
      {},
    ];
    for (const body of cases) {
      const json = await asJson(three, body);
      const arrow = await asArrow(three, body);
      expect(arrow.rows, JSON.stringify(body)).toEqual(json);
      expect(json.length).toBeGreaterThan(0);
      const keys = ((body.groupBy as string[] | undefined) ?? []).flatMap((k) => (k === 'window' ? ['window_start'] : [k]));
      expectOrdered(arrow.rows, keys);
    }
    const windows = await asArrow(three, cases[0]!);
    expect(windows.fields.slice(0, 4)).toEqual(['user_id:Utf8', 'window_start:Int64', 'window_end:Int64', 'count:Int64']);
    for (const r of windows.rows) expect(r.window_end).toBe((r.window_start as number) + 3_600_000);
    // nulls in a key and in the moments
    const plans = await asArrow(three, cases[2]!);
    expect(plans.rows.some((r) => r['metadata.plan'] === null)).toBe(true);
    expect(plans.rows.some((r) => r.value_count === 0 && r.value_sum === null && r.value_stddev === null)).toBe(true);
  });

  it('over one and two shards, an empty engine, and a shard without rows', async () => {
    const few = events.filter((e) => e.user_id < 'user-5');
    for (const shards of [1, 2]) {
      const engine = await engineWith(shards, few);
      for (const groupBy of [['event_type', 'user_id'], ['user_id']] as Array<Array<'event_type' | 'user_id'>>) {
        const arrow = await asArrow(engine, { groupBy });
        expect(arrow.rows).toEqual(await asJson(engine, { groupBy }));
        expectBruteAggregate(arrow.rows, few, groupBy);
      }
    }
    const empty = await engineWith(2, []);
    const none = await asArrow(empty, { groupBy: ['event_type', 'user_id'] });
    expect(none.rows).toEqual([]);
    expect(none.fields).toEqual(['event_type:Utf8', 'user_id:Utf8', 'count:Int64', ...MOMENTS]);
    expect((await asArrow(empty, {})).rows).toEqual([{ count: 0, value_count: 0, value_sum: null, value_mean: null, value_min: null, value_max: null, value_stddev: null }]);
    // one user: one shard holds every row, the other none
    const one = events.filter((e) => e.user_id === 'user-1');
    const lonely = await engineWith(2, one);
    const arrow = await asArrow(lonely, { groupBy: ['event_type', 'user_id'] });
    expect(arrow.rows.length).toBeGreaterThan(1);
    expect(arrow.rows).toEqual(await asJson(lonely, { groupBy: ['event_type', 'user_id'] }));
    expectBruteAggregate(arrow.rows, one, ['event_type', 'user_id']);
  });

  it('answers more rows than a record batch holds in several batches, moved out of the merge pool: the JSON rows, brute force, in order', async () => {
    // ~70,000 groups, more than ARROW_BATCH_ROWS
    const big = Array.from({ length: 80_000 }, (_, i) => ({ timestamp: Date.UTC(2026, 0, 1) + i, event_type: i % 7 ? 'click' : 'view', user_id: `u${(i * 7919) % 60_000}`, value: i % 11 ? i / 8 : null }));
    const engine = await startEngine({ shards: 2, maxResultCells: 1_000_000 });
    running.push(engine);
    const res = await postBody(`${engine.ingestUrl}/ingest/arrow?wait=true`, arrowBody(big), { 'content-type': 'application/vnd.apache.arrow.stream' });
    expect(res.status).toBe(200);
    const groupBy: Array<'event_type' | 'user_id'> = ['event_type', 'user_id'];
    const arrow = await asArrow(engine, { groupBy });
    expect(arrow.rows.length).toBeGreaterThan(ARROW_BATCH_ROWS);
    expect(arrow.batches).toBe(Math.ceil(arrow.rows.length / ARROW_BATCH_ROWS));
    expect(arrow.rows).toEqual(await asJson(engine, { groupBy }));
    expectBruteAggregate(arrow.rows, big, groupBy);
    expectOrdered(arrow.rows, groupBy);
  });

  it('refuses an answer over maxResponseBytes with a 400 naming it, before any byte; one that fits is answered; maxResultCells holds', async () => {
    const whole = await asArrow(three, { groupBy: ['event_type', 'user_id'] });
    // every shard's columns within the bound, the whole answer over it
    const over = await engineWith(3, events, { maxResponseBytes: whole.bytes - 1 });
    const a = await postJson(`${over.queryUrl}/query/aggregate`, { groupBy: ['event_type', 'user_id'], format: 'arrow' });
    expect(a.status).toBe(400);
    expect(a.headers.get('content-type')).toContain('application/json');
    expect(a.body.error).toBe('LIMIT_EXCEEDED');
    expect(JSON.stringify(a.body)).toContain('maxResponseBytes');
    // a shard's own columns over it: refused by the shard
    const tiny = await engineWith(3, events, { maxResponseBytes: 10_000 });
    const b = await postJson(`${tiny.queryUrl}/query/aggregate`, { groupBy: ['event_type', 'user_id'], format: 'arrow' });
    expect(b.status).toBe(400);
    expect(b.body.error).toBe('RESULT_TOO_LARGE');
    expect(b.body.message).toContain('`maxResponseBytes` 10000');
    const fits = await engineWith(3, events, { maxResponseBytes: whole.bytes });
    expect((await asArrow(fits, { groupBy: ['event_type', 'user_id'] })).rows).toEqual(whole.rows);
    // and a shard with more groups than maxResultCells refuses, as for JSON
    const cells = await engineWith(3, events, { maxResultCells: 100 });
    const c = await postJson(`${cells.queryUrl}/query/aggregate`, { groupBy: ['event_type', 'user_id'], format: 'arrow' });
    expect(c.status).toBe(400);
    expect(c.body.error).toBe('RESULT_TOO_LARGE');
    expect(c.body.message).toContain('`maxResultCells` 100');
  });

  it('answers 400 naming `format` for a format it does not know', async () => {
    for (const format of ['csv', 1, 'ARROW']) {
      const res = await postJson(`${three.queryUrl}/query/aggregate`, { groupBy: ['user_id'], format });
      expect(res.status).toBe(400);
      const named = res.body.message.includes('format') || (res.body.errors ?? []).some((e: { field: string }) => e.field === 'format');
      expect(named, JSON.stringify(res.body)).toBe(true);
    }
    const json = await postJson(`${three.queryUrl}/query/aggregate`, { groupBy: ['event_type'], format: 'json' });
    expect(json.status).toBe(200);
    expect(json.body.results).toEqual(await asJson(three, { groupBy: ['event_type'] }));
  });
});

describe('an Arrow answer and a polars process killed', () => {
  it('kill -9 of a shard\'s polars process while by-user Arrow answers run: each is whole and equal to the JSON rows, or an error, never a short stream; the shard restores and answers whole again', async () => {
    const engine = await engineWith(2, events);
    const body = { groupBy: ['event_type', 'user_id'] };
    const expected = await asJson(engine, body);
    const pid = (await shardStats(engine.queryUrl))[0]!.polars_pid as number;
    const ask = async () => {
      const res = await fetch(`${engine.queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, format: 'arrow' }) });
      const bytes = new Uint8Array(await res.arrayBuffer());
      return { status: res.status, bytes, contentType: res.headers.get('content-type') };
    };
    // answers in flight while the process dies
    const inFlight = Array.from({ length: 6 }, (_, i) => new Promise<void>((r) => setTimeout(r, i * 15)).then(ask));
    await new Promise((r) => setTimeout(r, 20));
    process.kill(pid, 'SIGKILL');
    let whole = 0;
    for (const a of await Promise.all(inFlight)) {
      if (a.status === 200) {
        expect(a.contentType).toBe('application/vnd.apache.arrow.stream');
        const rows = tableFromIPC(a.bytes).toArray().map((r) => Object.fromEntries(Object.entries(r.toJSON() as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
        expect(rows).toEqual(expected);
        whole++;
      } else {
        // an error answer is JSON naming what failed, not Arrow bytes
        expect(a.status, new TextDecoder().decode(a.bytes.subarray(0, 300))).toBeGreaterThanOrEqual(500);
        expect(JSON.parse(new TextDecoder().decode(a.bytes)).error).toEqual(expect.any(String));
      }
    }
    await until(async () => (await shardStats(engine.queryUrl))[0]!.polars_restarts >= 1, 'the killed polars process restored', 60_000);
    await waitReady(engine.queryUrl);
    expect((await shardStats(engine.queryUrl))[0]!.polars_pid).not.toBe(pid);
    expect((await asArrow(engine, body)).rows).toEqual(expected);
    console.log(JSON.stringify({ measured: 'arrow answers in flight at a polars kill -9', whole, refused: 6 - whole }));
  });
});
