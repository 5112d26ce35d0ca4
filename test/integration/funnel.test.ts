/**
 * POST /query/funnel on the real engine (4 shards, 200,000 events, skewed users) against a brute
 * force computed here from the acknowledged events, per user: ordered (greedy from the earliest
 * step-1 event, equal timestamps qualify), windowed (best over every step-1 event, ts_k − ts_1 ≤
 * window), unordered (event types done at all, a repeated type needing as many events), with
 * filters, the seed's `eventSequence` alias and `funnel` shape. Counts exact, rates exact ratios.
 *
 * Bad input (each must answer 400 with a message naming the field):
 * - body not a JSON object (array, string)                         → (body)
 * - malformed JSON                                                 → 400 MALFORMED_JSON
 * - unknown field `limit`                                          → limit
 * - neither `steps` nor `eventSequence`                            → steps
 * - both `steps` and `eventSequence`                               → eventSequence
 * - `steps` a string, 1 step, 21 steps, a number entry, an empty entry → steps / steps[i]
 * - `eventSequence` with 1 step                                    → eventSequence
 * - `window` a number, "1 hour", "0s", "1.5ms", "400d" (over a year) → window
 * - `window` with `mode: "unordered"`                              → window
 * - `mode` unknown ("sideways"), a number                          → mode
 * - `filter` not an object, unknown filter key, bad `from`, `from` after `to`, empty `event_type` list → filter.*
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/engine-harness.js';
import { startQueryFixture, type QueryFixture } from '../helpers/query-fixture.js';
import type { TestEvent } from '../helpers/random-events.js';

let fixture: QueryFixture;
/** Per user: events in (timestamp, arrival) order. */
let byUser: Map<string, Array<{ ts: number; arrival: number; type: string }>>;

beforeAll(async () => {
  fixture = await startQueryFixture();
  byUser = new Map();
  fixture.events.forEach((e, arrival) => {
    let list = byUser.get(e.user_id);
    if (!list) byUser.set(e.user_id, (list = []));
    list.push({ ts: e.timestamp, arrival, type: e.event_type });
  });
  for (const list of byUser.values()) list.sort((a, b) => a.ts - b.ts || a.arrival - b.arrival);
});

afterAll(async () => {
  await fixture?.stop();
});

interface Filter {
  from?: number;
  to?: number;
  event_type?: string[];
}
type Ev = { ts: number; arrival: number; type: string };

function keep(e: Ev, f: Filter): boolean {
  return (f.from === undefined || e.ts >= f.from) && (f.to === undefined || e.ts < f.to) && (!f.event_type || f.event_type.includes(e.type));
}

/** Greedy chain from the step-1 event `start`: each step the earliest event of its type at or after the previous step's timestamp, not taken yet. */
function chainLevel(evs: Ev[], steps: string[], start: number, windowMs: number | null): number {
  const used = new Set([start]);
  const t1 = evs[start]!.ts;
  let tPrev = t1;
  let level = 1;
  for (const s of steps.slice(1)) {
    let pick = -1;
    for (let j = 0; j < evs.length; j++) {
      const e = evs[j]!;
      if (e.type !== s || e.ts < tPrev || used.has(j)) continue;
      if (windowMs !== null && e.ts - t1 > windowMs) break;
      pick = j;
      break;
    }
    if (pick < 0) break;
    used.add(pick);
    tPrev = evs[pick]!.ts;
    level++;
  }
  return level;
}

function bruteFunnel(steps: string[], opts: { window?: number; mode?: 'ordered' | 'unordered'; filter?: Filter } = {}): number[] {
  const counts = steps.map(() => 0);
  const windowMs = opts.window ?? null;
  for (const all of byUser.values()) {
    const evs = all.filter((e) => keep(e, opts.filter ?? {}));
    let level = 0;
    if (opts.mode === 'unordered') {
      const have = new Map<string, number>();
      for (const e of evs) have.set(e.type, (have.get(e.type) ?? 0) + 1);
      const need = new Map<string, number>();
      for (const s of steps) {
        need.set(s, (need.get(s) ?? 0) + 1);
        if ((have.get(s) ?? 0) < need.get(s)!) break;
        level++;
      }
    } else {
      const starts = evs.flatMap((e, i) => (e.type === steps[0] ? [i] : []));
      for (const i of windowMs === null ? starts.slice(0, 1) : starts) level = Math.max(level, chainLevel(evs, steps, i, windowMs));
    }
    for (let k = 0; k < level; k++) counts[k]!++;
  }
  return counts;
}

async function funnel(body: unknown) {
  const res = await postJson(`${fixture.queryUrl}/query/funnel`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

function expectAnswer(body: any, steps: string[], counts: number[]): void {
  expect(body.steps.map((s: any) => s.count)).toEqual(counts);
  expect(body.total_users).toBe(counts[0]);
  steps.forEach((type, i) => {
    const s = body.steps[i];
    expect(s.step).toBe(i + 1);
    expect(s.event_type).toBe(type);
    expect(s.rate_from_start).toBe(counts[0] === 0 ? 0 : counts[i]! / counts[0]!);
    const prev = i === 0 ? counts[0]! : counts[i - 1]!;
    expect(s.rate_from_previous).toBe(prev === 0 ? 0 : counts[i]! / prev);
    expect(body.funnel[i]).toEqual({ step: i + 1, event_type: type, count: counts[i], percentage: counts[0] === 0 ? 0 : (counts[i]! * 100) / counts[0]! });
  });
  expect(typeof body.query_time_ms).toBe('number');
  expect(Number.isNaN(Date.parse(body.timestamp))).toBe(false);
}

const FUNNEL = ['page_view', 'add_to_cart', 'checkout', 'purchase'];

describe('POST /query/funnel', () => {
  it('counts an ordered funnel exactly (greedy, equal timestamps qualify)', async () => {
    const body = await funnel({ steps: FUNNEL });
    const counts = bruteFunnel(FUNNEL);
    expect(counts[3]).toBeGreaterThan(0);
    expectAnswer(body, FUNNEL, counts);
    expect(body.mode).toBe('ordered');
    expect(body.window_ms).toBeNull();
  });

  it('accepts the seed’s eventSequence and answers the same', async () => {
    const a = await funnel({ eventSequence: FUNNEL });
    expectAnswer(a, FUNNEL, bruteFunnel(FUNNEL));
  });

  for (const [window, ms] of [['10m', 600_000], ['1h', 3_600_000], ['90s', 90_000]] as const) {
    it(`takes the best step-1 event within a ${window} window`, async () => {
      const body = await funnel({ steps: FUNNEL, window });
      const counts = bruteFunnel(FUNNEL, { window: ms });
      expectAnswer(body, FUNNEL, counts);
      expect(body.window_ms).toBe(ms);
    });
  }

  it('gives every step of a repeated event type its own event', async () => {
    const steps = ['page_view', 'click', 'page_view', 'click', 'page_view'];
    expectAnswer(await funnel({ steps }), steps, bruteFunnel(steps));
    expectAnswer(await funnel({ steps, window: '30m' }), steps, bruteFunnel(steps, { window: 1_800_000 }));
    expectAnswer(await funnel({ steps, mode: 'unordered' }), steps, bruteFunnel(steps, { mode: 'unordered' }));
  });

  it('counts users who did each event type at all in unordered mode', async () => {
    const steps = ['purchase', 'checkout', 'add_to_cart', 'signup'];
    const body = await funnel({ steps, mode: 'unordered' });
    expectAnswer(body, steps, bruteFunnel(steps, { mode: 'unordered' }));
    expect(body.mode).toBe('unordered');
    // Unordered is never below ordered.
    const ordered = bruteFunnel(steps);
    body.steps.forEach((s: any, i: number) => expect(s.count).toBeGreaterThanOrEqual(ordered[i]!));
  });

  it('applies the filter before the funnel', async () => {
    const t0 = fixture.events.reduce((m: number, e: TestEvent) => Math.min(m, e.timestamp), Infinity);
    const filter = { from: t0 + 3_600_000, to: new Date(t0 + 4 * 3_600_000).toISOString(), event_type: ['page_view', 'add_to_cart', 'purchase'] };
    const brute = { from: t0 + 3_600_000, to: t0 + 4 * 3_600_000, event_type: filter.event_type };
    expectAnswer(await funnel({ steps: FUNNEL, filter }), FUNNEL, bruteFunnel(FUNNEL, { filter: brute }));
    expectAnswer(await funnel({ steps: FUNNEL, window: '20m', filter }), FUNNEL, bruteFunnel(FUNNEL, { window: 1_200_000, filter: brute }));
  });

  it('answers zeros for event types nobody sent', async () => {
    const steps = ['page_view', 'no_such_type'];
    const body = await funnel({ steps });
    expectAnswer(body, steps, bruteFunnel(steps));
    expect(body.steps[1].count).toBe(0);
    const none = await funnel({ steps: ['nothing', 'page_view'] });
    expectAnswer(none, ['nothing', 'page_view'], [0, 0]);
  });

  it('sees events ingested just before the query (read-your-writes)', async () => {
    const res = await postJson(`${fixture.ingestUrl}/ingest/batch`, {
      events: [
        { timestamp: 1_000, event_type: 'ryw_a', user_id: 'ryw-user' },
        { timestamp: 1_000, event_type: 'ryw_b', user_id: 'ryw-user' },
      ],
    });
    expect(res.status).toBe(202);
    expectAnswer(await funnel({ steps: ['ryw_a', 'ryw_b'] }), ['ryw_a', 'ryw_b'], [1, 1]);
  });

  describe('bad input answers 400 naming the field', () => {
    const cases: Array<[string, unknown, string]> = [
      ['array body', [], '(body)'],
      ['JSON string body', '"x"', '(body)'],
      ['unknown field', { steps: FUNNEL, limit: 3 }, 'limit'],
      ['no steps', {}, 'steps'],
      ['both steps and eventSequence', { steps: FUNNEL, eventSequence: FUNNEL }, 'eventSequence'],
      ['steps a string', { steps: 'page_view' }, 'steps'],
      ['one step', { steps: ['page_view'] }, 'steps'],
      ['21 steps', { steps: Array(21).fill('a') }, 'steps'],
      ['number step', { steps: ['a', 3] }, 'steps[1]'],
      ['empty step', { steps: ['', 'a'] }, 'steps[0]'],
      ['eventSequence of one', { eventSequence: ['a'] }, 'eventSequence'],
      ['window a number', { steps: FUNNEL, window: 3600 }, 'window'],
      ['window words', { steps: FUNNEL, window: '1 hour' }, 'window'],
      ['window zero', { steps: FUNNEL, window: '0s' }, 'window'],
      ['window fractional ms', { steps: FUNNEL, window: '1.5ms' }, 'window'],
      ['window over a year', { steps: FUNNEL, window: '400d' }, 'window'],
      ['window with unordered', { steps: FUNNEL, window: '1h', mode: 'unordered' }, 'window'],
      ['unknown mode', { steps: FUNNEL, mode: 'sideways' }, 'mode'],
      ['number mode', { steps: FUNNEL, mode: 1 }, 'mode'],
      ['filter not an object', { steps: FUNNEL, filter: 3 }, 'filter'],
      ['unknown filter key', { steps: FUNNEL, filter: { day: 1 } }, 'filter.day'],
      ['bad from', { steps: FUNNEL, filter: { from: 'yesterday' } }, 'filter.from'],
      ['from after to', { steps: FUNNEL, filter: { from: 2000, to: 1000 } }, 'filter.from'],
      ['empty event_type', { steps: FUNNEL, filter: { event_type: [] } }, 'filter.event_type'],
    ];
    for (const [name, body, field] of cases) {
      it(name, async () => {
        const res = await postJson(`${fixture.queryUrl}/query/funnel`, body);
        expect(res.status).toBe(400);
        const text = JSON.stringify(res.body);
        expect(text.includes(`\`${field}\``) || text.includes(`"field":"${field}"`), text).toBe(true);
      });
    }

    it('malformed JSON', async () => {
      const res = await postJson(`${fixture.queryUrl}/query/funnel`, '{"steps": [');
      expect(res.status).toBe(400);
      expect(res.body.error ?? res.body.code ?? JSON.stringify(res.body)).toMatch(/MALFORMED_JSON|not valid JSON/);
    });
  });
});
