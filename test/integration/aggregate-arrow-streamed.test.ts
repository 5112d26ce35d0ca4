/**
 * A by-user Arrow answer over STREAM_ARROW_FROM bytes of partials is sent while the merge pool
 * gathers its later record batches (MergePool.stream): the answer a client reads, at once or
 * slowly, equals the JSON answer and brute force, with its Content-Length. A client gone after
 * the first chunk and a pool worker killed mid-stream leave the engine answering whole, the
 * answer budget back to 0 and no stream open; the killed one is a short body against its
 * Content-Length, never a valid smaller table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { connect } from 'node:net';
import type { Worker } from 'node:worker_threads';
import { tableFromIPC } from 'apache-arrow';
import { ARROW_BATCH_ROWS } from '../../src/merge/aggregate-arrow.js';
import type { MergePool } from '../../src/kinds/merge-pool.js';
import { arrowBody } from '../helpers/arrow-body.js';
import { postBody, postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { expectBruteAggregate } from '../helpers/expect-aggregate.js';

// ~340,000 (event_type, user_id) groups: 6 record batches, ~30 MB of Arrow
const events = Array.from({ length: 400_000 }, (_, i) => ({
  timestamp: Date.UTC(2026, 0, 1) + i,
  event_type: i % 7 ? 'click' : 'view',
  user_id: `u${(i * 7919) % 300_000}`,
  value: i % 11 ? i / 8 : null,
}));
const QUERY = { groupBy: ['event_type', 'user_id'], metrics: ['value'] };
const ARROW_QUERY = JSON.stringify({ ...QUERY, format: 'arrow' });
type Row = Record<string, string | number | null>;

let engine: RunningEngine;
let pool: MergePool;
let json: Row[];

beforeAll(async () => {
  engine = await startEngine({ shards: 2, maxResultCells: 2_000_000 });
  pool = engine.engine.ctx.mergePool;
  for (let i = 0; i < events.length; i += 100_000) {
    const res = await postBody(`${engine.ingestUrl}/ingest/arrow?wait=true`, arrowBody(events.slice(i, i + 100_000)), { 'content-type': 'application/vnd.apache.arrow.stream' });
    expect(res.status).toBe(200);
  }
  const res = await postJson(`${engine.queryUrl}/query/aggregate`, QUERY);
  expect(res.status).toBe(200);
  json = res.body.results;
}, 120_000);
afterAll(() => engine?.stop());

const rowsOf = (bytes: Uint8Array): Row[] =>
  tableFromIPC(bytes)
    .toArray()
    .map((r) => Object.fromEntries(Object.entries(r.toJSON() as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : (v as string | number | null)])));

async function held(): Promise<number> {
  const text = await (await fetch(`${engine.queryUrl}/metrics`)).text();
  return Number(text.split('\n').find((l) => l.startsWith('shardlytics_answer_bytes_in_flight '))!.split(' ')[1]);
}

/** Until the answer budget holds nothing and no streaming merge is open. */
async function settled(): Promise<void> {
  while ((await held()) !== 0 || pool.streams.open !== 0) await new Promise((r) => setTimeout(r, 20));
}

interface RawAnswer {
  status: number;
  length: number;
  body: Buffer;
  /** the body arrived whole (`IncomingMessage.complete`) */
  complete: boolean;
}

/**
 * POSTs the Arrow query over a raw connection. `onChunk(i)` runs at each body chunk and may
 * return 'slow' (read the rest 64 KiB at a time with a pause after each) or 'close' (destroy
 * the connection and resolve).
 */
function ask(onChunk: (i: number) => 'go' | 'slow' | 'close' = () => 'go'): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(`${engine.queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ARROW_QUERY) } }, (res) => {
      const chunks: Buffer[] = [];
      let i = 0;
      let slow = false;
      const done = () => resolve({ status: res.statusCode!, length: Number(res.headers['content-length']), body: Buffer.concat(chunks), complete: res.complete });
      res.on('readable', function read() {
        for (;;) {
          const chunk = res.read(slow ? 65_536 : undefined) as Buffer | null;
          if (chunk === null) return;
          chunks.push(chunk);
          const what = onChunk(i++);
          if (what === 'close') {
            req.destroy();
            return done();
          }
          if (what === 'slow' || slow) {
            slow = true;
            return void setTimeout(read, 1);
          }
        }
      });
      res.on('end', done);
      // a connection cut by the engine: the body is what came before
      res.on('aborted', done);
      res.on('error', done);
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.end(ARROW_QUERY);
  });
}

describe('a by-user Arrow answer sent while it is merged', () => {
  it('equals the JSON answer and brute force, read at once and read slowly, with its Content-Length, in record batches of ARROW_BATCH_ROWS', async () => {
    const before = { ...pool.streams };
    const fast = await ask();
    expect(fast.status, fast.body.subarray(0, 300).toString()).toBe(200);
    expect(fast.complete).toBe(true);
    expect(fast.body.length).toBe(fast.length);
    const table = tableFromIPC(fast.body);
    expect(table.numRows).toBeGreaterThan(4 * ARROW_BATCH_ROWS);
    expect(table.batches.length).toBe(Math.ceil(table.numRows / ARROW_BATCH_ROWS));
    const rows = rowsOf(fast.body);
    expect(rows).toEqual(json);
    expectBruteAggregate(rows, events, ['event_type', 'user_id']);

    const slow = await ask(() => 'slow');
    expect(slow.status).toBe(200);
    expect(slow.complete).toBe(true);
    expect(Buffer.compare(slow.body, fast.body)).toBe(0);
    // both went through the streaming merge, and both ended
    expect(pool.streams.ended - before.ended).toBe(2);
    await settled();
  }, 120_000);

  it('a client gone after the first chunk: the merge is stopped or done, its bytes given back, and the next answer whole', async () => {
    const before = { ...pool.streams };
    const gone = await ask(() => 'close');
    expect(gone.status).toBe(200);
    expect(gone.body.length).toBeLessThan(gone.length);
    await settled();
    // the feed was cancelled (the worker stopped before its next batch), or had ended just before
    expect(pool.streams.cancelled + pool.streams.ended - before.cancelled - before.ended).toBe(1);
    expect(pool.streams.failed).toBe(before.failed);
    const again = await ask();
    expect(again.complete).toBe(true);
    expect(rowsOf(again.body)).toEqual(json);
    await settled();
    console.log(JSON.stringify({ measured: 'arrow answer whose client left after its first chunk', merge: pool.streams.cancelled > before.cancelled ? 'stopped' : 'had ended' }));
  }, 120_000);

  it('an answer over maxResponseBytes, or past the answer budget, is refused with JSON before any byte, and its merge stopped', async () => {
    const { config } = engine.engine.ctx;
    const whole = (await ask()).length;
    const max = config.maxResponseBytes;
    const before = { ...pool.streams };
    // (read per request by the app; the shards keep the bound they were given, so only the app refuses)
    config.maxResponseBytes = whole - 1;
    try {
      const res = await postJson(`${engine.queryUrl}/query/aggregate`, { ...QUERY, format: 'arrow' });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/json');
      expect(res.body.error).toBe('LIMIT_EXCEEDED');
      expect(JSON.stringify(res.body)).toContain('maxResponseBytes');
    } finally {
      config.maxResponseBytes = max;
    }
    await settled();
    expect(pool.streams.cancelled + pool.streams.ended - before.cancelled - before.ended).toBe(1);
    // one answer held by a client that reads nothing, a budget with room for it only: the next is refused
    const budget = engine.engine.ctx.answers!;
    const maxBytes = budget.maxBytes;
    (budget as { maxBytes: number }).maxBytes = whole + 1;
    try {
      // a raw socket that never reads: far more bytes than loopback socket buffers take
      const url = new URL(engine.queryUrl);
      const socket = connect(Number(url.port), url.hostname);
      socket.pause();
      socket.on('error', () => undefined);
      socket.write(`POST /query/aggregate HTTP/1.1\r\nHost: ${url.hostname}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(ARROW_QUERY)}\r\n\r\n${ARROW_QUERY}`);
      const release = () => socket.destroy();
      while ((await held()) !== whole) await new Promise((r) => setTimeout(r, 20));
      const refused = await postJson(`${engine.queryUrl}/query/aggregate`, { ...QUERY, format: 'arrow' });
      expect(refused.status).toBe(503);
      expect(refused.body.error).toBe('OVERLOADED');
      release();
    } finally {
      (budget as { maxBytes: number }).maxBytes = maxBytes;
    }
    await settled();
    expect(pool.streams.failed).toBe(before.failed);
  }, 120_000);

  it('a pool worker killed while the answer streams: the body is short against its Content-Length and the connection cut, never a valid smaller table; the next answer is whole', async () => {
    const threads = (pool as unknown as { pool: { threads: Worker[] } }).pool.threads;
    const before = { ...pool.streams };
    const cut = await ask((i) => {
      // the client has the first bytes: the worker is still gathering later batches
      if (i === 0) for (const t of threads) void t.terminate();
      return 'go';
    });
    expect(cut.status).toBe(200);
    expect(cut.complete).toBe(false);
    expect(cut.body.length).toBeLessThan(cut.length);
    // what came is a prefix of the whole answer, without its end
    const whole = (await ask()).body;
    expect(Buffer.compare(cut.body, whole.subarray(0, cut.body.length))).toBe(0);
    await settled();
    expect(pool.streams.failed - before.failed).toBe(1);
    expect(rowsOf(whole)).toEqual(json);
  }, 120_000);
});
