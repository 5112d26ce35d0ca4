import { describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { pino } from 'pino';
import { HttpError } from './http-error.js';
import { parseJson, readJsonBody } from './read-body.js';
import { makeRootApp } from './root-app.js';

function nested(depth: number): string {
  return '{"a":'.repeat(depth - 1) + '[]' + '}'.repeat(depth - 1);
}

function thrown(f: () => unknown): HttpError {
  try {
    f();
  } catch (err) {
    return err as HttpError;
  }
  throw new Error('expected a throw');
}

describe('parseJson', () => {
  it('parses a body exactly at the depth limit', () => {
    expect(parseJson(nested(32))).toBeTypeOf('object');
    expect(parseJson(nested(5), 5)).toBeTypeOf('object');
  });

  it('rejects a body one level over the limit with a 400 naming (body) and the limit', () => {
    const err = thrown(() => parseJson(nested(33)));
    expect(err).toBeInstanceOf(HttpError);
    expect(err.status).toBe(400);
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.message).toBe('body nests deeper than maxJsonDepth (32)');
    expect(err.details?.errors).toEqual([{ field: '(body)', reason: expect.stringMatching(/opens nesting level 33/) }]);
    expect(thrown(() => parseJson(nested(6), 5)).message).toBe('body nests deeper than maxJsonDepth (5)');
  });

  it('rejects metadata nested 200,000 deep without parsing it', () => {
    const body = '{"event_type":"x","user_id":"u","metadata":' + '{"a":'.repeat(200_000) + '1' + '}'.repeat(200_001);
    expect(thrown(() => parseJson(body)).code).toBe('BAD_REQUEST');
  });

  it('still reports malformed JSON as MALFORMED_JSON', () => {
    expect(thrown(() => parseJson('{"a":')).code).toBe('MALFORMED_JSON');
    expect(thrown(() => parseJson('  ')).code).toBe('MALFORMED_JSON');
  });
});

describe('readJsonBody', () => {
  const app = makeRootApp(
    [
      new Hono()
        .post('/default', async (c) => c.json({ body: await readJsonBody(c, 1 << 20) }))
        .post('/depth4', async (c) => c.json({ body: await readJsonBody(c, 1 << 20, 4) })),
    ],
    { logger: pino({ level: 'silent' }) },
    { opsRoutes: false },
  );
  const post = (path: string, body: string) => app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  it('uses 32 levels by default and the given maxDepth otherwise', async () => {
    expect((await post('/default', nested(32))).status).toBe(200);
    const over = await post('/default', nested(33));
    expect(over.status).toBe(400);
    expect(await over.json()).toMatchObject({ error: 'BAD_REQUEST', message: 'body nests deeper than maxJsonDepth (32)', errors: [{ field: '(body)' }] });
    expect((await post('/depth4', nested(4))).status).toBe(200);
    const body = (await (await post('/depth4', nested(5))).json()) as { message: string; request_id: string };
    expect(body.message).toBe('body nests deeper than maxJsonDepth (4)');
    expect(body.request_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers 408 REQUEST_INCOMPLETE (not a 500) when the body stream breaks off', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"a":'));
        controller.error(new Error('connection reset'));
      },
    });
    const res = await app.request('/default', { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(408);
    expect(await res.json()).toMatchObject({ error: 'REQUEST_INCOMPLETE', message: expect.stringMatching(/connection reset/) });
  });

  it('answers {} for an empty body', async () => {
    expect(await (await post('/default', '')).json()).toEqual({ body: {} });
  });
});

describe('readBodyBytes on @hono/node-server', () => {
  it('reads bodies whole however they arrive: large with Content-Length (one buffer), chunked, small, and at the limit', async () => {
    const { createHash } = await import('node:crypto');
    const { createAdaptorServer } = await import('@hono/node-server');
    const { request } = await import('node:http');
    const { readBodyBytes } = await import('./read-body.js');
    const limit = 3 << 20;
    const app = makeRootApp([new Hono().post('/echo', async (c) => {
      const body = await readBodyBytes(c, limit);
      return c.json({ bytes: body.length, sha: createHash('sha256').update(body).digest('hex') });
    })], { logger: pino({ level: 'silent' }) }, { opsRoutes: false });
    const server = createAdaptorServer({ fetch: app.fetch });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const send = (body: Buffer, chunked: boolean) =>
      new Promise<{ status: number; json: any }>((resolve, reject) => {
        const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/echo', headers: chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': body.length } }, (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
        });
        req.on('error', reject);
        // in pieces, as a slow client sends them
        for (let i = 0; i < body.length; i += 100_000) req.write(body.subarray(i, i + 100_000));
        req.end();
      });
    try {
      for (const size of [10, 300_000, 2_000_001, limit]) {
        const body = Buffer.alloc(size);
        for (let i = 0; i < size; i++) body[i] = (i * 7919) & 0xff;
        const sha = createHash('sha256').update(body).digest('hex');
        for (const chunked of [false, true]) {
          const res = await send(body, chunked);
          expect(res, `${size} bytes, ${chunked ? 'chunked' : 'Content-Length'}`).toEqual({ status: 200, json: { bytes: size, sha } });
        }
      }
      expect((await send(Buffer.alloc(limit + 1), true)).status).toBe(413);
    } finally {
      server.close();
    }
  });
});
