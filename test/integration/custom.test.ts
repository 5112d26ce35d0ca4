/**
 * Custom plugins end to end: the real engine (4 shards, 200,000 events, skewed users) runs the
 * two shipped plugins (python/engine_polars/custom/revenue_by_plan.py: sum by `plan`;
 * top_pages.py: top 10 pages by views) on every shard; the merged answers are checked against a
 * brute force over `fixture.events`.
 *
 * Bad input:
 *   - name with characters outside [a-z_][a-z0-9_]{0,63}, or too long → 404
 *   - a well-formed name with no module in the plugin folder → 404 (before any fan-out)
 *   - body not an object → 400 `(body)`; unknown field → 400 naming it (code is never accepted)
 *   - `params` not an object (array, string, number) → 400 `params`; over 64 KiB → 400 `params`
 *   - bad `filter` (`from` not a time, unknown key, bad dimensions) → 400 naming `filter.…`
 *   - params the plugin rejects (BadParams) → 400 `CUSTOM_BAD_PARAMS` with the plugin's message
 *   (a plugin that raises → 500 `CUSTOM_FAILED`, a bad result → 500 `CUSTOM_BAD_RESULT`: covered by
 *   python/tests/test_custom.py, since the shipped plugins do not fail)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson } from '../helpers/engine-harness.js';
import { startQueryFixture, type QueryFixture } from '../helpers/query-fixture.js';
import { closeTo, type TestEvent } from '../helpers/random-events.js';

let fixture: QueryFixture;

beforeAll(async () => {
  fixture = await startQueryFixture();
}, 180_000);

afterAll(async () => {
  await fixture?.stop();
});

const plan = (e: TestEvent) => (e.metadata?.plan as string | undefined) ?? null;
const page = (e: TestEvent) => (e.metadata?.page as string | undefined) ?? null;

function revenueBrute(events: TestEvent[]) {
  const out = new Map<string | null, { events: number; revenue: number }>();
  for (const e of events) {
    const g = out.get(plan(e)) ?? { events: 0, revenue: 0 };
    g.events++;
    if (e.value !== undefined && e.value !== null) g.revenue += e.value;
    out.set(plan(e), g);
  }
  return out;
}

function expectRevenue(results: any[], events: TestEvent[]): void {
  const brute = revenueBrute(events);
  // sorted by plan ascending, the null group last
  const keys = [...brute.keys()].sort((a, b) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1));
  expect(results.map((r) => r.plan)).toEqual(keys);
  for (const r of results) {
    const b = brute.get(r.plan)!;
    expect(r.events).toBe(b.events);
    expect(closeTo(r.revenue, b.revenue)).toBe(true);
  }
}

describe('custom plugins', () => {
  it('lists the shipped plugins with their merge rules', async () => {
    const res = await getJson(`${fixture.queryUrl}/query/custom`);
    expect(res.status).toBe(200);
    const names = res.body.functions.map((f: any) => f.name);
    expect(names).toEqual(expect.arrayContaining(['revenue_by_plan', 'top_pages']));
    expect(res.body.errors).toEqual([]);
  });

  it('revenue_by_plan: sum by plan over every shard equals the brute force', async () => {
    const res = await postJson(`${fixture.queryUrl}/query/custom/revenue_by_plan`, {});
    expect(res.status).toBe(200);
    expect(res.body.merge).toEqual({ kind: 'sum', keys: ['plan'] });
    expect(typeof res.body.query_time_ms).toBe('number');
    expectRevenue(res.body.results, fixture.events);
  });

  it('revenue_by_plan with params and the common filter', async () => {
    const from = fixture.events.reduce((m, e) => Math.min(m, e.timestamp), Infinity) + 3_600_000;
    const to = from + 2 * 3_600_000;
    const res = await postJson(`${fixture.queryUrl}/query/custom/revenue_by_plan`, {
      params: { event_types: ['purchase', 'checkout'] },
      filter: { from, to: new Date(to).toISOString(), event_type: ['purchase', 'page_view'] },
    });
    expect(res.status).toBe(200);
    expectRevenue(
      res.body.results,
      fixture.events.filter((e) => e.timestamp >= from && e.timestamp < to && e.event_type === 'purchase'),
    );
  });

  it('top_pages: exact top 10 by views (ties by page) with pages spread over every shard', async () => {
    for (const body of [{}, { params: { event_type: 'click' } }, { filter: { dimensions: { 'metadata.plan': ['pro'] } } }]) {
      const res = await postJson(`${fixture.queryUrl}/query/custom/top_pages`, body);
      expect(res.status).toBe(200);
      const keep = (e: TestEvent) =>
        (!('params' in body) || e.event_type === 'click') && (!('filter' in body) || plan(e) === 'pro');
      const groups = new Map<string, { views: number; value_sum: number }>();
      for (const e of fixture.events) {
        const p = page(e);
        if (p === null || !keep(e)) continue;
        const g = groups.get(p) ?? { views: 0, value_sum: 0 };
        g.views++;
        if (e.value !== undefined && e.value !== null) g.value_sum += e.value;
        groups.set(p, g);
      }
      const expected = [...groups].sort((a, b) => b[1].views - a[1].views || (a[0] < b[0] ? -1 : 1)).slice(0, 10);
      expect(res.body.results.map((r: any) => [r.page, r.views])).toEqual(expected.map(([p, g]) => [p, g.views]));
      res.body.results.forEach((r: any, i: number) => expect(closeTo(r.value_sum, expected[i]![1].value_sum)).toBe(true));
    }
  });

  it('answers 404 for names that are malformed or not installed', async () => {
    for (const name of ['nope', 'Revenue', 'a-b', 'x'.repeat(65), '..%2F..%2Fetc', '__init__']) {
      const res = await postJson(`${fixture.queryUrl}/query/custom/${name}`, {});
      expect(res.status, name).toBe(404);
    }
  });

  it('rejects bad input with a 400 naming the field', async () => {
    const url = `${fixture.queryUrl}/query/custom/revenue_by_plan`;
    const cases: Array<[unknown, string]> = [
      [[1], '(body)'],
      [{ code: 'import os' }, 'code'],
      [{ params: [1] }, 'params'],
      [{ params: 'x' }, 'params'],
      [{ params: 5 }, 'params'],
      [{ params: { blob: 'x'.repeat(70_000) } }, 'params'],
      [{ filter: { from: 'yesterday' } }, 'filter.from'],
      [{ filter: { bogus: 1 } }, 'filter.bogus'],
      [{ filter: { dimensions: { 'users.country': ['DE'] } } }, 'filter.dimensions.users.country'],
    ];
    for (const [body, field] of cases) {
      const res = await postJson(url, body);
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      expect(res.body.errors[0].field).toBe(field);
    }
  });

  it('passes a plugin’s own parameter error on as a 400 with a stable code', async () => {
    const res = await postJson(`${fixture.queryUrl}/query/custom/revenue_by_plan`, { params: { event_types: 'purchase' } });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('CUSTOM_BAD_PARAMS');
    expect(res.body.message).toContain('`event_types` must be a list of strings');
  });
});
