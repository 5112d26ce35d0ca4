/**
 * Request ids and error bodies through the same root app every port serves (makeRootApp): real
 * Hono routing, middleware, onError and 404, on a tiny app whose routes fail on purpose.
 */
import { describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { pino } from 'pino';
import { ShardError } from '../shards/shard-errors.js';
import { badRequest } from './http-error.js';
import { makeRootApp } from './root-app.js';
import { pickRequestId, requestLog } from './request-id.js';

function makeApp() {
  const logs: Array<Record<string, any>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const routes = new Hono()
    .get('/boom', () => {
      throw new Error('secret path /var/lib/shard-3/plan.json exploded');
    })
    .get('/bad', () => {
      throw badRequest('field `n` must be positive', [{ field: 'n', reason: 'got -1' }]);
    })
    .get('/shard-down', () => {
      throw new ShardError('SHARD_DOWN', 'shard 1 is down');
    })
    .get('/logs', (c) => {
      requestLog(c).info('from a route');
      return c.json({ ok: true });
    })
    .get('/stream', () => new Response('raw body', { headers: { 'content-type': 'text/plain' } }));
  const app = makeRootApp([routes], { logger }, { opsRoutes: false });
  return { app, logs };
}

describe('request ids', () => {
  it('a plain Error answers 500 without its message; the id in the body matches the header and the log', async () => {
    const { app, logs } = makeApp();
    const res = await app.request('/boom');
    expect(res.status).toBe(500);
    const id = res.headers.get('x-request-id')!;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const text = await res.text();
    expect(text).not.toMatch(/secret|exploded|shard-3/);
    expect(JSON.parse(text)).toEqual({ error: 'INTERNAL', message: `internal error; see the engine log for request ${id}`, request_id: id });
    const logged = logs.filter((l) => l.request_id === id);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 50, method: 'GET', path: '/boom', status: 500 });
    expect(logged[0]!.err.message).toMatch(/exploded/);
    expect(logged[0]!.err.stack).toMatch(/request-id\.test\.ts/);
  });

  it('echoes a well-formed client id on success, 4xx, shard errors and 404', async () => {
    const { app, logs } = makeApp();
    for (const [path, status] of [['/logs', 200], ['/bad', 400], ['/shard-down', 503], ['/nope', 404], ['/stream', 200]] as const) {
      const id = `client-id.${status}:${path.length}_X`;
      const res = await app.request(path, { headers: { 'x-request-id': id } });
      expect(res.status, path).toBe(status);
      expect(res.headers.get('x-request-id'), path).toBe(id);
      if (status >= 400) expect(((await res.json()) as { request_id: string }).request_id, path).toBe(id);
    }
    expect(logs.find((l) => l.msg === 'from a route')).toMatchObject({ request_id: 'client-id.200:5_X' });
    expect(logs.find((l) => l.path === '/bad')).toMatchObject({ level: 30, status: 400, code: 'BAD_REQUEST', request_id: 'client-id.400:4_X' });
    expect(logs.find((l) => l.path === '/nope')).toMatchObject({ level: 30, status: 404, code: 'NOT_FOUND' });
    expect(logs.find((l) => l.path === '/shard-down')).toMatchObject({ level: 50, status: 503, code: 'SHARD_DOWN', err: { message: 'shard 1 is down' } });
  });

  it('keeps the error body fields and adds request_id to them', async () => {
    const { app } = makeApp();
    const res = await app.request('/bad', { headers: { 'x-request-id': 'abc' } });
    expect(await res.json()).toEqual({ error: 'BAD_REQUEST', message: 'field `n` must be positive', errors: [{ field: 'n', reason: 'got -1' }], request_id: 'abc' });
    const shard = await app.request('/shard-down', { headers: { 'x-request-id': 'def' } });
    expect(await shard.json()).toEqual({ error: 'SHARD_DOWN', message: 'shard 1 is down', request_id: 'def' });
  });

  it.each([['has space'], ['x'.repeat(129)], [''], ['semi;colon'], ['ünï'], ['a/b']])('replaces a bad client id %j with a fresh one', async (bad) => {
    const { app } = makeApp();
    const res = await app.request('/bad', { headers: { 'x-request-id': bad } });
    const id = res.headers.get('x-request-id')!;
    expect(id).not.toBe(bad);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(((await res.json()) as { request_id: string }).request_id).toBe(id);
  });

  it('accepts 1–128 characters of [A-Za-z0-9._:-] and nothing else', () => {
    expect(pickRequestId('a')).toBe('a');
    expect(pickRequestId('A-z_0.9:'.padEnd(128, 'x'))).toHaveLength(128);
    expect(pickRequestId(undefined)).toMatch(/^[0-9a-f-]{36}$/);
    expect(pickRequestId('a b')).not.toBe('a b');
  });
});
