import { describe, expect, it } from 'vitest';
import type { EncodableEvent } from '../shards/ring-record.js';
import type { Utf8Rows } from '../shards/ring-block.js';
import { eventColumns, type EventColumns } from './event-columns.js';
import { shardForUser } from './route-hash.js';
import { MAX_TS, MIN_TS, validateBatch } from './validate-event.js';

const NOW = Date.UTC(2026, 10, 30, 12);
const DAY = 86_400_000;
const utf8 = new TextEncoder();

function rng(seed: number): () => number {
  let s = seed;
  return () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
}
const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

const EVENT_TYPES = ['click', 'page_view', 'v', 'view 👀', 'ßüñ', 'x'.repeat(64), 'é'.repeat(64), 'quote"back\\slash'];
const USER_IDS = (rand: () => number) =>
  pick(rand, [
    () => `user-${Math.floor(rand() * 1000)}`,
    () => `ünï-${Math.floor(rand() * 50)} 😀`,
    () => 'u'.repeat(1 + Math.floor(rand() * 128)),
    () => 'ü'.repeat(65 + Math.floor(rand() * 63)),
    () => `tab\there "q" \\ ${Math.floor(rand() * 9)}`,
  ])();
const TIMESTAMPS = [undefined, NOW - 1234, NOW, MIN_TS, MAX_TS, -1, 0, '2026-01-02T03:04:05.678Z', '2024-02-29', '2026-03-01T10:00:00', '2026-03-01 10:00+05:30', '2026-11-30T12:00:00.123456789-0130'];
const VALUES = [undefined, null, 0, -0, 1, -2.5, 0.1, 1e300, -1e-300, 123456789012, 5e-324];
const METADATA = (rand: () => number): unknown =>
  pick(rand, [
    () => undefined,
    () => null,
    () => ({}),
    () => ({ plan: rand() < 0.5 ? 'free' : 'pro' }),
    () => ({ n: pick(rand, [0, -0, 1.5, 1e21, 1e-7, -123, 2 ** 53, 1e300]), t: true, f: false, z: null }),
    () => ({ b: 1, 2: 'two', a: 3, 1: 'one', '': 'empty' }),
    () => JSON.parse('{"__proto__": {"x": 1}, "k": "v"}'),
    () => ({ nested: { a: [1, 'two', { three: null }] }, list: [] }),
    () => ({ esc: 'a"b\\c\nd\u0001e\u007f', 'k"ey': 1 }),
    () => ({ path: 'C:\\dir', 'back\\slash': 1 }),
    () => ({ tab: 'a\tb' }),
    () => ({ text: 'ünï 😀 ß', 'kéy 🎉': ['ok 𝄞', { deep: 'ß' }] }),
    () => ({ long: 'L'.repeat(100 + Math.floor(rand() * 3000)) }),
    () => ({ edge: 'x'.repeat(4096 - 11) }), // {"edge":"…"} is exactly 4096 bytes
  ])();

/** A valid event; with `skewed`, its timestamp is at most a day ahead of NOW. */
function validEvent(rand: () => number, skewed = true): Record<string, unknown> {
  const e: Record<string, unknown> = { event_type: pick(rand, EVENT_TYPES), user_id: USER_IDS(rand) };
  const ts = pick(rand, skewed ? TIMESTAMPS.filter((t) => t !== MAX_TS) : TIMESTAMPS);
  if (ts !== undefined) e.timestamp = ts;
  const v = pick(rand, VALUES);
  if (v !== undefined) e.value = v;
  const md = METADATA(rand);
  if (md !== undefined) e.metadata = md;
  // fields in any order
  return rand() < 0.3 ? Object.fromEntries(Object.entries(e).reverse()) : e;
}

/** Ways to break one event, each against a rule of docs/API.md. */
const BREAKS: Array<(e: Record<string, unknown>) => unknown> = [
  () => 1,
  () => 'event',
  () => null,
  () => [],
  (e) => ({ ...e, extra: 1 }),
  (e) => Object.assign(JSON.parse('{"__proto__": 1}'), e),
  (e) => ({ ...e, event_type: undefined }),
  (e) => ({ ...e, event_type: null }),
  (e) => ({ ...e, event_type: '' }),
  (e) => ({ ...e, event_type: 'x'.repeat(65) }),
  (e) => ({ ...e, event_type: 7 }),
  (e) => ({ ...e, event_type: 'a\ud800' }),
  (e) => ({ ...e, user_id: undefined }),
  (e) => ({ ...e, user_id: '' }),
  (e) => ({ ...e, user_id: 'u'.repeat(129) }),
  (e) => ({ ...e, user_id: ['u'] }),
  (e) => ({ ...e, user_id: 'x\udc00' }),
  (e) => ({ ...e, user_id: 'ü'.repeat(70) + '\ud800' }),
  (e) => ({ ...e, timestamp: 1.5 }),
  (e) => ({ ...e, timestamp: null }),
  (e) => ({ ...e, timestamp: true }),
  (e) => ({ ...e, timestamp: 'yesterday' }),
  (e) => ({ ...e, timestamp: '2026-02-31' }),
  (e) => ({ ...e, timestamp: MAX_TS + 1 }),
  (e) => ({ ...e, timestamp: NOW + 2 * DAY }),
  (e) => ({ ...e, value: 'abc' }),
  (e) => ({ ...e, value: true }),
  (e) => ({ ...e, value: {} }),
  (e) => ({ ...e, value: Infinity }),
  (e) => ({ ...e, value: NaN }),
  (e) => ({ ...e, metadata: [1] }),
  (e) => ({ ...e, metadata: 'plan=pro' }),
  (e) => ({ ...e, metadata: 5 }),
  (e) => ({ ...e, metadata: { big: 'x'.repeat(5000) } }),
  (e) => ({ ...e, metadata: { edge: 'x'.repeat(4096 - 10) } }), // 4097 bytes
  (e) => ({ ...e, metadata: { k: 'é'.repeat(2100) } }), // under 4096 characters, over 4096 bytes
  (e) => ({ ...e, metadata: { page: 'a\udc00' } }),
  (e) => ({ ...e, metadata: { ['k\ud800']: 1 } }),
  (e) => ({ ...e, metadata: { a: { b: ['ok', 'a\ud800'] } } }),
];

/** Row `r` of the columns as validateBatch's event (user id as its UTF-8 bytes). */
function rowOf(c: EventColumns, r: number) {
  const s = c.source;
  const bytes = (col: Utf8Rows) => Array.from(col.data.subarray(col.start[r]!, col.end[r]!));
  const valueSet = s.values !== null && (s.valueValid === null || ((s.valueValid[r >> 3]! >> (r & 7)) & 1) === 1);
  const metaSet = s.metadata !== null && (s.metadataValid === null || ((s.metadataValid[r >> 3]! >> (r & 7)) & 1) === 1);
  return {
    timestamp: s.timestamps[r],
    value: valueSet ? s.values![r] : null,
    eventType: bytes(s.eventType),
    userId: bytes(s.userId),
    metadata: metaSet ? bytes(s.metadata!) : null,
  };
}

function expected(e: EncodableEvent) {
  return { timestamp: e.timestamp, value: e.value, eventType: Array.from(e.eventType), userId: Array.from(utf8.encode(e.userId)), metadata: e.metadata ? Array.from(e.metadata) : null };
}

describe('eventColumns', () => {
  it('stores what validateBatch stores on 400 random valid batches (ISO timestamps, nulls, non-ASCII, metadata of every shape), grouped by the routing hash', () => {
    const rand = rng(7);
    let rows = 0;
    for (let b = 0; b < 400; b++) {
      const shards = pick(rand, [1, 2, 3, 5]);
      const skew = rand() < 0.5 ? DAY : null;
      // through JSON text, as a request's events are
      const raws = JSON.parse(JSON.stringify(Array.from({ length: 1 + Math.floor(rand() * 60) }, () => validEvent(rand, skew !== null)))) as unknown[];
      const old = validateBatch(raws, NOW, skew);
      expect('events' in old, JSON.stringify(old).slice(0, 300)).toBe(true);
      const cols = eventColumns(raws, NOW, skew, shards);
      expect(cols).not.toBeNull();
      const events = (old as { events: EncodableEvent[] }).events;
      for (let r = 0; r < raws.length; r++) expect(rowOf(cols!, r), JSON.stringify(raws[r])).toEqual(expected(events[r]!));
      // each shard's rows in row order, on the shard the JSON routes' hash names
      const { order, bounds } = cols!.order;
      expect(bounds[shards]).toBe(raws.length);
      for (let s = 0; s < shards; s++) {
        const mine = Array.from(order.subarray(bounds[s]!, bounds[s + 1]!));
        expect(mine).toEqual(events.flatMap((e, i) => (shardForUser(e.userId, shards) === s ? [i] : [])));
      }
      rows += raws.length;
    }
    expect(rows).toBeGreaterThan(10_000);
  });

  it('refuses every batch validateBatch refuses (one event broken 39 ways, at any index), and only those', () => {
    const rand = rng(99);
    for (let b = 0; b < 600; b++) {
      const raws = JSON.parse(JSON.stringify(Array.from({ length: 1 + Math.floor(rand() * 20) }, () => validEvent(rand)))) as Array<Record<string, unknown>>;
      const at = Math.floor(rand() * raws.length);
      raws[at] = BREAKS[b % BREAKS.length]!(raws[at]!) as Record<string, unknown>;
      const old = validateBatch(raws, NOW, DAY);
      expect('errors' in old, `break ${b % BREAKS.length}: ${JSON.stringify(raws[at]).slice(0, 200)}`).toBe(true);
      expect(eventColumns(raws, NOW, DAY, 2), `break ${b % BREAKS.length}`).toBeNull();
    }
  });

  it('fills a missing timestamp with the receive time and bounds the skew only when asked', () => {
    const raws = [{ event_type: 'a', user_id: 'u' }, { event_type: 'a', user_id: 'u', timestamp: NOW + 2 * DAY }];
    expect(eventColumns(raws, NOW, DAY, 1)).toBeNull();
    const cols = eventColumns(raws, NOW, null, 1)!;
    expect(Array.from(cols.source.timestamps)).toEqual([NOW, NOW + 2 * DAY]);
    expect(cols.source.metadata).toBeNull();
    expect(cols.source.valueValid).not.toBeNull();
  });
});
