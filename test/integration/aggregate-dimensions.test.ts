/**
 * POST /query/aggregate grouped by `metadata.<key>` and by `window` (with `windowSize`), on the
 * real engine (4 shards, 200,000 events, skewed users), against a brute force over the
 * acknowledged events: counts exact, floats 1e-9 relative.
 *
 * Bad input, each a 400 whose message names the field:
 *   groupBy "window" without windowSize              → windowSize
 *   windowSize without a "window" group key          → windowSize
 *   windowSize "1x", 60000 (a number), "0ms"         → windowSize
 *   groupBy "metadata." / "metadata.a b" / "country" / 7 → groupBy
 *   duplicate groupBy entries ("window" twice)       → groupBy
 *   too many windows over the filter range (1 s over 30 days) → windowSize
 *   too many windows over the data range (1 ms over 6 h)      → windowSize
 *   unknown field ("window_ms")                      → window_ms
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/engine-harness.js';
import { startQueryFixture, type QueryFixture } from '../helpers/query-fixture.js';
import { closeTo, type TestEvent } from '../helpers/random-events.js';

let fx: QueryFixture;

beforeAll(async () => {
  fx = await startQueryFixture();
}, 180_000);

afterAll(async () => {
  await fx?.stop();
});

function keyOf(e: TestEvent, k: string, windowMs: number): string | number | null {
  if (k === 'window') return Math.floor(e.timestamp / windowMs) * windowMs;
  if (k.startsWith('metadata.')) {
    const v = e.metadata?.[k.slice('metadata.'.length)];
    return v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);
  }
  return (e as unknown as Record<string, string>)[k]!;
}

function cmp(a: string | number | null, b: string | number | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return typeof a === 'number' ? a - (b as number) : a < b ? -1 : 1;
}

async function check(groupBy: string[], windowMs = 0, filter: { from?: number; to?: number; event_type?: string[] } = {}) {
  const groups = new Map<string, { keys: Array<string | number | null>; count: number; values: number[] }>();
  for (const e of fx.events) {
    if (filter.from !== undefined && e.timestamp < filter.from) continue;
    if (filter.to !== undefined && e.timestamp >= filter.to) continue;
    if (filter.event_type && !filter.event_type.includes(e.event_type)) continue;
    const keys = groupBy.map((k) => keyOf(e, k, windowMs));
    const id = JSON.stringify(keys);
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { keys, count: 0, values: [] }));
    g.count++;
    if (typeof e.value === 'number') g.values.push(e.value);
  }
  const want = [...groups.values()].sort((a, b) => {
    for (let i = 0; i < a.keys.length; i++) {
      const c = cmp(a.keys[i]!, b.keys[i]!);
      if (c) return c;
    }
    return 0;
  });
  const body: Record<string, unknown> = { groupBy, metrics: ['value'], filter };
  if (windowMs) body.windowSize = `${windowMs}ms`;
  const res = await postJson(`${fx.queryUrl}/query/aggregate`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const rows = res.body.results as Array<Record<string, any>>;
  expect(rows.length).toBe(want.length);
  const wrong: string[] = [];
  rows.forEach((row, i) => {
    const w = want[i]!;
    groupBy.forEach((k, j) => {
      if (k === 'window') {
        if (row.window_start !== w.keys[j] || row.window_end !== (w.keys[j] as number) + windowMs) wrong.push(`row ${i}: window ${row.window_start}`);
      } else if (row[k] !== w.keys[j]) wrong.push(`row ${i}: ${k} ${row[k]} vs ${w.keys[j]}`);
    });
    if (row.count !== w.count || row.value_count !== w.values.length) wrong.push(`row ${i}: counts ${row.count}/${row.value_count}`);
    const n = w.values.length;
    let sum = 0;
    for (const v of w.values) sum += v;
    const mean = n ? sum / n : null;
    let m2 = 0;
    for (const v of w.values) m2 += (v - mean!) ** 2;
    const expected: Record<string, number | null> = {
      value_sum: n ? sum : null,
      value_mean: mean,
      value_min: n ? w.values.reduce((a, b) => (b < a ? b : a)) : null,
      value_max: n ? w.values.reduce((a, b) => (b > a ? b : a)) : null,
      value_stddev: n ? Math.sqrt(m2 / n) : null,
    };
    for (const [f, v] of Object.entries(expected)) if (!closeTo(row[f], v)) wrong.push(`row ${i}: ${f} ${row[f]} vs ${v}`);
  });
  expect(wrong.slice(0, 10)).toEqual([]);
  return rows;
}

describe('POST /query/aggregate by metadata and window', () => {
  it('groups by metadata.plan with the events lacking it as the null group (last)', async () => {
    const rows = await check(['metadata.plan']);
    expect(rows.map((r) => r['metadata.plan'])).toEqual(['free', 'pro', null]);
  });

  it('groups by metadata.page and event_type', async () => {
    await check(['metadata.page', 'event_type']);
  });

  it('groups by a metadata key no event has: one null group', async () => {
    const rows = await check(['metadata.nope']);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.count).toBe(fx.events.length);
  });

  it('groups by ["window", "event_type"] with windowSize "1h" (rows carry window_start and window_end)', async () => {
    const res = await postJson(`${fx.queryUrl}/query/aggregate`, { groupBy: ['window', 'event_type'], windowSize: '1h' });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body.results[0]).slice(0, 4)).toEqual(['window_start', 'window_end', 'event_type', 'count']);
    await check(['window', 'event_type'], 3_600_000);
  });

  it('groups by 7-minute windows (not dividing an hour) and metadata.plan under a time and event_type filter', async () => {
    await check(['metadata.plan', 'window'], 7 * 60_000, { from: Date.UTC(2026, 0, 1, 0, 30), to: Date.UTC(2026, 0, 1, 4, 2, 3), event_type: ['click', 'page_view'] });
  });

  it('groups by 1-minute windows and user_id', async () => {
    await check(['window', 'user_id'], 60_000);
  });

  it('groups by metadata.plan and user_id (finished on the shards), the null plan last', async () => {
    const rows = await check(['metadata.plan', 'user_id'], 0, { event_type: ['click', 'purchase'] });
    expect(rows.at(-1)!['metadata.plan']).toBeNull();
  });

  const bad: Array<[string, unknown, string]> = [
    ['a window group key without windowSize', { groupBy: ['window'] }, 'windowSize'],
    ['windowSize without a window group key', { groupBy: ['event_type'], windowSize: '1h' }, 'windowSize'],
    ['windowSize "1x"', { groupBy: ['window'], windowSize: '1x' }, 'windowSize'],
    ['a numeric windowSize', { groupBy: ['window'], windowSize: 60000 }, 'windowSize'],
    ['windowSize "0ms"', { groupBy: ['window'], windowSize: '0ms' }, 'windowSize'],
    ['groupBy "metadata."', { groupBy: ['metadata.'] }, 'groupBy'],
    ['groupBy "metadata.a b"', { groupBy: ['metadata.a b'] }, 'groupBy'],
    ['an unknown groupBy', { groupBy: ['country'] }, 'groupBy'],
    ['a numeric groupBy entry', { groupBy: [7] }, 'groupBy'],
    ['a duplicate groupBy entry', { groupBy: ['window', 'window'], windowSize: '1h' }, 'groupBy'],
    ['too many windows over the filter range', { groupBy: ['window'], windowSize: '1s', filter: { from: 0, to: 30 * 86_400_000 } }, 'windowSize'],
    ['too many windows over the data range', { groupBy: ['window'], windowSize: '1ms' }, 'windowSize'],
    ['an unknown field', { groupBy: ['window'], window_ms: 5 }, 'window_ms'],
  ];
  for (const [what, body, field] of bad) {
    it(`rejects ${what} with 400 naming \`${field}\``, async () => {
      const res = await postJson(`${fx.queryUrl}/query/aggregate`, body);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.message).toContain(field);
    });
  }
});
