/**
 * Idempotency-Key on every ingest route, with real shards, logs and restarts: a retry gets the
 * first answer again and stores nothing; another body → 422; a retry while the first is in flight
 * (its sync made slow with the test-only log fault hook) → 409; keys survive a restart, and even a
 * lost key log (a crash after the events were synced and before the key was recorded): the key
 * travels inside the shard log's batch record, so the retry is still a replay.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeDataDir, removeDataDir, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { storedTotals } from '../helpers/shard-probes.js';
import { LOG_FAULTS_ENV } from '../../src/shards/log/fault-injection.js';

// The shard workers read this when they start; the fault is armed only while the file exists.
const faultDir = mkdtempSync(join(tmpdir(), 'idem-faults-'));
const faultFile = join(faultDir, 'faults.json');
process.env[LOG_FAULTS_ENV] = faultFile;

afterAll(() => rmSync(faultDir, { recursive: true, force: true }));

const engines: RunningEngine[] = [];
const dirs: string[] = [];
afterEach(async () => {
  rmSync(faultFile, { force: true });
  for (const e of engines.splice(0)) await e.stop();
  for (const d of dirs.splice(0)) removeDataDir(d);
});

async function start(...args: Parameters<typeof startEngine>): Promise<RunningEngine> {
  const e = await startEngine(...args);
  engines.push(e);
  return e;
}

interface Answer {
  status: number;
  text: string;
  replayed: string | null;
}

async function send(url: string, key: string | null, body: string, contentType = 'application/json'): Promise<Answer> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': contentType, ...(key ? { 'idempotency-key': key } : {}) }, body });
  return { status: res.status, text: await res.text(), replayed: res.headers.get('idempotent-replayed') };
}

const events = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ event_type: 'buy', user_id: `u${(from + i) % 13}`, value: from + i }));
const sumOf = (from: number, n: number) => (n * (2 * from + n - 1)) / 2;

describe('Idempotency-Key', () => {
  it('on every route, a retry gets the first answer again (same status and body, Idempotent-Replayed: true) and stores nothing new', async () => {
    const e = await start({ shards: 2 });
    const cases = [
      { route: '/ingest', body: JSON.stringify(events(0, 1)[0]), type: 'application/json', n: 1, from: 0 },
      { route: '/ingest/batch', body: JSON.stringify({ events: events(1, 10) }), type: 'application/json', n: 10, from: 1 },
      { route: '/ingest/ndjson', body: events(11, 7).map((ev) => JSON.stringify(ev)).join('\n'), type: 'application/x-ndjson', n: 7, from: 11 },
    ];
    for (const wait of [false, true]) {
      for (const c of cases) {
        const key = `${c.route}-${wait}`;
        const url = `${e.ingestUrl}${c.route}${wait ? '?wait=true' : ''}`;
        const first = await send(url, key, c.body, c.type);
        expect(first.status, first.text).toBe(wait ? 200 : 202);
        expect(first.replayed).toBeNull();
        for (let retry = 0; retry < 2; retry++) {
          const again = await send(url, key, c.body, c.type);
          expect(again).toEqual({ status: first.status, text: first.text, replayed: 'true' });
        }
      }
    }
    // each case stored twice (once per wait mode), never three times
    const n = cases.reduce((t, c) => t + c.n, 0);
    expect(await storedTotals(e.queryUrl)).toEqual({ count: 2 * n, sum: 2 * sumOf(0, n) });
  });

  it('refuses the same key for another body or route with 422 naming Idempotency-Key, and a malformed key with 400', async () => {
    const e = await start({ shards: 2 });
    const body = JSON.stringify({ events: events(0, 5) });
    expect((await send(`${e.ingestUrl}/ingest/batch`, 'k1', body)).status).toBe(202);
    for (const [url, other] of [
      [`${e.ingestUrl}/ingest/batch`, JSON.stringify({ events: events(0, 4) })],
      [`${e.ingestUrl}/ingest/batch`, body + ' '],
      [`${e.ingestUrl}/ingest`, JSON.stringify(events(0, 1)[0])],
    ] as const) {
      const res = await send(url, 'k1', other);
      expect(res.status).toBe(422);
      const parsed = JSON.parse(res.text);
      expect(parsed.error).toBe('IDEMPOTENCY_KEY_REUSED');
      expect(parsed.message).toContain('Idempotency-Key');
      expect(parsed.errors[0].field).toBe('Idempotency-Key');
    }
    for (const bad of ['', 'has space', 'x'.repeat(129), 'semi;colon', 'quote"d']) {
      const res = await fetch(`${e.ingestUrl}/ingest/batch`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': bad }, body });
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { errors: Array<{ field: string }> }).errors[0]!.field).toBe('Idempotency-Key');
    }
    expect((await storedTotals(e.queryUrl)).count).toBe(5);
  });

  it('answers 409 to a retry while the first request waits for its sync, 504 after waitTimeoutMs, then replays the 200 once it is durable', async () => {
    const e = await start({ shards: 2, waitTimeoutMs: 300 });
    const body = JSON.stringify({ events: events(100, 20) });
    // a slow disk: every sync takes 1.5 s
    writeFileSync(faultFile, JSON.stringify({ delayMs: 1500, ops: ['sync'] }));
    const first = send(`${e.ingestUrl}/ingest/batch?wait=true`, 'slow', body);
    // the first is in the rings (so its key is in flight) before the retry is sent
    const pushed = () => e.engine.ctx.shards.reduce((n, s) => n + s.ring.pushed(), 0);
    while (pushed() < 20) await new Promise((r) => setTimeout(r, 5));
    const during = await send(`${e.ingestUrl}/ingest/batch?wait=true`, 'slow', body);
    expect(during.status).toBe(409);
    expect(JSON.parse(during.text)).toMatchObject({ error: 'IDEMPOTENCY_KEY_IN_FLIGHT' });
    const timedOut = await first;
    expect(timedOut.status).toBe(504);
    expect(JSON.parse(timedOut.text)).toMatchObject({ error: 'DURABILITY_TIMEOUT' });
    expect(JSON.parse(timedOut.text).message).toContain('Idempotency-Key');
    rmSync(faultFile);
    // once the sync is through, the key holds the answer the request would have had
    let retry: Answer;
    do {
      await new Promise((r) => setTimeout(r, 100));
      retry = await send(`${e.ingestUrl}/ingest/batch?wait=true`, 'slow', body);
    } while (retry.status === 409);
    expect(retry.status).toBe(200);
    expect(retry.replayed).toBe('true');
    expect(JSON.parse(retry.text)).toMatchObject({ accepted: 20, durable: true });
    expect(await storedTotals(e.queryUrl)).toEqual({ count: 20, sum: sumOf(100, 20) });
  });

  it('keeps its keys over a restart, and over a lost key log: the keys in the shard logs make the retry a replay', async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const a = JSON.stringify({ events: events(0, 30) });
    const b = JSON.stringify({ events: events(30, 30) });
    const first = await start({ shards: 2, dataDir });
    const answerA = await send(`${first.ingestUrl}/ingest/batch?wait=true`, 'key-a', a);
    const answerB = await send(`${first.ingestUrl}/ingest/batch`, 'key-b', b);
    expect([answerA.status, answerB.status]).toEqual([200, 202]);
    await first.stop();
    engines.splice(engines.indexOf(first), 1);

    const second = await start({ shards: 2, dataDir });
    expect(await send(`${second.ingestUrl}/ingest/batch?wait=true`, 'key-a', a)).toEqual({ ...answerA, replayed: 'true' });
    expect(await send(`${second.ingestUrl}/ingest/batch`, 'key-b', b)).toEqual({ ...answerB, replayed: 'true' });
    expect((await send(`${second.ingestUrl}/ingest/batch`, 'key-a', b)).status).toBe(422);
    await second.stop();
    engines.splice(engines.indexOf(second), 1);

    // as if the engine died after the shards synced the events and before the key log had them
    unlinkSync(join(dataDir, 'idempotency', 'keys.log'));
    const third = await start({ shards: 2, dataDir });
    const again = await send(`${third.ingestUrl}/ingest/batch?wait=true`, 'key-a', a);
    expect(again.status).toBe(200);
    expect(again.replayed).toBe('true');
    expect(JSON.parse(again.text)).toMatchObject({ accepted: 30, durable: true });
    const againB = await send(`${third.ingestUrl}/ingest/batch`, 'key-b', b);
    expect([againB.status, againB.replayed]).toEqual([202, 'true']);
    expect((await send(`${third.ingestUrl}/ingest/batch`, 'key-a', b)).status).toBe(422);
    expect(await storedTotals(third.queryUrl)).toEqual({ count: 60, sum: sumOf(0, 60) });
  });
});
