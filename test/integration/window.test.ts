/**
 * POST /query/window on the real engine (4 shards, 200,000 events, skewed users) against a brute
 * force computed here from the acknowledged events: counts exact, floats 1e-9 relative,
 * percentiles within the documented digest error (docs/api/window.md: rank error ≤ two centroid
 * widths 4π√(q(1−q))/δ + 1/n).
 *
 * Bad input, each a 400 whose message names the field:
 *   body not an object ([] / "x")                 → (body)
 *   unknown field (`window`)                      → window
 *   windowSize missing, a number, "1x", "0s", "1.0005s" (not whole ms), "400d" (over 366 d) → windowSize
 *   slide "1x", slide longer than windowSize      → slide
 *   windowSize not a multiple of slide ("1m" / "7s") → windowSize
 *   more than 1,000 panes per window ("1h" / "1s") → slide
 *   groupBy unknown ("country"), a number, "metadata.", a list of two → groupBy
 *   metric unknown ("price")                      → metric
 *   aggFunc unknown ("median"), a number          → aggFunc
 *   filter not an object, unknown filter field, bad filter.from, from after to → filter.*
 *   too many windows over the filter range (1 s windows over 30 days) → windowSize
 *   too many windows over the data range (1 ms windows over 6 h, no filter) → windowSize
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/engine-harness.js';
import { startQueryFixture, type QueryFixture } from '../helpers/query-fixture.js';
import { closeTo, type TestEvent } from '../helpers/random-events.js';
import { rankError } from '../helpers/rank-error.js';

let fx: QueryFixture;

beforeAll(async () => {
  fx = await startQueryFixture();
}, 180_000);

afterAll(async () => {
  await fx?.stop();
});

type Agg = 'sum' | 'mean' | 'count' | 'min' | 'max' | 'stddev' | 'p50' | 'p95' | 'p99';
const Q: Partial<Record<Agg, number>> = { p50: 0.5, p95: 0.95, p99: 0.99 };
const MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const ms = (d: string) => Number(/^\d+/.exec(d)![0]) * MS[/[a-z]+$/.exec(d)![0]]!;

interface Req {
  windowSize: string;
  slide?: string;
  groupBy?: string;
  metric?: string;
  aggFunc: Agg;
  filter?: { from?: number | string; to?: number | string; event_type?: string[] };
}

function dimension(e: TestEvent, key: string): string | null {
  if (key.startsWith('metadata.')) {
    const v = e.metadata?.[key.slice('metadata.'.length)];
    return v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);
  }
  return (e as unknown as Record<string, string>)[key] ?? null;
}

function bruteWindows(events: TestEvent[], req: Req): Map<string, { start: number; key: string | null; count: number; values: number[] }> {
  const size = ms(req.windowSize);
  const slide = req.slide ? ms(req.slide) : size;
  const from = req.filter?.from === undefined ? -Infinity : new Date(req.filter.from).getTime();
  const to = req.filter?.to === undefined ? Infinity : new Date(req.filter.to).getTime();
  const out = new Map<string, { start: number; key: string | null; count: number; values: number[] }>();
  for (const e of events) {
    if (e.timestamp < from || e.timestamp >= to) continue;
    if (req.filter?.event_type && !req.filter.event_type.includes(e.event_type)) continue;
    const key = req.groupBy ? dimension(e, req.groupBy) : null;
    // Every window [w, w + size) with w a multiple of slide that holds the event.
    for (let w = Math.floor(e.timestamp / slide) * slide; w > e.timestamp - size; w -= slide) {
      const id = JSON.stringify([w, key]);
      let g = out.get(id);
      if (!g) out.set(id, (g = { start: w, key, count: 0, values: [] }));
      g.count++;
      if (typeof e.value === 'number') g.values.push(e.value);
    }
  }
  return out;
}

function bruteValue(values: number[], agg: Agg): number | null {
  const n = values.length;
  if (agg === 'count') return n;
  if (n === 0) return null;
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / n;
  if (agg === 'sum') return sum;
  if (agg === 'mean') return mean;
  if (agg === 'min') return values.reduce((a, b) => (b < a ? b : a));
  if (agg === 'max') return values.reduce((a, b) => (b > a ? b : a));
  let m2 = 0;
  for (const v of values) m2 += (v - mean) ** 2;
  return Math.sqrt(m2 / n);
}


const rankBound = (q: number, n: number) => (4 * Math.PI * Math.sqrt(q * (1 - q))) / 200 + 1 / n;

async function check(req: Req): Promise<Array<Record<string, any>>> {
  // Brute force first, so the keep-alive connection is not left idle while it runs.
  const want = bruteWindows(fx.events, req);
  const sortedKeys = [...want.values()].sort((a, b) => a.start - b.start || (a.key === b.key ? 0 : a.key === null ? 1 : b.key === null ? -1 : a.key < b.key ? -1 : 1));
  if (Q[req.aggFunc] !== undefined) for (const w of sortedKeys) w.values.sort((a, b) => a - b);
  const res = await postJson(`${fx.queryUrl}/query/window`, req);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(typeof res.body.query_time_ms).toBe('number');
  expect(typeof res.body.timestamp).toBe('string');
  const rows = res.body.results as Array<Record<string, any>>;
  expect(rows.length).toBe(want.size);
  const col = `${req.metric ?? 'value'}_${req.aggFunc}`;
  const size = ms(req.windowSize);
  // Mismatches are collected and asserted once: an expect per cell costs more than the query.
  const wrong: string[] = [];
  rows.forEach((row, i) => {
    const w = sortedKeys[i]!;
    const at = `row ${i} (${w.start}, ${w.key})`;
    if (row.window_start !== w.start || row.window_end !== w.start + size) wrong.push(`${at}: window ${row.window_start}..${row.window_end}`);
    if (req.groupBy && row[req.groupBy] !== w.key) wrong.push(`${at}: group ${row[req.groupBy]}`);
    if (row.count !== w.count) wrong.push(`${at}: count ${row.count} vs ${w.count}`);
    const q = Q[req.aggFunc];
    if (q === undefined) {
      const want = bruteValue(w.values, req.aggFunc);
      if (!closeTo(row[col], want)) wrong.push(`${at}: ${col} ${row[col]} vs ${want}`);
    } else if (w.values.length === 0) {
      if (row[col] !== null) wrong.push(`${at}: ${col} ${row[col]} for no values`);
    } else {
      const err = rankError(w.values, row[col], q);
      if (!(err <= rankBound(q, w.values.length))) wrong.push(`${at}: ${col} rank error ${err} (n=${w.values.length})`);
    }
  });
  expect(wrong.slice(0, 10)).toEqual([]);
  return rows;
}

describe('POST /query/window', () => {
  it('tumbling 1m windows by event_type, sum (the seed shape: group, window start, value_sum)', async () => {
    const rows = await check({ windowSize: '1m', groupBy: 'event_type', metric: 'value', aggFunc: 'sum' });
    expect(Object.keys(rows[0]!)).toEqual(['window_start', 'window_end', 'event_type', 'count', 'value_sum']);
    expect(rows.reduce((n, r) => n + r.count, 0)).toBe(fx.events.length);
  });

  for (const aggFunc of ['mean', 'count', 'min', 'max', 'stddev'] as const) {
    it(`tumbling 1h windows, no grouping, ${aggFunc}`, async () => {
      await check({ windowSize: '1h', aggFunc });
    });
  }

  it('hopping 1h windows sliding by 30m, grouped by metadata.plan (missing → null group), stddev', async () => {
    const rows = await check({ windowSize: '1h', slide: '30m', groupBy: 'metadata.plan', metric: 'value', aggFunc: 'stddev' });
    expect(rows.some((r) => r['metadata.plan'] === null)).toBe(true);
  });

  it('hopping 10m windows sliding by 1m with an ISO time range and event_type filter, mean', async () => {
    const t0 = Date.UTC(2026, 0, 1, 1, 7, 13);
    await check({ windowSize: '10m', slide: '1m', aggFunc: 'mean', groupBy: 'user_id', filter: { from: new Date(t0).toISOString(), to: t0 + 47 * 60_000, event_type: ['click', 'purchase'] } });
  });

  it('slide equal to windowSize is tumbling', async () => {
    await check({ windowSize: '30m', slide: '30m', aggFunc: 'max', groupBy: 'event_type' });
  });

  it('takes groupBy as a one-entry list too (as /query/aggregate does)', async () => {
    const a = await postJson(`${fx.queryUrl}/query/window`, { windowSize: '1h', groupBy: ['metadata.page'], aggFunc: 'min' });
    const b = await postJson(`${fx.queryUrl}/query/window`, { windowSize: '1h', groupBy: 'metadata.page', aggFunc: 'min' });
    expect(a.status).toBe(200);
    expect(a.body.results).toEqual(b.body.results);
    expect(a.body.results.length).toBeGreaterThan(6 * 20);
  });

  for (const aggFunc of ['p50', 'p95', 'p99'] as const) {
    it(`percentile ${aggFunc} per 1h window and event_type within the digest error`, async () => {
      await check({ windowSize: '1h', groupBy: 'event_type', aggFunc });
    });
  }

  it('percentile p95 over hopping 2h windows sliding by 10m (12 panes × 4 shards of digests merged per window)', async () => {
    await check({ windowSize: '2h', slide: '10m', aggFunc: 'p95' });
  });

  it('answers [] when the filter matches nothing', async () => {
    const res = await postJson(`${fx.queryUrl}/query/window`, { windowSize: '1m', aggFunc: 'p99', filter: { from: 0, to: 1000 } });
    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([]);
  });

  const bad: Array<[string, unknown, string]> = [
    ['a body that is not an object', [], 'body'],
    ['an unknown field', { windowSize: '1m', window: '1m' }, 'window'],
    ['a missing windowSize', { aggFunc: 'sum' }, 'windowSize'],
    ['a numeric windowSize', { windowSize: 60000 }, 'windowSize'],
    ['windowSize "1x"', { windowSize: '1x' }, 'windowSize'],
    ['windowSize "0s"', { windowSize: '0s' }, 'windowSize'],
    ['windowSize not whole ms', { windowSize: '1.0005s' }, 'windowSize'],
    ['windowSize over 366 days', { windowSize: '400d' }, 'windowSize'],
    ['slide "1x"', { windowSize: '1m', slide: '1x' }, 'slide'],
    ['slide longer than windowSize', { windowSize: '1m', slide: '2m' }, 'slide'],
    ['windowSize not a multiple of slide', { windowSize: '1m', slide: '7s' }, 'windowSize'],
    ['more than 1,000 panes per window', { windowSize: '1h', slide: '1s' }, 'slide'],
    ['an unknown groupBy', { windowSize: '1m', groupBy: 'country' }, 'groupBy'],
    ['a numeric groupBy', { windowSize: '1m', groupBy: 3 }, 'groupBy'],
    ['groupBy "metadata."', { windowSize: '1m', groupBy: 'metadata.' }, 'groupBy'],
    ['groupBy with two dimensions', { windowSize: '1m', groupBy: ['event_type', 'user_id'] }, 'groupBy'],
    ['an unknown metric', { windowSize: '1m', metric: 'price' }, 'metric'],
    ['an unknown aggFunc', { windowSize: '1m', aggFunc: 'median' }, 'aggFunc'],
    ['a numeric aggFunc', { windowSize: '1m', aggFunc: 1 }, 'aggFunc'],
    ['a filter that is not an object', { windowSize: '1m', filter: 'x' }, 'filter'],
    ['an unknown filter field', { windowSize: '1m', filter: { country: 'x' } }, 'filter.country'],
    ['a bad filter.from', { windowSize: '1m', filter: { from: 'yesterday' } }, 'filter.from'],
    ['filter.from after filter.to', { windowSize: '1m', filter: { from: 10, to: 5 } }, 'filter.from'],
    ['too many windows over the filter range', { windowSize: '1s', filter: { from: 0, to: 30 * 86_400_000 } }, 'windowSize'],
    ['too many windows over the data range', { windowSize: '1ms', aggFunc: 'count' }, 'windowSize'],
  ];
  for (const [what, body, field] of bad) {
    it(`rejects ${what} with 400 naming \`${field}\``, async () => {
      const res = await postJson(`${fx.queryUrl}/query/window`, body);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.message).toContain(field);
    });
  }

  it('rejects malformed JSON with 400', async () => {
    const res = await postJson(`${fx.queryUrl}/query/window`, '{"windowSize":');
    expect(res.status).toBe(400);
  });

  it('is read-your-writes: an event acknowledged just before the query is in its window', async () => {
    const e: TestEvent = { timestamp: Date.UTC(2027, 5, 1, 12, 0, 30), event_type: 'purchase', user_id: 'ryw-user', value: 42.5 };
    const ack = await postJson(`${fx.ingestUrl}/ingest`, e);
    expect(ack.status).toBe(202);
    fx.events.push(e);
    const res = await postJson(`${fx.queryUrl}/query/window`, { windowSize: '1m', aggFunc: 'sum', filter: { from: Date.UTC(2027, 0, 1) } });
    expect(res.body.results).toEqual([{ window_start: Date.UTC(2027, 5, 1, 12), window_end: Date.UTC(2027, 5, 1, 12, 1), count: 1, value_sum: 42.5 }]);
  });
});
