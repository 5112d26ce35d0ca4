/**
 * Request ids on a real engine (`src/main.ts` in a child process, its JSON log read back): every
 * answer on every port carries `x-request-id`, error bodies carry `request_id`, and the engine's
 * log line for a failed request has the same id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { startMain, type MainProcess } from '../helpers/main-process.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function call(url: string, init: RequestInit & { id?: string; json?: unknown } = {}): Promise<{ status: number; id: string | null; body: any }> {
  const headers: Record<string, string> = {};
  if (init.id !== undefined) headers['x-request-id'] = init.id;
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { ...init, headers, ...(init.json !== undefined ? { method: 'POST', body: JSON.stringify(init.json) } : {}) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, id: res.headers.get('x-request-id'), body };
}

async function logLine(main: MainProcess, id: string): Promise<Record<string, any>> {
  for (;;) {
    const line = main.logs.find((l) => l.request_id === id);
    if (line) return line;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('request ids on two ports', () => {
  let main: MainProcess;
  beforeAll(async () => {
    main = await startMain(['--shards', '2']);
  });
  afterAll(async () => {
    main?.child.kill('SIGTERM');
    await main?.exited;
  });

  it('makes up an id for every answer when the client sends none', async () => {
    const answers = [
      await call(`${main.ingestUrl}/ingest`, { json: { event_type: 'a', user_id: 'u1' } }),
      await call(`${main.queryUrl}/query/aggregate`, { json: {} }),
      await call(`${main.ingestUrl}/health`),
      await call(`${main.queryUrl}/ready`),
      await call(`${main.queryUrl}/stats/shards`),
      await call(`${main.ingestUrl}/no/such/route`),
    ];
    expect(answers.map((a) => a.status)).toEqual([202, 200, 200, 200, 200, 404]);
    for (const a of answers) expect(a.id).toMatch(UUID);
    expect(new Set(answers.map((a) => a.id)).size).toBe(answers.length);
    expect(answers[5]!.body.request_id).toBe(answers[5]!.id);
  });

  it('echoes a client id on successes and errors, and logs a rejected request at info with its code', async () => {
    expect((await call(`${main.ingestUrl}/ingest`, { id: 'trace-1.a:b_c', json: { event_type: 'a', user_id: 'u' } })).id).toBe('trace-1.a:b_c');
    const bad = await call(`${main.ingestUrl}/ingest/batch`, { id: 'trace-2', json: { events: [{ event_type: 'a' }] } });
    expect(bad.status).toBe(400);
    expect(bad.id).toBe('trace-2');
    expect(bad.body).toMatchObject({ error: 'INVALID_EVENT', request_id: 'trace-2' });
    expect(await logLine(main, 'trace-2')).toMatchObject({ level: 30, method: 'POST', path: '/ingest/batch', status: 400, code: 'INVALID_EVENT' });
    const missing = await call(`${main.queryUrl}/query/nope`, { id: 'trace-3' });
    expect(missing).toMatchObject({ status: 404, id: 'trace-3', body: { error: 'NOT_FOUND', request_id: 'trace-3' } });
  });

  it('replaces an id that is too long or has other characters', async () => {
    for (const bad of ['x'.repeat(129), 'two words', 'quote"d', 'a,b']) {
      const res = await call(`${main.queryUrl}/health`, { id: bad });
      expect(res.id).toMatch(UUID);
    }
  });

  it('a 5xx from a dead shard carries the id in its body and is logged at error level with it', async () => {
    const stats = await call(`${main.queryUrl}/stats/shards`);
    process.kill(stats.body.shards[1].polars_pid, 'SIGKILL');
    // Until the shard notices, a query may still succeed; it must not be answered 500 meanwhile.
    let failed: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; !failed; i++) {
      const res = await call(`${main.queryUrl}/query/aggregate`, { id: `dead-${i}`, json: {} });
      expect(res.status).not.toBe(500);
      if (res.status >= 500) failed = res;
      else await new Promise((r) => setTimeout(r, 20));
    }
    expect(failed.body.request_id).toBe(failed.id);
    expect(failed.body.error).toMatch(/^[A-Z_]+$/);
    const line = await logLine(main, failed.id!);
    expect(line).toMatchObject({ level: 50, method: 'POST', path: '/query/aggregate', status: failed.status });
    expect(line.err.message).toBe(failed.body.message);
  });
});

describe('request ids on one port', () => {
  it('serve ingest and analytics answers with ids from the same middleware', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const main = await startMain(['--shards', '1', '--ingest-port', String(port), '--query-port', String(port)]);
    try {
      expect(main.ingestUrl).toBe(main.queryUrl);
      expect((await call(`${main.ingestUrl}/ingest`, { id: 'one-1', json: { event_type: 'a', user_id: 'u' } })).id).toBe('one-1');
      expect((await call(`${main.queryUrl}/query/aggregate`, { id: 'one-2', json: {} })).id).toBe('one-2');
      expect((await call(`${main.queryUrl}/nope`, { id: 'one-3' })).body.request_id).toBe('one-3');
    } finally {
      main.child.kill('SIGTERM');
      await main.exited;
    }
  });
});
