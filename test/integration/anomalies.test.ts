/**
 * GET /query/anomalies on the real engine (4 shards, 200,000 events, skewed users; ~1% of values
 * carry a +1e6 outlier) against a two-pass brute force computed here from the acknowledged events:
 * mean/stddev 1e-9 relative, the anomaly count exact, the top `limit` rows in |z| order.
 *
 * Bad input (each must answer 400 with a message naming the parameter):
 * - unknown parameter `window`; a parameter given twice (`threshold`)
 * - `threshold` 0, −1, "abc", "Infinity"
 * - `limit` 0, 10,001, 2.5, "ten"
 * - `column` "price"
 * - `groupBy` "nope", "metadata." (bad key), unknown `<table>.<column>`, empty
 * - `ddof` 2, "x"
 * - `from` "yesterday", 1.5; `to` garbage; `from` after `to`
 * - `event_type` / `user_id` empty list entries (",")
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectEveryQueryRejected, getJson } from '../helpers/engine-harness.js';
import { startQueryFixture, type QueryFixture } from '../helpers/query-fixture.js';
import { closeTo, type TestEvent } from '../helpers/random-events.js';

let fixture: QueryFixture;

beforeAll(async () => {
  fixture = await startQueryFixture();
});

afterAll(async () => {
  await fixture?.stop();
});

interface Params {
  threshold?: number;
  limit?: number;
  groupBy?: string;
  ddof?: 0 | 1;
  from?: number;
  to?: number;
  event_type?: string[];
  user_id?: string[];
}

function groupOf(e: TestEvent, dim: string | undefined): string | null {
  if (dim === undefined) return null;
  if (dim === 'event_type' || dim === 'user_id') return e[dim];
  const v = e.metadata?.[dim.slice('metadata.'.length)];
  return v === undefined || v === null ? null : String(v);
}

interface Hit {
  e: TestEvent;
  z: number;
  group: string | null;
}

function brute(p: Params) {
  const threshold = p.threshold ?? 3;
  const ddof = p.ddof ?? 1;
  const rows = fixture.events.filter(
    (e) =>
      e.value !== undefined &&
      e.value !== null &&
      (p.from === undefined || e.timestamp >= p.from) &&
      (p.to === undefined || e.timestamp < p.to) &&
      (!p.event_type || p.event_type.includes(e.event_type)) &&
      (!p.user_id || p.user_id.includes(e.user_id)),
  );
  const groups = new Map<string | null, number[]>();
  for (const e of rows) {
    const k = groupOf(e, p.groupBy);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(e.value!);
  }
  const stats = new Map<string | null, { mean: number; stddev: number | null; count: number }>();
  for (const [k, vs] of groups) {
    const mean = vs.reduce((a, b) => a + b, 0) / vs.length;
    const ss = vs.reduce((a, v) => a + (v - mean) ** 2, 0);
    stats.set(k, { mean, stddev: vs.length - ddof > 0 ? Math.sqrt(ss / (vs.length - ddof)) : null, count: vs.length });
  }
  const hits: Hit[] = [];
  let borderline = 0;
  for (const e of rows) {
    const g = groupOf(e, p.groupBy);
    const s = stats.get(g)!;
    if (s.count < 2 || !s.stddev) continue;
    const z = (e.value! - s.mean) / s.stddev;
    if (Math.abs(Math.abs(z) - threshold) <= 1e-9 * threshold) borderline++;
    if (Math.abs(z) > threshold) hits.push({ e, z, group: g });
  }
  expect(borderline, 'no |z| may sit on the threshold (either side would be right)').toBe(0);
  hits.sort((a, b) => Math.abs(b.z) - Math.abs(a.z) || a.e.timestamp - b.e.timestamp || (a.e.user_id < b.e.user_id ? -1 : a.e.user_id > b.e.user_id ? 1 : 0) || (a.e.event_type < b.e.event_type ? -1 : a.e.event_type > b.e.event_type ? 1 : 0));
  return { stats, hits };
}

function url(p: Params): string {
  const q = new URLSearchParams({ column: 'value' });
  for (const [k, v] of Object.entries(p)) q.set(k, Array.isArray(v) ? v.join(',') : String(v));
  return `${fixture.queryUrl}/query/anomalies?${q}`;
}

async function check(p: Params): Promise<any> {
  const res = await getJson(url(p));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const body = res.body;
  expect(typeof body.query_time_ms).toBe('number');
  expect(typeof body.timestamp).toBe('string');
  expect(body.stddev_kind).toBe((p.ddof ?? 1) === 1 ? 'sample' : 'population');
  expect(body.threshold).toBe(p.threshold ?? 3);
  const { stats, hits } = brute(p);
  if (p.groupBy === undefined) {
    const s = stats.get(null);
    expect(closeTo(body.mean, s?.mean ?? null)).toBe(true);
    expect(closeTo(body.stddev, s?.stddev ?? null)).toBe(true);
  } else {
    expect(body.groups.length).toBe(stats.size);
    for (const g of body.groups) {
      const s = stats.get(g[p.groupBy])!;
      expect(g.count).toBe(s.count);
      expect(closeTo(g.mean, s.mean)).toBe(true);
      expect(closeTo(g.stddev, s.stddev)).toBe(true);
    }
  }
  expect(body.count).toBe(hits.length);
  const top = hits.slice(0, p.limit ?? 100);
  expect(body.anomalies.length).toBe(top.length);
  body.anomalies.forEach((a: any, i: number) => {
    const w = top[i]!;
    expect(closeTo(a.z_score, w.z), `z at ${i}`).toBe(true);
    if (a.timestamp !== w.e.timestamp || a.user_id !== w.e.user_id) {
      // only rows whose |z| ties in exact arithmetic may round into another order
      expect(closeTo(Math.abs(a.z_score), Math.abs(w.z), 1e-12), `row ${i}`).toBe(true);
    } else {
      expect([a.event_type, a.value]).toEqual([w.e.event_type, w.e.value]);
      expect(a.metadata).toEqual(w.e.metadata);
      if (p.groupBy !== undefined) expect(a[p.groupBy] ?? null).toBe(w.group);
    }
    if (i > 0) expect(Math.abs(a.z_score)).toBeLessThanOrEqual(Math.abs(body.anomalies[i - 1].z_score));
  });
  return body;
}

describe('GET /query/anomalies', () => {
  it('answers the seed shape (column, threshold) with sample stddev, |z|-sorted rows and the exact count', async () => {
    const body = await check({ threshold: 3 });
    expect(body.count).toBeGreaterThan(100); // the +1e6 outliers, more than the default limit
    expect(body.anomalies).toHaveLength(100);
    expect(body.ddof).toBe(1);
  });

  it('uses population stddev with ddof=0', async () => {
    await check({ threshold: 2, ddof: 0, limit: 10 });
  });

  it('counts every anomaly exactly while the rows are cut at `limit`', async () => {
    const body = await check({ threshold: 0.1, limit: 7 });
    expect(body.count).toBeGreaterThan(7);
    await check({ threshold: 0.05, limit: 10_000 });
  });

  it('scores per group with groupBy=event_type', async () => {
    const body = await check({ groupBy: 'event_type', threshold: 2.5, limit: 50 });
    expect(body.groups.length).toBe(6);
  });

  it('scores per group with groupBy=user_id (many tiny groups; fewer than two values → none)', async () => {
    await check({ groupBy: 'user_id', threshold: 1.37, limit: 200 });
  });

  it('scores per group with groupBy=metadata.plan, events without the key forming the null group', async () => {
    const body = await check({ groupBy: 'metadata.plan', threshold: 2, limit: 10_000 });
    expect(body.groups.map((g: Record<string, unknown>) => g['metadata.plan'])).toEqual(['free', 'pro', null]);
    expect(body.anomalies.some((a: Record<string, unknown>) => a['metadata.plan'] === null)).toBe(true);
  });

  it('applies from/to/event_type/user_id filter parameters to both phases', async () => {
    const from = Date.UTC(2026, 0, 1, 2);
    const to = Date.UTC(2026, 0, 1, 5);
    await check({ threshold: 1, from, to, event_type: ['click', 'purchase'], limit: 20 });
    await check({ threshold: 0.5, user_id: ['user-0', 'user-1', 'user-2'], limit: 1000 });
  });

  it('answers no anomalies (not an error) when nothing is beyond the threshold or nothing matches', async () => {
    const far = await check({ threshold: 1e9 });
    expect(far.anomalies).toEqual([]);
    const none = await check({ event_type: ['no_such_type'] });
    expect(none).toMatchObject({ anomalies: [], count: 0, mean: null, stddev: null });
  });

  const BAD: Array<[string, string]> = [
    ['window=1m', 'window'],
    ['threshold=1&threshold=2', 'threshold'],
    ['threshold=0', 'threshold'],
    ['threshold=-1', 'threshold'],
    ['threshold=abc', 'threshold'],
    ['threshold=Infinity', 'threshold'],
    ['limit=0', 'limit'],
    ['limit=10001', 'limit'],
    ['limit=2.5', 'limit'],
    ['limit=ten', 'limit'],
    ['column=price', 'column'],
    ['groupBy=nope', 'groupBy'],
    ['groupBy=metadata.', 'groupBy'],
    ['groupBy=users.country', 'groupBy'],
    ['groupBy=', 'groupBy'],
    ['ddof=2', 'ddof'],
    ['ddof=x', 'ddof'],
    ['from=yesterday', 'from'],
    ['from=1.5', 'from'],
    ['to=2026-13-45', 'to'],
    ['from=2000&to=1000', 'from'],
    ['event_type=,', 'event_type'],
    ['user_id=a,,b', 'user_id'],
  ];

  it('rejects every bad input with 400 naming the parameter', async () => {
    await expectEveryQueryRejected(`${fixture.queryUrl}/query/anomalies`, BAD);
  });
});
