/** Seeded random events and an independent brute-force aggregate to check answers against. */

export interface TestEvent {
  timestamp: number;
  event_type: string;
  user_id: string;
  value?: number | null;
  metadata?: Record<string, unknown>;
}

/** mulberry32: small, seeded, good enough for test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const EVENT_TYPES = ['page_view', 'click', 'add_to_cart', 'checkout', 'purchase', 'signup'];

export function makeEvents(n: number, seed: number, opts: { users?: number; start?: number; spanMs?: number } = {}): TestEvent[] {
  const r = rng(seed);
  const users = opts.users ?? 5000;
  const start = opts.start ?? Date.UTC(2026, 0, 1);
  const span = opts.spanMs ?? 86_400_000;
  const out: TestEvent[] = [];
  for (let i = 0; i < n; i++) {
    // Skewed users: squaring the uniform draw favours low ids.
    const user = Math.floor(r() * r() * users);
    const e: TestEvent = {
      timestamp: start + Math.floor(r() * span),
      event_type: EVENT_TYPES[Math.floor(r() * r() * EVENT_TYPES.length)]!,
      user_id: `user-${user}`,
    };
    const v = r();
    if (v < 0.1) e.value = null;
    else if (v < 0.15) {
      // absent value
    } else e.value = Math.round((r() * 1000 - 200) * 100) / 100 + (r() < 0.01 ? 1e6 : 0);
    if (r() < 0.3) e.metadata = { plan: r() < 0.5 ? 'free' : 'pro', page: `/p/${Math.floor(r() * 20)}` };
    out.push(e);
  }
  return out;
}

export interface BruteRow {
  keys: Array<string | null>;
  count: number;
  value_count: number;
  value_sum: number | null;
  value_mean: number | null;
  value_min: number | null;
  value_max: number | null;
  value_stddev: number | null;
}

/** Two-pass textbook aggregate, independent of the engine's merge code. */
export function bruteAggregate(events: TestEvent[], groupBy: Array<'event_type' | 'user_id'>, filter: { from?: number; to?: number; event_type?: string[] } = {}): Map<string, BruteRow> {
  const groups = new Map<string, { keys: Array<string | null>; count: number; values: number[] }>();
  for (const e of events) {
    if (filter.from !== undefined && e.timestamp < filter.from) continue;
    if (filter.to !== undefined && e.timestamp >= filter.to) continue;
    if (filter.event_type && !filter.event_type.includes(e.event_type)) continue;
    const keys = groupBy.map((k) => e[k]);
    const key = JSON.stringify(keys);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { keys, count: 0, values: [] }));
    g.count++;
    if (e.value !== undefined && e.value !== null) g.values.push(e.value);
  }
  const out = new Map<string, BruteRow>();
  for (const [key, g] of groups) {
    const n = g.values.length;
    const sum = g.values.reduce((a, b) => a + b, 0);
    const mean = n ? sum / n : null;
    const variance = n ? g.values.reduce((a, v) => a + (v - mean!) ** 2, 0) / n : null;
    out.set(key, {
      keys: g.keys,
      count: g.count,
      value_count: n,
      value_sum: n ? sum : null,
      value_mean: mean,
      value_min: n ? g.values.reduce((a, b) => (b < a ? b : a)) : null,
      value_max: n ? g.values.reduce((a, b) => (b > a ? b : a)) : null,
      value_stddev: variance === null ? null : Math.sqrt(variance),
    });
  }
  return out;
}

export function closeTo(actual: number | null, expected: number | null, rel = 1e-9): boolean {
  if (actual === null || expected === null) return actual === expected;
  const scale = Math.max(Math.abs(expected), 1e-12);
  return Math.abs(actual - expected) <= rel * scale || Math.abs(actual - expected) < 1e-9;
}
