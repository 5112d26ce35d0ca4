import { describe, expect, it } from 'vitest';
import type { Utf8Rows } from '../shards/ring-block.js';
import { scanBatch } from './batch-scan.js';
import { BatchBody } from './batch-body.js';
import { eventColumns, type EventColumns } from './event-columns.js';
import { MAX_TS, MIN_TS } from './validate-event.js';

const NOW = Date.UTC(2026, 10, 30, 12);
const DAY = 86_400_000;

function rng(seed: number): () => number {
  let s = seed;
  return () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
}
const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

/** Every row as plain values, so two results can be compared (they share scratch memory). */
function snapshot(c: EventColumns) {
  const s = c.source;
  const rows = s.timestamps.length;
  const bytes = (col: Utf8Rows, r: number) => Buffer.from(col.data.subarray(col.start[r]!, col.end[r]!)).toString('hex');
  const bit = (bits: Uint8Array | null, r: number) => bits === null || ((bits[r >> 3]! >> (r & 7)) & 1) === 1;
  return {
    rows: Array.from({ length: rows }, (_, r) => ({
      timestamp: Object.is(s.timestamps[r], -0) ? '-0' : s.timestamps[r],
      value: s.values !== null && bit(s.valueValid, r) ? (Object.is(s.values[r], -0) ? '-0' : s.values[r]) : null,
      eventType: bytes(s.eventType, r),
      userId: bytes(s.userId, r),
      metadata: s.metadata !== null && bit(s.metadataValid, r) ? bytes(s.metadata, r) : null,
    })),
    order: Array.from(c.order.order),
    bounds: Array.from(c.order.bounds),
  };
}

/** The route's other path: JSON.parse, eventColumns, the depth proof. */
function parsedPath(text: string, maxDepth: number, shards: number) {
  try {
    const batch = BatchBody.parse(text, maxDepth);
    const cols = batch.raws.length > 0 ? eventColumns(batch.raws, NOW, DAY, shards, batch.metadataLevels) : null;
    batch.confirmDepth(cols?.containers ?? -1);
    return cols === null ? null : snapshot(cols);
  } catch {
    return null;
  }
}

// seeded like everything else here, so a failure comes back on every run
const noise = rng(7);
const VALUES = [
  () => 0,
  () => -0,
  () => 12.34,
  () => Math.round(noise() * 1e6) / 100,
  () => noise() * 1e6, // 17 significant digits: read by Number
  () => -noise(),
  () => 1e-7,
  () => 1.5e300,
  () => 2 ** 53 + 2,
  () => 123456789012345,
  () => null,
  () => undefined,
];
const TIMESTAMPS = [() => undefined, () => NOW - 5, () => MIN_TS, () => 0, () => -1, () => '2026-01-02T03:04:05.678Z', () => '2024-02-29', () => NOW + DAY, () => MAX_TS];
const METADATA = [
  () => undefined,
  () => null,
  () => ({}),
  () => ({ plan: 'pro' }),
  () => ({ n: 1.5, z: null, t: true, s: 'ünï 😀', a: [1, { b: [] }] }),
  () => ({ esc: 'a"b\n' }), // written with escapes: canonical all the same
  () => ({ 2: 'two', 1: 'one' }), // array-index keys: not canonical as written by hand below
  () => ({ big: 'x'.repeat(4085) }), // 4096 bytes exactly
  () => ({ big: 'x'.repeat(4086) }), // 4097: refused
];
const TYPES = ['click', 'page_view', 'ü', 'x'.repeat(64), 'x'.repeat(65), '', 'a\u0001b'];
const USERS = ['u1', 'user-12345', 'ünï 😀', 'u'.repeat(128), 'u'.repeat(129), 'é'.repeat(100), '', 'q"uote'];

function randomEvent(rand: () => number): Record<string, unknown> {
  const e: Record<string, unknown> = {};
  const fields: Array<[string, () => unknown]> = [
    ['timestamp', pick(rand, TIMESTAMPS)],
    ['event_type', () => (rand() < 0.98 ? pick(rand, TYPES.slice(0, 4)) : pick(rand, TYPES))],
    ['user_id', () => (rand() < 0.98 ? pick(rand, USERS.slice(0, 4)) : pick(rand, USERS))],
    ['value', pick(rand, VALUES)],
    ['metadata', pick(rand, METADATA)],
  ];
  for (const [k, f] of rand() < 0.3 ? fields.reverse() : fields) {
    const v = f();
    if (v !== undefined && rand() < 0.995) e[k] = v;
  }
  if (rand() < 0.005) e.extra = 1;
  return e;
}

/** The body as text, compact or spaced, sometimes changed by hand where JSON.stringify cannot write it. */
function bodyText(rand: () => number, events: Array<Record<string, unknown>>): string {
  const wrapped = rand() < 0.5;
  let text = JSON.stringify(wrapped ? { events } : events, null, rand() < 0.2 ? 1 : undefined);
  const r = rand();
  if (r < 0.05) text = text.replace('"timestamp":0', '"timestamp":-0');
  else if (r < 0.1) text = text.replace('"value":0', '"value":-0.0');
  else if (r < 0.15) text = text.replace('"user_id":"u1"', '"user_id":"u\\u0031"');
  else if (r < 0.2) text = text.replace('"plan":"pro"', '"plan" : "pro"');
  else if (r < 0.25) text = text.replace('"timestamp":0', '"timestamp":0.0');
  else if (r < 0.3) text = text.replace('"value":12.34', '"value":1234e-2');
  else if (r < 0.35) text = text.replace('"value":12.34', '"value":012.34');
  else if (r < 0.4) text = text.replace(/"event_type":"click"/, '"event_type":"click","event_type":"click"');
  else if (r < 0.45) text = text.slice(0, Math.floor(rand() * text.length));
  else if (r < 0.5) text = text.replace('{"2":"two","1":"one"}', '{"2":"two","1":"one","2":"dup"}');
  return text;
}

describe('scanBatch', () => {
  it('stores what JSON.parse and eventColumns store, and accepts nothing they refuse, on 3,000 random bodies', () => {
    const rand = rng(41);
    let scanned = 0;
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const events = Array.from({ length: 1 + Math.floor(rand() * 12) }, () => randomEvent(rand));
      const text = bodyText(rand, events);
      const maxDepth = pick(rand, [3, 4, 5, 32]);
      const shards = pick(rand, [1, 2, 3]);
      const cols = scanBatch(Buffer.from(text), NOW, DAY, shards, maxDepth);
      const mine = cols === null ? null : snapshot(cols);
      const reference = parsedPath(text, maxDepth, shards);
      if (mine === null) {
        refused++;
        continue;
      }
      scanned++;
      expect(reference, text.slice(0, 300)).not.toBeNull();
      expect(mine, text.slice(0, 300)).toEqual(reference);
    }
    // both ways taken often
    expect(scanned).toBeGreaterThan(250);
    expect(refused).toBeGreaterThan(250);
  });

  it('reads the bench bodies whole: compact, 1,000 events, one in five with metadata', () => {
    const rand = rng(5);
    const events = Array.from({ length: 1000 }, (_, i) => ({
      timestamp: NOW - Math.floor(rand() * 3_600_000),
      event_type: pick(rand, ['page_view', 'click', 'purchase']),
      user_id: `user-${Math.floor(rand() * 100_000)}`,
      value: Math.round(rand() * 10_000) / 100,
      ...(i % 5 === 0 ? { metadata: { plan: rand() < 0.5 ? 'free' : 'pro' } } : {}),
    }));
    const text = JSON.stringify({ events });
    const cols = scanBatch(Buffer.from(text), NOW, DAY, 2, 32);
    expect(cols).not.toBeNull();
    const mine = snapshot(cols!);
    expect(mine).toEqual(parsedPath(text, 32, 2));
    expect(mine.rows[0]!.value).toBe(events[0]!.value);
  });

  it('gives every cut-short body back to JSON.parse (null), wherever it is cut, without throwing', () => {
    // a body cut right after a key's opening quote threw a TypeError here (a 500, not the parse path's 400)
    const full = JSON.stringify({ events: [{ timestamp: NOW - 5, event_type: 'click', user_id: 'u1', value: -0.5, metadata: { plan: 'pro', n: [1, { a: null }] } }, { event_type: 'ü', user_id: 'é😀' }] });
    // spaced: read by the scan too, but for the metadata (not as JSON.stringify writes it)
    const spaced = JSON.stringify({ events: [{ ...JSON.parse(full).events[0], metadata: null }, JSON.parse(full).events[1]] }, null, 1);
    for (const text of [full, spaced]) {
      const bytes = Buffer.from(text);
      for (let end = 0; end < bytes.length; end++) expect(scanBatch(bytes.subarray(0, end), NOW, DAY, 2, 32), `cut at ${end}`).toBeNull();
      expect(scanBatch(bytes, NOW, DAY, 2, 32), text).not.toBeNull();
    }
  });

  it('leaves to JSON.parse what is not valid UTF-8, an empty batch and a body over the depth limit', () => {
    const ok = '{"event_type":"a","user_id":"u"}';
    expect(scanBatch(Buffer.concat([Buffer.from(`[{"event_type":"a","user_id":"`), Buffer.from([0xff]), Buffer.from('"}]')]), NOW, null, 1, 32)).toBeNull();
    expect(scanBatch(Buffer.from('[]'), NOW, null, 1, 32)).toBeNull();
    expect(scanBatch(Buffer.from(`{"events":[${ok}]}`), NOW, null, 1, 2)).toBeNull();
    expect(scanBatch(Buffer.from(`{"events":[${ok}]}`), NOW, null, 1, 3)).not.toBeNull();
    expect(scanBatch(Buffer.from(`[{"event_type":"a","user_id":"u","metadata":{"a":{}}}]`), NOW, null, 1, 3)).toBeNull();
    expect(scanBatch(Buffer.from(`[{"event_type":"a","user_id":"u","metadata":{"a":{}}}]`), NOW, null, 1, 4)).not.toBeNull();
    expect(scanBatch(Buffer.from(`\ufeff[${ok}]`), NOW, null, 1, 32)).toBeNull();
  });
});
