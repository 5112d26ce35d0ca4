/**
 * GET /query/percentiles on the real engine (4 shards, 200,000 events, skewed users) against a
 * brute force computed here from the acknowledged events: counts exact; digest answers within
 * the documented rank error (docs/api/percentiles.md: the continuous bound, or two centroid widths
 * 2·2π√(q(1−q))/δ where the data has atoms or gaps — the fixture has both: values rounded to
 * cents and ~1% outliers at +1e6); `exact=true` equal to polars-style linear interpolation exactly.
 *
 * Bad input (each must answer 400 with a message naming the parameter):
 * - unknown parameter `q`; a parameter given twice (`exact`)
 * - `percentiles` 1.5, −0.1, "abc", "0.5,,0.9", empty, 101 entries, "NaN", "Infinity"
 * - `column` "price"
 * - `groupBy` "nope", "metadata." (bad key), empty, unknown `<table>.<column>`
 * - `exact` "yes"
 * - `from` "yesterday", 1.5; `to` garbage; `from` after `to`
 * - `event_type` / `user_id` empty list entries (",", "a,,b")
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectEveryQueryRejected, getJson } from '../helpers/engine-harness.js';
import { startQueryFixture, type QueryFixture } from '../helpers/query-fixture.js';
import type { TestEvent } from '../helpers/random-events.js';
import { rankError } from '../helpers/rank-error.js';

let fixture: QueryFixture;

beforeAll(async () => {
  fixture = await startQueryFixture();
});

afterAll(async () => {
  await fixture?.stop();
});

const DELTA = 200;
const CONTINUOUS: Record<string, number> = { 0.001: 0.001, 0.01: 0.0025, 0.1: 0.005, 0.5: 0.006, 0.9: 0.005, 0.99: 0.0025, 0.999: 0.001 };

/** The documented bound for data with atoms or gaps (docs/api/percentiles.md). */
function bound(q: number): number {
  return Math.max(CONTINUOUS[q] ?? 0.006, (2 * 2 * Math.PI * Math.sqrt(q * (1 - q))) / DELTA);
}

interface Params {
  groupBy?: 'event_type' | 'metadata.plan';
  from?: number;
  to?: number;
  event_type?: string[];
  user_id?: string[];
}

function groupOf(e: TestEvent, dim: string | undefined): string | null {
  if (dim === undefined) return null;
  if (dim === 'event_type') return e.event_type;
  const v = e.metadata?.[dim.slice('metadata.'.length)];
  return v === undefined || v === null ? null : String(v);
}

/** Sorted finite values per group of the matching events. */
function brute(p: Params): Map<string | null, number[]> {
  const out = new Map<string | null, number[]>();
  for (const e of fixture.events) {
    if (typeof e.value !== 'number' || !Number.isFinite(e.value)) continue;
    if (p.from !== undefined && e.timestamp < p.from) continue;
    if (p.to !== undefined && e.timestamp >= p.to) continue;
    if (p.event_type && !p.event_type.includes(e.event_type)) continue;
    if (p.user_id && !p.user_id.includes(e.user_id)) continue;
    const k = groupOf(e, p.groupBy);
    if (!out.has(k)) out.set(k, []);
    out.get(k)!.push(e.value);
  }
  for (const vs of out.values()) vs.sort((a, b) => a - b);
  return out;
}

function linear(sorted: number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo] === sorted[hi] ? sorted[lo]! : (h - lo) * (sorted[hi]! - sorted[lo]!) + sorted[lo]!;
}


function url(p: Params & { percentiles?: string; exact?: boolean }): string {
  const qs = new URLSearchParams({ column: 'value' });
  if (p.percentiles) qs.set('percentiles', p.percentiles);
  if (p.groupBy) qs.set('groupBy', p.groupBy);
  if (p.exact) qs.set('exact', 'true');
  if (p.from !== undefined) qs.set('from', String(p.from));
  if (p.to !== undefined) qs.set('to', new Date(p.to).toISOString());
  if (p.event_type) qs.set('event_type', p.event_type.join(','));
  if (p.user_id) qs.set('user_id', p.user_id.join(','));
  return `${fixture.queryUrl}/query/percentiles?${qs}`;
}

const KEYS: Record<string, number> = { p50: 0.5, p95: 0.95, p99: 0.99 };

describe('GET /query/percentiles', () => {
  it('answers the seed shape with the default percentiles within the documented rank error', async () => {
    const res = await getJson(url({}));
    expect(res.status).toBe(200);
    const sorted = brute({}).get(null)!;
    expect(res.body).toMatchObject({ column: 'value', count: sorted.length, exact: false, compression: DELTA });
    expect(typeof res.body.query_time_ms).toBe('number');
    expect(typeof res.body.timestamp).toBe('string');
    expect(Object.keys(res.body.percentiles)).toEqual(['p50', 'p95', 'p99']);
    for (const [k, q] of Object.entries(KEYS)) expect(rankError(sorted, res.body.percentiles[k], q), k).toBeLessThanOrEqual(bound(q));
  });

  it('names keys without collisions and collapses duplicates', async () => {
    const res = await getJson(url({ percentiles: '0.001,0.01,0.1,0.25,0.5,0.50,0.75,0.9,0.99,0.995,0.999,0,1' }));
    expect(res.status).toBe(200);
    const sorted = brute({}).get(null)!;
    const keys = { p0: 0, 'p0.1': 0.001, p1: 0.01, p10: 0.1, p25: 0.25, p50: 0.5, p75: 0.75, p90: 0.9, p99: 0.99, 'p99.5': 0.995, 'p99.9': 0.999, p100: 1 };
    expect(Object.keys(res.body.percentiles).sort()).toEqual(Object.keys(keys).sort());
    expect(res.body.percentiles.p0).toBe(sorted[0]);
    expect(res.body.percentiles.p100).toBe(sorted[sorted.length - 1]);
    for (const [k, q] of Object.entries(keys)) expect(rankError(sorted, res.body.percentiles[k], q), k).toBeLessThanOrEqual(bound(q));
    if (process.env.PERCENTILES_REPORT) {
      console.log(Object.entries(keys).map(([k, q]) => `${k} ${rankError(sorted, res.body.percentiles[k], q).toFixed(5)}`).join(', '));
    }
  });

  it('groups by event_type and by metadata.plan (null group last)', async () => {
    for (const groupBy of ['event_type', 'metadata.plan'] as const) {
      const res = await getJson(url({ groupBy }));
      expect(res.status).toBe(200);
      const whole = brute({ groupBy });
      expect(res.body.groupBy).toBe(groupBy);
      const keys = [...whole.keys()].sort((a, b) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1));
      expect(res.body.results.map((r: Record<string, unknown>) => r[groupBy])).toEqual(keys);
      for (const row of res.body.results) {
        const sorted = whole.get(row[groupBy])!;
        expect(row.count).toBe(sorted.length);
        for (const [k, q] of Object.entries(KEYS)) expect(rankError(sorted, row.percentiles[k], q), `${groupBy} ${row[groupBy]} ${k}`).toBeLessThanOrEqual(bound(q));
      }
    }
  });

  it('answers exact=true equal to the brute force exactly, with and without groupBy and filters', async () => {
    const t0 = fixture.events.reduce((m, e) => Math.min(m, e.timestamp), Infinity);
    const cases: Params[] = [{}, { groupBy: 'event_type' }, { from: t0 + 3_600_000, to: t0 + 4 * 3_600_000, event_type: ['purchase', 'click'] }, { user_id: ['user-0', 'user-7', 'user-123'] }];
    const qs = [0, 0.001, 0.25, 0.5, 0.95, 0.99, 0.995, 1];
    for (const p of cases) {
      const res = await getJson(url({ ...p, exact: true, percentiles: qs.join(',') }));
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.exact).toBe(true);
      const whole = brute(p);
      const rows = p.groupBy ? res.body.results : [res.body];
      expect(rows.length).toBe(Math.max(1, whole.size));
      for (const row of rows) {
        const sorted = whole.get(p.groupBy ? row[p.groupBy] : null) ?? [];
        expect(row.count).toBe(sorted.length);
        for (const q of qs) {
          const key = `p${Number((q * 100).toPrecision(12))}`;
          expect(row.percentiles[key], `${JSON.stringify(p)} ${key}`).toBe(sorted.length ? linear(sorted, q) : null);
        }
      }
    }
  });

  it('applies the filter parameters to digest answers', async () => {
    const t0 = fixture.events.reduce((m, e) => Math.min(m, e.timestamp), Infinity);
    const p: Params = { from: t0 + 3_600_000, to: t0 + 5 * 3_600_000, event_type: ['page_view', 'add_to_cart'] };
    const res = await getJson(url(p));
    const sorted = brute(p).get(null)!;
    expect(res.body.count).toBe(sorted.length);
    for (const [k, q] of Object.entries(KEYS)) expect(rankError(sorted, res.body.percentiles[k], q)).toBeLessThanOrEqual(bound(q));
  });

  it('answers count 0 and null percentiles when nothing matches', async () => {
    const res = await getJson(url({ user_id: ['nobody'] }));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ count: 0, percentiles: { p50: null, p95: null, p99: null } });
    const grouped = await getJson(url({ user_id: ['nobody'], groupBy: 'event_type' }));
    expect(grouped.body.results).toEqual([]);
  });

  const BAD: Array<[string, string]> = [
    ['q=0.5', 'q'],
    ['exact=true&exact=false', 'exact'],
    ['percentiles=1.5', 'percentiles'],
    ['percentiles=-0.1', 'percentiles'],
    ['percentiles=abc', 'percentiles'],
    ['percentiles=0.5,,0.9', 'percentiles'],
    ['percentiles=', 'percentiles'],
    [`percentiles=${Array.from({ length: 101 }, (_, i) => i / 100).join(',')}`, 'percentiles'],
    ['percentiles=NaN', 'percentiles'],
    ['percentiles=Infinity', 'percentiles'],
    ['column=price', 'column'],
    ['groupBy=nope', 'groupBy'],
    ['groupBy=metadata.', 'groupBy'],
    ['groupBy=', 'groupBy'],
    ['groupBy=users.country', 'groupBy'],
    ['exact=yes', 'exact'],
    ['from=yesterday', 'from'],
    ['from=1.5', 'from'],
    ['to=2026-13-45', 'to'],
    ['from=2000&to=1000', 'from'],
    ['event_type=,', 'event_type'],
    ['user_id=a,,b', 'user_id'],
  ];

  it('rejects every bad input with 400 naming the parameter', async () => {
    await expectEveryQueryRejected(`${fixture.queryUrl}/query/percentiles`, BAD);
  });
});
