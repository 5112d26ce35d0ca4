/**
 * A by-user aggregate over STREAM_ROWS_FROM bytes of rows is merged while it is sent
 * (src/kinds/aggregate.ts, RowsMerge): the answer a client reads, slowly or at once, equals
 * brute force, keeps its Content-Length, and is refused whole before any byte when it is over
 * maxResponseBytes. A client that goes away midway and a polars process killed with -9 while the
 * answer streams leave the engine answering whole.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { request } from 'node:http';
import { getJson } from '../helpers/engine-harness.js';
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

  it('a client gone midway gives its answer\'s bytes back; kill -9 of a polars process while an answer streams leaves that answer whole; both then answered again', async () => {
    const body = JSON.stringify(QUERY);
    const held = async () => {
      const text = await (await fetch(`${engine.queryUrl}/metrics`)).text();
      return Number(text.split('\n').find((l) => l.startsWith('shardlytics_answer_bytes_in_flight '))!.split(' ')[1]);
    };
    // the client reads its first chunk, then closes the connection
    await new Promise<void>((resolve) => {
      const req = request(`${engine.queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      req.on('close', () => resolve());
      req.end(body);
    });
    while ((await held()) !== 0) await new Promise((r) => setTimeout(r, 20));

    // kill -9 of a shard's polars process once the answer is streaming: its rows are in this process already
    const stats = (await getJson(`${engine.queryUrl}/stats/shards`)).body as { shards: Array<{ polars_pid: number }> };
    const pid = stats.shards[0]!.polars_pid;
    const streamed = await new Promise<string>((resolve, reject) => {
      const req = request(`${engine.queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        const chunks: Buffer[] = [];
        res.once('data', () => process.kill(pid, 'SIGKILL'));
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
    expectBruteAggregate((JSON.parse(streamed) as { results: Array<Record<string, any>> }).results, events, ['user_id', 'event_type']);
    // the shard restores from its log and the query is answered whole again
    await engine.engine.ctx.shards[0]!.whenReady();
    let again = await postJson(`${engine.queryUrl}/query/aggregate`, QUERY);
    while (again.status === 503) {
      await new Promise((r) => setTimeout(r, 100));
      again = await postJson(`${engine.queryUrl}/query/aggregate`, QUERY);
    }
    expect(again.status).toBe(200);
    expectBruteAggregate(again.body.results, events, ['user_id', 'event_type']);
    // a new polars process serves shard 0: the kill landed
    const after = (await getJson(`${engine.queryUrl}/stats/shards`)).body as { shards: Array<{ polars_pid: number }> };
    expect(after.shards[0]!.polars_pid).not.toBe(pid);
    expect(await held()).toBe(0);
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
