import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { KeyStore } from './key-store.js';
import { KeyLog } from './key-log.js';
import { IdempotencyKeys } from './idempotency-keys.js';
import type { StoredKey } from '../../shards/protocol.js';

const HOUR = 3_600_000;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'keys-'));
  dirs.push(d);
  return d;
};

describe('KeyStore', () => {
  it('evicts the oldest done keys first beyond maxKeys, never one in flight', () => {
    const s = new KeyStore(3, HOUR);
    const now = Date.now();
    s.set('busy', { state: 'inflight', hash: 'h', at: now });
    for (const k of ['a', 'b', 'c', 'd', 'e']) s.set(k, { state: 'done', hash: 'h', at: now, status: 200, answer: {} });
    expect(['busy', 'a', 'b', 'c', 'd', 'e'].map((k) => s.get(k)?.state ?? null)).toEqual(['inflight', null, null, 'done', 'done', 'done']);
    expect([s.size, s.inFlight, s.evicted]).toEqual([3, 1, 2]);
    // a key keeps its place when its state changes: 'busy' is now the oldest
    s.set('busy', { state: 'done', hash: 'h', at: now, status: 200, answer: {} });
    expect(s.get('busy')).toBeUndefined();
    expect(s.evicted).toBe(3);
  });

  it('forgets a key idempotencyWindow after its request', () => {
    const s = new KeyStore(10, HOUR);
    const t0 = 1_000_000_000_000;
    s.set('old', { state: 'done', hash: 'h', at: t0, status: 202, answer: {} });
    s.set('new', { state: 'partial', hash: 'h', at: t0 + HOUR / 2, shards: [1] });
    expect(s.get('old', t0 + HOUR - 1)?.state).toBe('done');
    expect(s.get('old', t0 + HOUR)).toBeUndefined();
    expect(s.sweep(t0 + HOUR + 1)).toBe(0); // already dropped by the lookup
    expect(s.sweep(t0 + 2 * HOUR)).toBe(1);
    expect(s.size).toBe(0);
  });
});

describe('KeyLog', () => {
  it('reads back what was appended, cuts a torn tail, and compacts to the live records', async () => {
    const dir = tempDir();
    const first = await KeyLog.open(dir, { fsync: true });
    await Promise.all([first.log.append({ k: 'a', h: 'x', e: 1, s: 200, b: '{"accepted":1}' }), first.log.append({ k: 'b', h: 'y', e: 2, p: [0] })]);
    await first.log.close();
    appendFileSync(join(dir, 'keys.log'), Buffer.from([40, 0, 0, 0, 1, 2, 3])); // a record cut in its header's promise
    const second = await KeyLog.open(dir, { fsync: true });
    expect(second.records).toEqual([
      { k: 'a', h: 'x', e: 1, s: 200, b: '{"accepted":1}' },
      { k: 'b', h: 'y', e: 2, p: [0] },
    ]);
    expect(second.cutBytes).toBe(7);
    await second.log.compact([{ k: 'b', h: 'y', e: 2, s: 202, b: '{}' }]);
    await second.log.append({ k: 'c', h: 'z', e: 3, s: 200, b: '{}' });
    await second.log.close();
    const third = await KeyLog.open(dir, { fsync: true });
    expect(third.records.map((r) => r.k)).toEqual(['b', 'c']);
    expect(statSync(join(dir, 'keys.log')).size).toBe(third.log.bytes);
    await third.log.close();
  });
});

describe('IdempotencyKeys at start', () => {
  const logger = pino({ level: 'silent' });
  const stored = (key: string, at: number, over: Partial<StoredKey> = {}): StoredKey => ({ key, hash: 'H', at, events: 5, total: 10, parts: 2, wait: true, ...over });

  it('rebuilds keys from the shard logs: on every shard → answered (200 for wait), on some → partial; the key log keeps them', async () => {
    const dir = tempDir();
    const now = Date.now();
    const opts = { dir, fsync: true, windowMs: HOUR, maxKeys: 100, logger };
    const keys = await IdempotencyKeys.open(opts, [[stored('both', now), stored('half', now), stored('old', now - 2 * HOUR)], [stored('both', now)]]);
    expect(keys.lookup('both', 'H')).toEqual({ kind: 'replay', status: 200, body: JSON.stringify({ accepted: 10, buffered: 0, timestamp: new Date(now).toISOString(), durable: true }) });
    expect(keys.lookup('both', 'other')).toEqual({ kind: 'mismatch' });
    expect(keys.lookup('half', 'H')).toEqual({ kind: 'resume', skip: new Set([0]) });
    expect(keys.lookup('old', 'H')).toEqual({ kind: 'new' });
    await keys.close();
    // without the shards' help the next start knows the same
    const again = await IdempotencyKeys.open(opts, [[], []]);
    expect(again.lookup('both', 'H').kind).toBe('replay');
    expect(again.lookup('half', 'H')).toEqual({ kind: 'resume', skip: new Set([0]) });
    await again.close();
    expect(readFileSync(join(dir, 'keys.log')).length).toBeGreaterThan(0);
  });

  it('answers in flight (409) until the answer is recorded, then replays it; a 202 key reaches the log only once durable', async () => {
    const dir = tempDir();
    const opts = { dir, fsync: true, windowMs: HOUR, maxKeys: 100, logger };
    const keys = await IdempotencyKeys.open(opts, []);
    const at = Date.now();
    keys.inflight('k', 'H', at);
    expect(keys.lookup('k', 'H')).toEqual({ kind: 'inflight' });
    await keys.answered('k', 'H', at, 202, { accepted: 3 }, false);
    expect(keys.lookup('k', 'H')).toEqual({ kind: 'replay', status: 202, body: '{"accepted":3}' });
    await keys.close();
    const notYet = await IdempotencyKeys.open(opts, []);
    expect(notYet.lookup('k', 'H')).toEqual({ kind: 'new' });
    await notYet.answered('k', 'H', at, 202, { accepted: 3 }, false);
    await notYet.durable('k');
    await notYet.close();
    const durable = await IdempotencyKeys.open(opts, []);
    expect(durable.lookup('k', 'H')).toEqual({ kind: 'replay', status: 202, body: '{"accepted":3}' });
    await durable.close();
  });
});
