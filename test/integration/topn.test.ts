/**
 * POST /query/top-n on the real engine (4 shards, 200,000 events, skewed users) against a brute
 * force computed here from the acknowledged events: keys, event counts exact, scores 1e-9
 * relative, ties by key ascending, null keys and groups without values left out.
 *
 * Bad input (each must answer 400 with a message naming the field):
 * - body not a JSON object (array, string, number)         → (body)
 * - malformed JSON                                          → 400 MALFORMED_JSON
 * - unknown field `limit`                                   → limit
 * - `groupBy` missing, a number, unknown name, `metadata.` with a bad key, unknown `<table>.<column>` → groupBy
 * - `metric` unknown ("price") or not a string              → metric
 * - `aggFunc` unknown ("median"), not a string              → aggFunc
 * - `n` 0, −1, 10,001, 2.5, "10", true                      → n
 * - `order` unknown ("up")                                  → order
 * - `filter` not an object, unknown filter key, bad `from`, `from` after `to`, empty `event_type` list → filter.*
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/engine-harness.js';
import { startQueryFixture, type QueryFixture } from '../helpers/query-fixture.js';
import { closeTo, type TestEvent } from '../helpers/random-events.js';

let fixture: QueryFixture;

beforeAll(async () => {
  fixture = await startQueryFixture();
});

afterAll(async () => {
  await fixture?.stop();
});

type Agg = 'sum' | 'count' | 'mean' | 'max';
interface Query {
  groupBy: string;
  metric?: string;
  aggFunc?: Agg;
  n?: number;
  order?: 'desc' | 'asc';
  filter?: { from?: number; to?: number; event_type?: string[] };
}

function keyOf(e: TestEvent, dim: string): string | null {
  if (dim === 'event_type' || dim === 'user_id') return e[dim];
  const v = e.metadata?.[dim.slice('metadata.'.length)];
  return v === undefined || v === null ? null : String(v);
}

function brute(q: Query): Array<{ key: string; score: number; count: number }> {
  const agg = q.aggFunc ?? 'sum';
  const groups = new Map<string, { count: number; values: number[] }>();
  for (const e of fixture.events) {
    const f = q.filter ?? {};
    if (f.from !== undefined && e.timestamp < f.from) continue;
    if (f.to !== undefined && e.timestamp >= f.to) continue;
    if (f.event_type && !f.event_type.includes(e.event_type)) continue;
    const k = keyOf(e, q.groupBy);
    if (k === null) continue;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { count: 0, values: [] }));
    g.count++;
    if (e.value !== undefined && e.value !== null) g.values.push(e.value);
  }
  const out: Array<{ key: string; score: number; count: number }> = [];
  for (const [key, g] of groups) {
    if (agg !== 'count' && g.values.length === 0) continue;
    const sum = g.values.reduce((a, b) => a + b, 0);
    const score = agg === 'count' ? g.count : agg === 'sum' ? sum : agg === 'mean' ? sum / g.values.length : Math.max(...g.values);
    out.push({ key, score, count: g.count });
  }
  const desc = (q.order ?? 'desc') === 'desc';
  out.sort((a, b) => (a.score !== b.score ? (desc ? b.score - a.score : a.score - b.score) : a.key < b.key ? -1 : 1));
  return out.slice(0, q.n ?? 10);
}

async function check(q: Query): Promise<Array<Record<string, any>>> {
  const res = await postJson(`${fixture.queryUrl}/query/top-n`, q);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(typeof res.body.query_time_ms).toBe('number');
  expect(typeof res.body.timestamp).toBe('string');
  const agg = q.aggFunc ?? 'sum';
  const name = agg === 'count' && q.metric === undefined ? 'count' : `${q.metric ?? 'value'}_${agg}`;
  const want = brute(q);
  const got = res.body.results as Array<Record<string, any>>;
  expect(got.length).toBe(want.length);
  const byKey = new Map(want.map((w) => [w.key, w]));
  got.forEach((row, i) => {
    const w = want[i]!;
    const key = row[q.groupBy];
    expect(closeTo(row[name], w.score), `${name} at rank ${i}: ${row[name]} vs ${w.score}`).toBe(true);
    // Only a floating-point near-tie may put a different key at a rank.
    if (key !== w.key) expect(closeTo(row[name], w.score, 1e-12), `rank ${i}: ${key} vs ${w.key}`).toBe(true);
    else expect(row.count).toBe(w.count);
    if (byKey.has(key)) expect(row.count).toBe(byKey.get(key)!.count);
  });
  return got;
}

describe('POST /query/top-n', () => {
  it('answers the seed shape {groupBy: user_id, metric, n} with <metric>_sum, exact from per-shard top lists', async () => {
    const rows = await check({ groupBy: 'user_id', metric: 'value', n: 10 });
    expect(rows).toHaveLength(10);
    expect(Object.keys(rows[0]!).sort()).toEqual(['count', 'user_id', 'value_sum']);
  });

  it('ranks users by every aggFunc in both orders', async () => {
    for (const aggFunc of ['sum', 'count', 'mean', 'max'] as const) {
      for (const order of ['desc', 'asc'] as const) await check({ groupBy: 'user_id', metric: 'value', aggFunc, order, n: 25 });
    }
  });

  it('breaks count ties by key ascending (many users share a count)', async () => {
    const rows = await check({ groupBy: 'user_id', aggFunc: 'count', order: 'asc', n: 200 });
    expect(Object.keys(rows[0]!).sort()).toEqual(['count', 'user_id']);
    expect(new Set(rows.map((r) => r.count)).size).toBeLessThan(rows.length);
  });

  it('ranks event types and metadata keys, spread over every shard, by merged full groups', async () => {
    for (const groupBy of ['event_type', 'metadata.page', 'metadata.plan']) {
      for (const aggFunc of ['sum', 'count', 'mean', 'max'] as const) {
        await check({ groupBy, metric: 'value', aggFunc, n: 5 });
        await check({ groupBy, metric: 'value', aggFunc, n: 3, order: 'asc' });
      }
    }
  });

  it('applies the filter, and answers every group when n exceeds them', async () => {
    const from = Date.UTC(2026, 0, 1, 1);
    const to = Date.UTC(2026, 0, 1, 4);
    const rows = await check({ groupBy: 'event_type', metric: 'value', aggFunc: 'mean', n: 10_000, filter: { from, to, event_type: ['click', 'purchase'] } });
    expect(rows.map((r) => r.event_type).sort()).toEqual(['click', 'purchase']);
    await check({ groupBy: 'user_id', metric: 'value', n: 30, filter: { from, to } });
  });

  it('leaves out events whose key is missing: an unknown metadata key ranks nothing', async () => {
    const rows = await check({ groupBy: 'metadata.nosuchkey', metric: 'value', n: 5 });
    expect(rows).toEqual([]);
  });

  const BAD: Array<[unknown, string]> = [
    [[], '(body)'],
    ['"text"', '(body)'],
    [{ groupBy: 'user_id', limit: 3 }, 'limit'],
    [{ metric: 'value' }, 'groupBy'],
    [{ groupBy: 7 }, 'groupBy'],
    [{ groupBy: 'country' }, 'groupBy'],
    [{ groupBy: 'metadata.' }, 'groupBy'],
    [{ groupBy: 'metadata.a b' }, 'groupBy'],
    [{ groupBy: 'users.country' }, 'groupBy'],
    [{ groupBy: 'user_id', metric: 'price' }, 'metric'],
    [{ groupBy: 'user_id', metric: 3 }, 'metric'],
    [{ groupBy: 'user_id', aggFunc: 'median' }, 'aggFunc'],
    [{ groupBy: 'user_id', aggFunc: 1 }, 'aggFunc'],
    [{ groupBy: 'user_id', n: 0 }, 'n'],
    [{ groupBy: 'user_id', n: -1 }, 'n'],
    [{ groupBy: 'user_id', n: 10_001 }, 'n'],
    [{ groupBy: 'user_id', n: 2.5 }, 'n'],
    [{ groupBy: 'user_id', n: '10' }, 'n'],
    [{ groupBy: 'user_id', n: true }, 'n'],
    [{ groupBy: 'user_id', order: 'up' }, 'order'],
    [{ groupBy: 'user_id', filter: 'today' }, 'filter'],
    [{ groupBy: 'user_id', filter: { since: 1 } }, 'filter.since'],
    [{ groupBy: 'user_id', filter: { from: 'yesterday' } }, 'filter.from'],
    [{ groupBy: 'user_id', filter: { from: 2000, to: 1000 } }, 'filter.from'],
    [{ groupBy: 'user_id', filter: { event_type: [] } }, 'filter.event_type'],
  ];

  it('rejects every bad input with 400 naming the field', async () => {
    for (const [body, field] of BAD) {
      const res = await postJson(`${fixture.queryUrl}/query/top-n`, typeof body === 'string' ? body : JSON.stringify(body));
      expect(res.status, `${JSON.stringify(body)} → ${JSON.stringify(res.body)}`).toBe(400);
      const named = res.body.message.includes(field) || (res.body.errors ?? []).some((e: { field: string }) => e.field === field);
      expect(named, `${JSON.stringify(body)} should name ${field}: ${res.body.message}`).toBe(true);
    }
    const malformed = await postJson(`${fixture.queryUrl}/query/top-n`, '{"groupBy": ');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toBe('MALFORMED_JSON');
  });
});
