/**
 * Aggregates grouped by user_id over 3 shards: each shard finishes its own groups (sorted by a
 * packed key, counted exactly against maxResultCells, written as JSON text and bounded by
 * maxResponseBytes before it is sent) and the merge interleaves them. Answers are checked
 * against brute force, the limits at their exact boundaries (counts and bytes worked out
 * independently from the routing function).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableFromIPC } from 'apache-arrow';
import type { EngineConfig } from '../../src/config/schema.js';
import { shardForUser } from '../../src/router/route-hash.js';
import { postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { expectBruteAggregate } from '../helpers/expect-aggregate.js';
import { makeEvents, type TestEvent } from '../helpers/random-events.js';

const SHARDS = 3;
const SPECIAL_USERS = ['Ünïcode', 'zz', '😀', '\uff5e', 'a"quote', 'back\\slash', 'user-1 '];
const events: TestEvent[] = makeEvents(24_000, 11, { users: 3_000 });
SPECIAL_USERS.forEach((user_id, i) => {
  for (let k = 0; k < 3; k++) events.push({ timestamp: Date.UTC(2026, 0, 1) + i * 1000 + k, event_type: k === 2 ? 'click' : 'purchase', user_id, value: k === 1 ? null : i + k / 4 });
});

type Key = 'event_type' | 'user_id';
const running: RunningEngine[] = [];

async function engineWith(limits: Partial<EngineConfig>): Promise<RunningEngine> {
  const engine = await startEngine({ shards: SHARDS, ...limits });
  running.push(engine);
  for (let i = 0; i < events.length; i += 5_000) {
    const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events: events.slice(i, i + 5_000) });
    expect(res.status).toBe(202);
  }
  return engine;
}

/** Code point order (what the answer promises), not JavaScript's UTF-16 code unit order. */
function compareCodePoints(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0)!);
  const y = Array.from(b, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

function expectBrute(results: Array<Record<string, any>>, groupBy: Key[]): void {
  expectBruteAggregate(results, events, groupBy);
  for (let i = 1; i < results.length; i++) {
    const a = results[i - 1]!;
    const b = results[i]!;
    const c = groupBy.map((k) => compareCodePoints(a[k], b[k])).find((d) => d !== 0) ?? 0;
    expect(c, `rows ${i - 1} and ${i} out of order`).toBeLessThan(0);
  }
}

/** Per shard: its groups of (event_type, user_id) and the bytes of its rows' JSON array. */
function perShard(rows: Array<Record<string, any>>): Array<{ groups: number; bytes: number }> {
  const out = Array.from({ length: SHARDS }, () => ({ groups: 0, bytes: 0 }));
  for (const row of rows) {
    const s = out[shardForUser(row.user_id, SHARDS)]!;
    s.bytes += (s.groups > 0 ? 1 : 0) + Buffer.byteLength(JSON.stringify(row));
    s.groups++;
  }
  for (const s of out) s.bytes += 2;
  return out;
}

let open: RunningEngine;
let rows: Array<Record<string, any>>;
let answerBytes: number;

beforeAll(async () => {
  open = await engineWith({ maxResultCells: 1_000_000, maxResponseBytes: 64 * 1024 * 1024 });
  const res = await fetch(`${open.queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ groupBy: ['event_type', 'user_id'] }) });
  const text = await res.text();
  expect(res.status).toBe(200);
  expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
  answerBytes = Buffer.byteLength(text);
  rows = (JSON.parse(text) as { results: Array<Record<string, any>> }).results;
}, 60_000);

afterAll(async () => {
  await Promise.all(running.map((e) => e.stop()));
});

describe('aggregates grouped by user_id over 3 shards', () => {
  it('match brute force, sorted by the keys, grouped by (event_type, user_id), user_id, (user_id, event_type)', async () => {
    expectBrute(rows, ['event_type', 'user_id']);
    for (const groupBy of [['user_id'], ['user_id', 'event_type']] as Key[][]) {
      const res = await postJson(`${open.queryUrl}/query/aggregate`, { groupBy });
      expect(res.status).toBe(200);
      expectBrute(res.body.results, groupBy);
    }
    // every shard holds groups, so the answer interleaves three shards' rows
    expect(perShard(rows).every((s) => s.groups > 1_000)).toBe(true);
  });

  it('are the text each row would have from JSON.stringify (escapes, whole numbers, nulls)', () => {
    const special = rows.filter((r) => SPECIAL_USERS.includes(r.user_id));
    expect(special.length).toBe(SPECIAL_USERS.length * 2);
    for (const r of special) expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it('answer while each shard has at most maxResultCells groups, counted exactly; one more refuses naming it', async () => {
    const most = Math.max(...perShard(rows).map((s) => s.groups));
    const at = await engineWith({ maxResultCells: most });
    const ok = await postJson(`${at.queryUrl}/query/aggregate`, { groupBy: ['event_type', 'user_id'] });
    expect(ok.status).toBe(200);
    expect(ok.body.results).toEqual(rows);
    const under = await engineWith({ maxResultCells: most - 1 });
    const refused = await postJson(`${under.queryUrl}/query/aggregate`, { groupBy: ['event_type', 'user_id'] });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('RESULT_TOO_LARGE');
    expect(refused.body.message).toContain(`${most} result cells`);
    expect(refused.body.message).toContain(`\`maxResultCells\` ${most - 1}`);
  });

  it('refuse an answer over maxResponseBytes with a 400 naming it: on the shard when its rows alone are over, else whole', async () => {
    const shards = perShard(rows);
    const biggest = Math.max(...shards.map((s) => s.bytes));
    expect(answerBytes).toBeGreaterThan(biggest + 1024);

    const shardOver = await engineWith({ maxResponseBytes: biggest - 1 });
    const a = await postJson(`${shardOver.queryUrl}/query/aggregate`, { groupBy: ['event_type', 'user_id'] });
    expect(a.status).toBe(400);
    expect(a.body.error).toBe('RESULT_TOO_LARGE');
    expect(a.body.message).toContain(`${biggest} bytes`);
    expect(a.body.message).toContain(`\`maxResponseBytes\` ${biggest - 1}`);

    // every shard within the bound, the whole answer over it: refused before anything is sent
    const wholeOver = await engineWith({ maxResponseBytes: biggest });
    const b = await postJson(`${wholeOver.queryUrl}/query/aggregate`, { groupBy: ['event_type', 'user_id'] });
    expect(b.status).toBe(400);
    expect(b.body.error).toBe('LIMIT_EXCEEDED');
    expect(JSON.stringify(b.body)).toContain('maxResponseBytes');

    const fits = await engineWith({ maxResponseBytes: answerBytes + 100 });
    const c = await postJson(`${fits.queryUrl}/query/aggregate`, { groupBy: ['event_type', 'user_id'] });
    expect(c.status).toBe(200);
    expect(c.body.results).toEqual(rows);
  });

  it('carry only the statistics `stats` names, in their fixed order, finished on the shards or merged, as JSON and as Arrow; bad `stats` is a 400 naming it', async () => {
    const arrowRows = async (body: Record<string, unknown>) => {
      const res = await fetch(`${open.queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, format: 'arrow' }) });
      expect(res.status).toBe(200);
      return tableFromIPC(new Uint8Array(await res.arrayBuffer())).toArray().map((r) => Object.fromEntries(Object.entries(r.toJSON() as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
    };
    const cases = [
      { asked: ['max', 'sum'], fields: ['sum', 'max'] },
      { asked: ['stddev'], fields: ['stddev'] },
      { asked: ['mean', 'min'], fields: ['mean', 'min'] },
      { asked: ['stddev', 'max', 'min', 'mean', 'sum'], fields: ['sum', 'mean', 'min', 'max', 'stddev'] },
    ] as const;
    for (const { asked, fields } of cases) {
      // finished on the shards (by user) and merged across them (by event type)
      for (const groupBy of [['event_type', 'user_id'], ['event_type']] as Key[][]) {
        const json = await postJson(`${open.queryUrl}/query/aggregate`, { groupBy, stats: asked });
        expect(json.status).toBe(200);
        expectBruteAggregate(json.body.results, events, groupBy, {}, fields);
        const arrow = await arrowRows({ groupBy, stats: asked });
        expectBruteAggregate(arrow, events, groupBy, {}, fields);
      }
    }
    for (const bad of [[], ['median'], ['sum', 'sum'], 'sum', [1]]) {
      const res = await postJson(`${open.queryUrl}/query/aggregate`, { groupBy: ['event_type', 'user_id'], stats: bad });
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(JSON.stringify(res.body), JSON.stringify(bad)).toContain('stats');
    }
  });
});
