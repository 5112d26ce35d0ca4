/**
 * Bad input never half-lands. Cases covered (each must answer its status, never 500 or hang):
 *   malformed JSON → 400 MALFORMED_JSON           wrong/missing content type → 415
 *   body over maxBodyBytes (declared or chunked) → 413
 *   empty batch / empty NDJSON → 400               batch over maxBatchEvents → 400
 *   one bad event in a batch → 400 naming index and field, nothing stored
 *   bad NDJSON line → 400 naming the line          unknown route → 404
 *   query: unknown field / group key / metric, bad filter → 400 naming it
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';

let engine: RunningEngine;
const good = (i: number) => ({ event_type: 'click', user_id: `u${i}`, value: i, timestamp: 1_700_000_000_000 + i });

async function storedCount(): Promise<number> {
  const res = await postJson(`${engine.queryUrl}/query/aggregate`, {});
  return res.body.results[0].count;
}

beforeAll(async () => {
  engine = await startEngine({ shards: 2, maxBodyBytes: 64 * 1024, maxBatchEvents: 100 });
});
afterAll(async () => {
  await engine?.stop();
});

describe('ingest rejects bad input whole', () => {
  it('answers 400 for malformed JSON', async () => {
    const res = await postJson(`${engine.ingestUrl}/ingest/batch`, '{"events": [', 'application/json');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('MALFORMED_JSON');
  });

  it('answers 415 for a wrong or missing content type', async () => {
    expect((await postJson(`${engine.ingestUrl}/ingest`, good(1), 'text/plain')).status).toBe(415);
    const res = await fetch(`${engine.ingestUrl}/ingest/batch`, { method: 'POST', body: new Uint8Array([123, 125]) });
    expect(res.status).toBe(415);
    expect((await postJson(`${engine.ingestUrl}/ingest/ndjson`, JSON.stringify(good(1)), 'application/json')).status).toBe(415);
  });

  it('answers 413 for a body over the limit declared by Content-Length', async () => {
    const events = Array.from({ length: 90 }, (_, i) => ({ ...good(i), metadata: { pad: 'x'.repeat(1000) } }));
    const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events });
    expect(res.status).toBe(413);
  });

  it('answers 413 for a chunked body over the limit with no Content-Length', async () => {
    const url = new URL(`${engine.ingestUrl}/ingest/ndjson`);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/x-ndjson', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      const line = JSON.stringify(good(1)) + '\n';
      let sent = 0;
      const pump = () => {
        while (sent < 200 * 1024) {
          sent += line.length;
          if (!req.write(line)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(413);
  });

  it('answers 400 for an empty batch and an empty NDJSON body', async () => {
    const a = await postJson(`${engine.ingestUrl}/ingest/batch`, { events: [] });
    expect(a.status).toBe(400);
    expect(a.body.errors[0].field).toBe('events');
    const b = await postJson(`${engine.ingestUrl}/ingest/ndjson`, '\n\n', 'application/x-ndjson');
    expect(b.status).toBe(400);
  });

  it('answers 400 for a batch over maxBatchEvents', async () => {
    const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events: Array.from({ length: 101 }, (_, i) => good(i)) });
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/maxBatchEvents/);
  });

  it('rejects a batch with a non-numeric value at index 3 and stores none of it', async () => {
    const before = await storedCount();
    const events = [good(1), good(2), good(3), { ...good(4), value: 'abc' }, good(5), { ...good(6), event_type: '' }];
    const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('INVALID_EVENT');
    expect(res.body.errors).toEqual([
      { index: 3, field: 'value', reason: expect.any(String) },
      { index: 5, field: 'event_type', reason: expect.any(String) },
    ]);
    expect(await storedCount()).toBe(before);
  });

  it('names the line of unparseable NDJSON and stores nothing', async () => {
    const before = await storedCount();
    const body = [JSON.stringify(good(1)), '{not json', JSON.stringify(good(2))].join('\n');
    const res = await postJson(`${engine.ingestUrl}/ingest/ndjson`, body, 'application/x-ndjson');
    expect(res.status).toBe(400);
    expect(res.body.errors[0]).toMatchObject({ index: 1, field: '(line)' });
    expect(res.body.errors[0].reason).toMatch(/line 2/);
    expect(await storedCount()).toBe(before);
  });

  it('answers 404 with JSON for an unknown route', async () => {
    const res = await postJson(`${engine.ingestUrl}/ingest/nope`, {});
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('NOT_FOUND');
  });

  it('stores valid events and counts rejected ones in /metrics/ingestion', async () => {
    const before = await storedCount();
    const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events: [good(1), good(2)] });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted: 2 });
    expect(await storedCount()).toBe(before + 2);
    const m = (await (await fetch(`${engine.ingestUrl}/metrics/ingestion`)).json()) as any;
    expect(m.rejected_events).toBeGreaterThan(0);
    expect(m.error_count).toBeGreaterThan(0);
  });
});

describe('aggregate query rejects bad requests', () => {
  it.each([
    [{ groupBy: ['country'] }, /groupBy/],
    [{ metrics: ['price'] }, /metrics/],
    [{ bogus: 1 }, /`bogus`/],
    [{ groupBy: 'event_type', filter: { from: 'yesterday' } }, /filter\.from/],
    [{ filter: { from: 10, to: 5 } }, /filter\.from/],
    [{ filter: { shard: 1 } }, /filter\.shard/],
    [{ filter: { event_type: [] } }, /filter\.event_type/],
  ])('answers 400 for %j', async (body, message) => {
    const res = await postJson(`${engine.queryUrl}/query/aggregate`, body);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
  });
});
