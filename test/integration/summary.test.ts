/**
 * GET /query/summary on the real engine (4 shards, 200,000 events, skewed users) against a brute
 * force computed here from the acknowledged events: counts, distinct users/event types, first/last
 * timestamp and rows held exact; mean and population stddev 1e-9 relative; min/max exact;
 * p25/p50/p75 within the documented digest rank error (two centroid widths: the fixture has atoms
 * and a gap, see docs/api/percentiles.md).
 *
 * Bad input (each must answer 400 with a message naming the parameter):
 * - unknown parameter `column`; a parameter given twice (`columns`)
 * - `columns` "price", "value,value", "value,,x"
 * - `from` "yesterday", 1.5; `to` garbage; `from` after `to`
 * - `event_type` / `user_id` empty list entries (",", "a,,b")
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectEveryQueryRejected, getJson } from '../helpers/engine-harness.js';
import { startQueryFixture, type QueryFixture } from '../helpers/query-fixture.js';
import { closeTo } from '../helpers/random-events.js';
import { rankError } from '../helpers/rank-error.js';

let fixture: QueryFixture;

beforeAll(async () => {
  fixture = await startQueryFixture();
});

afterAll(async () => {
  await fixture?.stop();
});

interface Params {
  from?: number;
  to?: number;
  event_type?: string[];
  user_id?: string[];
}

function bound(q: number): number {
  return Math.max(0.006, (2 * 2 * Math.PI * Math.sqrt(q * (1 - q))) / 200);
}


function brute(p: Params) {
  const evs = fixture.events.filter(
    (e) =>
      (p.from === undefined || e.timestamp >= p.from) &&
      (p.to === undefined || e.timestamp < p.to) &&
      (!p.event_type || p.event_type.includes(e.event_type)) &&
      (!p.user_id || p.user_id.includes(e.user_id)),
  );
  const values = evs.map((e) => e.value).filter((v): v is number => typeof v === 'number').sort((a, b) => a - b);
  const mean = values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
  const stddev = mean === null ? null : Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
  let first: number | null = null;
  let last: number | null = null;
  for (const e of evs) {
    if (first === null || e.timestamp < first) first = e.timestamp;
    if (last === null || e.timestamp > last) last = e.timestamp;
  }
  return {
    count: evs.length,
    null_count: evs.length - values.length,
    values,
    mean,
    stddev,
    min: values.length ? values[0]! : null,
    max: values.length ? values[values.length - 1]! : null,
    distinct_users: new Set(evs.map((e) => e.user_id)).size,
    distinct_event_types: new Set(evs.map((e) => e.event_type)).size,
    first_timestamp: first,
    last_timestamp: last,
  };
}

function url(p: Params & { columns?: string }): string {
  const qs = new URLSearchParams();
  if (p.columns) qs.set('columns', p.columns);
  if (p.from !== undefined) qs.set('from', String(p.from));
  if (p.to !== undefined) qs.set('to', new Date(p.to).toISOString());
  if (p.event_type) qs.set('event_type', p.event_type.join(','));
  if (p.user_id) qs.set('user_id', p.user_id.join(','));
  return `${fixture.queryUrl}/query/summary?${qs}`;
}

async function check(p: Params & { columns?: string }) {
  const res = await getJson(url(p));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(typeof res.body.query_time_ms).toBe('number');
  expect(typeof res.body.timestamp).toBe('string');
  const s = res.body.stats;
  const b = brute(p);
  expect(s).toMatchObject({
    count: b.count,
    column: 'value',
    null_count: b.null_count,
    value_count: b.values.length,
    min: b.min,
    max: b.max,
    distinct_users: b.distinct_users,
    distinct_event_types: b.distinct_event_types,
    first_timestamp: b.first_timestamp,
    last_timestamp: b.last_timestamp,
    rows_held: fixture.events.length,
  });
  expect(closeTo(s.mean, b.mean), `mean ${s.mean} vs ${b.mean}`).toBe(true);
  expect(closeTo(s.stddev, b.stddev), `stddev ${s.stddev} vs ${b.stddev}`).toBe(true);
  for (const [k, q] of [['p25', 0.25], ['p50', 0.5], ['p75', 0.75]] as const) {
    if (b.values.length === 0) expect(s[k]).toBeNull();
    else expect(rankError(b.values, s[k], q), k).toBeLessThanOrEqual(bound(q));
  }
  const { count, column, value_count, distinct_users, distinct_event_types, first_timestamp, last_timestamp, rows_held, columns, ...head } = s;
  expect(columns.value).toEqual({ count: value_count, ...head });
  return s;
}

describe('GET /query/summary', () => {
  it('summarises every event against the brute force', async () => {
    await check({});
    await check({ columns: 'value' });
  });

  it('applies the filter parameters but counts every held row in rows_held', async () => {
    const t0 = fixture.events.reduce((m, e) => Math.min(m, e.timestamp), Infinity);
    await check({ from: t0 + 3_600_000, to: t0 + 2.5 * 3_600_000 });
    await check({ event_type: ['purchase', 'signup'] });
    await check({ user_id: ['user-0', 'user-1', 'user-19999'] });
  });

  it('answers counts 0 and nulls when nothing matches', async () => {
    const s = await check({ user_id: ['nobody'] });
    expect(s).toMatchObject({ count: 0, mean: null, stddev: null, p50: null, distinct_users: 0, first_timestamp: null });
  });

  const BAD: Array<[string, string]> = [
    ['column=value', 'column'],
    ['columns=value&columns=value', 'columns'],
    ['columns=price', 'columns'],
    ['columns=value,value', 'columns'],
    ['columns=value,,x', 'columns'],
    ['from=yesterday', 'from'],
    ['from=1.5', 'from'],
    ['to=2026-13-45', 'to'],
    ['from=2000&to=1000', 'from'],
    ['event_type=,', 'event_type'],
    ['user_id=a,,b', 'user_id'],
  ];

  it('rejects every bad input with 400 naming the parameter', async () => {
    await expectEveryQueryRejected(`${fixture.queryUrl}/query/summary`, BAD);
  });
});
