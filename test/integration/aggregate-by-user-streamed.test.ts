/**
 * A by-user aggregate over STREAM_ROWS_FROM bytes of rows is merged while it is sent
 * (src/kinds/aggregate.ts, RowsMerge): the answer a client reads, slowly or at once, equals
 * brute force, keeps its Content-Length, and is refused whole before any byte when it is over
 * maxResponseBytes.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { request } from 'node:http';
import { STREAM_ROWS_FROM } from '../../src/kinds/stream-rows.js';

// the engine runs in this process: a 4 MiB threshold lets a 6 MB answer take the streamed path
vi.mock('../../src/kinds/stream-rows.js', () => ({ STREAM_ROWS_FROM: 4 * 1024 * 1024 }));
import { postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { expectBruteAggregate } from '../helpers/expect-aggregate.js';
import { makeEvents, type TestEvent } from '../helpers/random-events.js';

const events: TestEvent[] = makeEvents(60_000, 23, { users: 40_000 });
const QUERY = { groupBy: ['user_id', 'event_type'], metrics: ['value'] };
let engine: RunningEngine;

beforeAll(async () => {
  engine = await startEngine({ shards: 3 });
  for (let i = 0; i < events.length; i += 10_000) {
    expect((await postJson(`${engine.ingestUrl}/ingest/batch?wait=true`, { events: events.slice(i, i + 10_000) })).status).toBe(200);
  }
}, 60_000);
afterAll(() => engine?.stop());

/** The answer read 64 KiB at a time with a pause after each read: the merge waits for the socket. */
function readSlowly(url: string, body: string): Promise<{ status: number; length: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('readable', function read() {
        const chunk = res.read(65536) as Buffer | null;
        if (chunk === null) return;
        chunks.push(chunk);
        res.pause();
        setTimeout(() => {
          res.resume();
          read();
        }, 1);
      });
      res.on('end', () => resolve({ status: res.statusCode!, length: Number(res.headers['content-length']), text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('a by-user answer merged as it is sent', () => {
  it('equals brute force, read at once and read slowly, with its Content-Length', async () => {
    const res = await fetch(`${engine.queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(QUERY) });
    expect(res.status).toBe(200);
    const text = await res.text();
    // big enough to take the streamed path
    expect(Buffer.byteLength(text)).toBeGreaterThan(STREAM_ROWS_FROM);
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    const rows = (JSON.parse(text) as { results: Array<Record<string, any>> }).results;
    expectBruteAggregate(rows, events, ['user_id', 'event_type']);

    const slow = await readSlowly(`${engine.queryUrl}/query/aggregate`, JSON.stringify(QUERY));
    expect(slow.status).toBe(200);
    expect(Buffer.byteLength(slow.text)).toBe(slow.length);
    const again = (JSON.parse(slow.text) as { results: Array<Record<string, any>> }).results;
    expect(again).toEqual(rows);
  }, 60_000);

  it('is refused whole with a 400 naming maxResponseBytes when over it, before any byte', async () => {
    const limited = await startEngine({ shards: 3, maxResponseBytes: STREAM_ROWS_FROM + 1000 });
    try {
      for (let i = 0; i < events.length; i += 10_000) {
        expect((await postJson(`${limited.ingestUrl}/ingest/batch?wait=true`, { events: events.slice(i, i + 10_000) })).status).toBe(200);
      }
      const res = await postJson(`${limited.queryUrl}/query/aggregate`, QUERY);
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toContain('maxResponseBytes');
    } finally {
      await limited.stop();
    }
  }, 60_000);
});
