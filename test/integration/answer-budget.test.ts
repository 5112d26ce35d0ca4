/**
 * Answers held for their clients are bounded all together (maxAnswerBytesInFlight), and an answer
 * whose client takes nothing is cut off after sendStallTimeoutMs, which gives its bytes back:
 * clients that ask for a large answer and never read it cannot pin the engine's memory.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { arrowBody, type ArrowEvent } from '../helpers/arrow-body.js';
import { makeDataDir, postBody, removeDataDir, startEngine, type RunningEngine } from '../helpers/engine-harness.js';

const USERS = 120_000;
const QUERY = { groupBy: ['user_id', 'event_type'], metrics: ['value'] };
const dir = makeDataDir();
let engine: RunningEngine | null = null;
afterAll(async () => {
  await engine?.stop();
  removeDataDir(dir);
});

async function metric(queryUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${queryUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  if (!line) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Polls `check` until it holds (the test's own timeout bounds the wait). */
async function until(check: () => Promise<boolean>): Promise<void> {
  for (;;) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sends the aggregate on a raw socket and never reads the answer. */
function neverReading(queryUrl: string, query: Record<string, unknown> = QUERY): { socket: Socket; closed: Promise<void> } {
  const { hostname, port } = new URL(queryUrl);
  const body = JSON.stringify(query);
  const socket = connect(Number(port), hostname);
  socket.pause();
  socket.write(`POST /query/aggregate HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => undefined);
  return { socket, closed };
}

describe('answers in flight', () => {
  it('refuses an answer past maxAnswerBytesInFlight with a 503 while a client holds one unread, lets small ones through, and cuts the stalled one off after sendStallTimeoutMs', async () => {
    // one event per user: an answer of ~120,000 rows (~17 MB), far more than loopback socket buffers take
    const events: ArrowEvent[] = Array.from({ length: USERS }, (_, i) => ({ timestamp: Date.UTC(2026, 0, 1) + i, event_type: i % 3 ? 'click' : 'view', user_id: `u${i}`, value: i / 7 }));
    const first = await startEngine({ dataDir: dir, shards: 2 });
    for (let i = 0; i < events.length; i += 40_000) {
      const res = await postBody(`${first.ingestUrl}/ingest/arrow?wait=true`, arrowBody(events.slice(i, i + 40_000)), { 'content-type': 'application/vnd.apache.arrow.stream' });
      expect(res.status).toBe(200);
    }
    const whole = await fetch(`${first.queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(QUERY) });
    expect(whole.status).toBe(200);
    const bytes = (await whole.arrayBuffer()).byteLength;
    expect(bytes).toBeGreaterThan(12_000_000);
    await first.stop();

    // room for one such answer and a little more, not two
    engine = await startEngine({ dataDir: dir, shards: 2, maxResponseBytes: bytes + 1000, maxAnswerBytesInFlight: Math.floor(bytes * 1.5), sendStallTimeoutMs: 1500 });
    const { queryUrl } = engine;
    const held = neverReading(queryUrl);
    await until(async () => (await metric(queryUrl, 'shardlytics_answer_bytes_in_flight')) >= bytes - 1000);

    const refused = await fetch(`${queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(QUERY) });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    const why = (await refused.json()) as { error: string; message: string };
    expect(why.error).toBe('OVERLOADED');
    expect(why.message).toContain('maxAnswerBytesInFlight');

    // a small answer still fits beside it
    const small = await fetch(`${queryUrl}/query/summary`);
    expect(small.status).toBe(200);
    expect(((await small.json()) as { stats: { count: number } }).stats.count).toBe(USERS);

    // the reader that never reads is cut off (the server closes its end: a paused socket sees it
    // only when it reads), its bytes given back, and the same query answered whole
    await until(async () => (await metric(queryUrl, 'shardlytics_answer_bytes_in_flight')) === 0);
    held.socket.resume();
    await held.closed;
    const again = await fetch(`${queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(QUERY) });
    expect(again.status).toBe(200);
    const rows = ((await again.json()) as { results: Array<{ user_id: string; count: number }> }).results;
    expect(rows).toHaveLength(USERS);
    expect(rows.reduce((n, r) => n + r.count, 0)).toBe(USERS);
    expect(await metric(queryUrl, 'shardlytics_answers_refused_total{reason="budget"}')).toBe(1);
    expect(await metric(queryUrl, 'shardlytics_answers_refused_total{reason="stalled"}')).toBe(1);

    // an Arrow answer's bytes are held against the budget the same way, until it is cut off
    const arrowQuery = { ...QUERY, format: 'arrow' };
    const read = await fetch(`${queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(arrowQuery) });
    const arrowBytes = (await read.arrayBuffer()).byteLength;
    expect(arrowBytes).toBeGreaterThan(6_000_000);
    const arrow = neverReading(queryUrl, arrowQuery);
    await until(async () => (await metric(queryUrl, 'shardlytics_answer_bytes_in_flight')) === arrowBytes);
    await until(async () => (await metric(queryUrl, 'shardlytics_answer_bytes_in_flight')) === 0);
    arrow.socket.resume();
    await arrow.closed;
    expect(await metric(queryUrl, 'shardlytics_answers_refused_total{reason="stalled"}')).toBe(2);
  }, 120_000);
});
