/**
 * bench:peers' events: seeded, columnar, generated in chunks, identical for every system.
 *
 * The shape is that of a web shop's event stream rather than uniform noise, because the engine's
 * costs depend on it (group counts per shard, dictionary sizes, funnel chains, digest widths):
 * - users are Zipf-distributed (s = 0.8; sessions, not events, are drawn per user): the heaviest
 *   user (a bot) holds 1.5–2.5 % of the events, most users a few sessions. The user universe
 *   scales with N (N / 20, at least 1,000): about 340,000 distinct users at 10 M events, 35,000
 *   at 1 M;
 * - events come in sessions: a login (sometimes a signup), page views with clicks and searches
 *   between them, for some sessions an add_to_cart after a page view, then maybe checkout and
 *   purchase, each strictly later than the one before, so the funnel converts the way shops do;
 * - values are log-normal per event type (seconds on a page, cart and order amounts in cents
 *   precision) with a rare ×10 bulk order, so the tail is heavy and anomalies exist; some
 *   page views and clicks carry no value and logins/signups never do (nulls the queries skip);
 * - 90 % of events carry metadata: the user's plan and country, and for page-like events a page.
 *
 * Nothing here depends on time or on Math.random: the same (events, seed, span) gives the same
 * events, byte for byte, on every run.
 */

export const EVENT_TYPES = ['page_view', 'click', 'search', 'add_to_cart', 'checkout', 'purchase', 'login', 'signup'] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export const FUNNEL_STEPS: readonly EventType[] = ['page_view', 'add_to_cart', 'checkout', 'purchase'];

const T = Object.fromEntries(EVENT_TYPES.map((t, i) => [t, i])) as Record<EventType, number>;

export const PLANS = ['free', 'pro', 'enterprise'] as const;
const PLAN_WEIGHTS = [70, 25, 5];
export const COUNTRIES = ['US', 'DE', 'GB', 'IN', 'FR', 'BR', 'JP', 'CA', 'AU', 'MX', 'ES', 'IT', 'NL', 'PL', 'SE'] as const;
const COUNTRY_WEIGHTS = [30, 10, 9, 8, 7, 6, 5, 4, 3, 3, 3, 3, 3, 2, 2];
export const PAGES = ['/', '/pricing', '/search', '/cart', '/blog', '/docs', ...Array.from({ length: 54 }, (_, i) => `/p/${i}`)];

/** Marks "no such metadata value" in the Uint8 metadata columns. */
export const NONE = 255;

/** One chunk of events, one typed array per column (metadata as indexes into the lists above). */
export interface EventChunk {
  length: number;
  /** Epoch ms, whole numbers. */
  timestamp: Float64Array;
  /** Index into EVENT_TYPES. */
  eventType: Uint8Array;
  /** Index into the generator's `userIds`. */
  user: Uint32Array;
  /** NaN where the event has no value (sent as null). */
  value: Float64Array;
  /** Index into PLANS, NONE when the event has no metadata (then country is NONE too). */
  plan: Uint8Array;
  /** Index into COUNTRIES or NONE. */
  country: Uint8Array;
  /** Index into PAGES or NONE (metadata without a page). */
  page: Uint8Array;
}

export interface EventSpec {
  total: number;
  seed: number;
  /** Events fall in [startMs, startMs + spanMs). */
  startMs: number;
  spanMs: number;
  /** Size of the user universe the Zipf draw picks from. */
  users: number;
  zipfExponent: number;
}

/** 2026-01-05T00:00:00Z: a fixed, past start, so no run depends on the clock. */
export const DEFAULT_START_MS = Date.UTC(2026, 0, 5);

export function makeEventSpec(total: number, seed: number, spanMs: number): EventSpec {
  return { total, seed, startMs: DEFAULT_START_MS, spanMs, users: Math.max(1_000, Math.round(total / 20)), zipfExponent: 0.8 };
}

/** sfc32, seeded through splitmix32: fast, 128 bits of state, good enough for benchmark data. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = NaN;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.float();
  }

  /** Uniform in [0, 1). */
  float(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** Standard normal (Box–Muller, the second value kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const v = this.spare;
      this.spare = NaN;
      return v;
    }
    const u = 1 - this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * this.float();
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }

  exponential(mean: number): number {
    return -Math.log(1 - this.float()) * mean;
  }

  /** Index drawn with the given (unnormalised) weights. */
  weighted(weights: readonly number[], total: number): number {
    let x = this.float() * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i]!;
      if (x < 0) return i;
    }
    return weights.length - 1;
  }
}

/** Log-normal parameters (of ln value) and the chance of no value, per event type. */
const VALUE_MODEL: Record<EventType, { mu: number; sigma: number; nullP: number }> = {
  page_view: { mu: 2.5, sigma: 1.0, nullP: 0.08 }, // seconds on the page
  click: { mu: 0.0, sigma: 0.8, nullP: 0.2 },
  search: { mu: 3.0, sigma: 1.0, nullP: 0.0 }, // results shown
  add_to_cart: { mu: 3.2, sigma: 1.1, nullP: 0.0 }, // item price
  checkout: { mu: 3.8, sigma: 1.0, nullP: 0.0 }, // cart total
  purchase: { mu: 3.9, sigma: 1.1, nullP: 0.0 }, // order total
  login: { mu: 0, sigma: 0, nullP: 1 },
  signup: { mu: 0, sigma: 0, nullP: 1 },
};
const PAGE_LIKE = new Set<number>([T.page_view, T.click, T.add_to_cart]);
const SESSION_GAP_MEAN_MS = 25_000;

/** A user id that does not reveal its Zipf rank (so "user-0" is not the heaviest user). */
function userIdOf(rank: number): string {
  return `user-${(Math.imul(rank + 1, 0x9e3779b1) >>> 0).toString(36)}`;
}

/**
 * Generates the events of an {@link EventSpec} chunk by chunk.
 *
 * @example
 * const gen = new EventGenerator(makeEventSpec(1_000_000, 42, 86_400_000));
 * for (const chunk of gen.chunks(262_144)) send(chunk, gen.userIds);
 */
export class EventGenerator {
  /** user index → user_id; the chunks' `user` column indexes this. */
  readonly userIds: string[];
  private readonly zipfCdf: Float64Array;
  private readonly userPlan: Uint8Array;
  private readonly userCountry: Uint8Array;
  private readonly rng: Rng;
  /** Events of the current session not yet emitted: (type, timestamp) pairs. */
  private pending: number[] = [];
  private pendingAt = 0;
  /** The user of the session in `pending` (a session may continue into the next chunk). */
  private sessionUser = 0;

  constructor(readonly spec: EventSpec) {
    this.rng = new Rng(spec.seed);
    const n = spec.users;
    this.userIds = Array.from({ length: n }, (_, r) => userIdOf(r));
    this.zipfCdf = new Float64Array(n);
    let acc = 0;
    for (let r = 0; r < n; r++) this.zipfCdf[r] = acc += 1 / Math.pow(r + 1, spec.zipfExponent);
    this.userPlan = new Uint8Array(n);
    this.userCountry = new Uint8Array(n);
    const attrs = new Rng(spec.seed ^ 0x5eed);
    for (let r = 0; r < n; r++) {
      this.userPlan[r] = attrs.weighted(PLAN_WEIGHTS, 100);
      this.userCountry[r] = attrs.weighted(COUNTRY_WEIGHTS, 98);
    }
  }

  /** Yields chunks of `size` events (the last one shorter) until `spec.total` are out. */
  *chunks(size: number): Generator<EventChunk> {
    for (let done = 0; done < this.spec.total; ) {
      const n = Math.min(size, this.spec.total - done);
      yield this.chunk(n);
      done += n;
    }
  }

  private chunk(n: number): EventChunk {
    const c: EventChunk = {
      length: n,
      timestamp: new Float64Array(n),
      eventType: new Uint8Array(n),
      user: new Uint32Array(n),
      value: new Float64Array(n),
      plan: new Uint8Array(n),
      country: new Uint8Array(n),
      page: new Uint8Array(n),
    };
    const rng = this.rng;
    let user = 0;
    for (let i = 0; i < n; i++) {
      if (this.pendingAt >= this.pending.length) user = this.newSession();
      else if (i === 0) user = this.sessionUser;
      const type = this.pending[this.pendingAt++]!;
      const ts = this.pending[this.pendingAt++]!;
      c.timestamp[i] = ts;
      c.eventType[i] = type;
      c.user[i] = user;
      c.value[i] = this.value(type);
      if (rng.float() < 0.9) {
        c.plan[i] = this.userPlan[user]!;
        c.country[i] = this.userCountry[user]!;
        c.page[i] = PAGE_LIKE.has(type) ? this.page() : NONE;
      } else {
        c.plan[i] = NONE;
        c.country[i] = NONE;
        c.page[i] = NONE;
      }
    }
    return c;
  }

  /** Draws a user and lays out one session's events in `pending`; returns the user. */
  private newSession(): number {
    const rng = this.rng;
    const end = this.spec.startMs + this.spec.spanMs;
    const out: number[] = [];
    let t = this.spec.startMs + Math.floor(rng.float() * this.spec.spanMs);
    const push = (type: number) => {
      if (t < end) out.push(type, t);
      t += 1 + Math.floor(rng.exponential(SESSION_GAP_MEAN_MS));
    };
    const opener = rng.float();
    if (opener < 0.02) push(T.signup);
    else if (opener < 0.3) push(T.login);
    const views = 1 + Math.floor(Math.log(1 - rng.float()) / Math.log(0.75)); // geometric, mean 4
    const cartAfter = rng.float() < 0.3 ? Math.floor(rng.float() * views) : -1;
    for (let v = 0; v < views; v++) {
      push(T.page_view);
      if (rng.float() < 0.5) push(T.click);
      if (rng.float() < 0.1) push(T.search);
      if (v === cartAfter) push(T.add_to_cart);
    }
    if (cartAfter >= 0 && rng.float() < 0.45) {
      push(T.checkout);
      if (rng.float() < 0.65) push(T.purchase);
    }
    // A session that starts too close to the end may have lost every event: draw another.
    if (out.length === 0) return this.newSession();
    this.pending = out;
    this.pendingAt = 0;
    this.sessionUser = this.zipfUser();
    return this.sessionUser;
  }

  private zipfUser(): number {
    const cdf = this.zipfCdf;
    const x = this.rng.float() * cdf[cdf.length - 1]!;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private value(type: number): number {
    const m = VALUE_MODEL[EVENT_TYPES[type]!];
    if (m.nullP >= 1 || (m.nullP > 0 && this.rng.float() < m.nullP)) return NaN;
    let v = Math.exp(m.mu + m.sigma * this.rng.normal());
    if (type === T.purchase && this.rng.float() < 0.002) v *= 10; // bulk orders
    return Math.round(v * 100) / 100;
  }

  private page(): number {
    // Zipf-ish over pages too: the home page and pricing are the most visited.
    const r = Math.floor(Math.pow(this.rng.float(), 2.5) * PAGES.length);
    return Math.min(r, PAGES.length - 1);
  }
}
