/**
 * A streamed answer field (JsonStream) sent to a real socket by @hono/node-server fills buffers
 * that are reused in turn (ChunkRing, src/kinds/answer.ts). A buffer handed out again while the
 * reader still holds it would corrupt the answer: a 40 MB field (160 chunks, the ring reused four
 * times over) read at once, read slowly, and left midway by its client must give exactly its
 * bytes, as the fill wrote them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerBody, ChunkRing, STREAM_CHUNK } from '../../src/kinds/answer.js';
import { JsonStream } from '../../src/kinds/kind.js';

const BYTES = 40 * 1024 * 1024 + 12_345;

/** The byte at `i`: a hash of all of i's bits (no period a chunk or a ring long to hide a reused buffer). */
function byteAt(i: number): number {
  let h = Math.imul(i ^ (i >>> 16), 0x45d9f3b);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  return (h ^ (h >>> 16)) & 0xff;
}

/** A field that writes byteAt(i) for its i-th byte, whatever the sizes it is asked to fill. */
function field(): JsonStream {
  let at = 0;
  return new JsonStream(BYTES, (out) => {
    const n = Math.min(out.length, BYTES - at);
    for (let k = 0; k < n; k++) out[k] = byteAt(at + k);
    at += n;
    return n;
  });
}

function firstDifference(got: Buffer): number {
  if (got.length !== BYTES) return Math.min(got.length, BYTES);
  for (let i = 0; i < BYTES; i++) if (got[i] !== byteAt(i)) return i;
  return -1;
}

let server: ServerType;
let url: string;

beforeAll(async () => {
  const app = new Hono();
  app.get('/field', (c) => c.body(answerBody({ pieces: [field()], bytes: BYTES }, () => undefined, true) as ReadableStream<Uint8Array>, 200, { 'content-length': String(BYTES) }));
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve());
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/field`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/**
 * The body, read at once or (`pauseMs` > 0) with a pause of `pauseMs` after each 8 MB: long enough
 * for the kernel's buffers to fill and the stream to queue STREAM_AHEAD chunks filled ahead of
 * the socket; `stopAfter` bytes, then the client goes.
 */
function read(pauseMs: number, stopAfter = Infinity): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      const chunks: Buffer[] = [];
      let got = 0;
      let pauseAt = 1024 * 1024;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
        if (got >= stopAfter) {
          req.destroy();
          resolve(Buffer.concat(chunks));
          return;
        }
        if (pauseMs > 0 && got >= pauseAt) {
          pauseAt += 8 * 1024 * 1024;
          res.pause();
          setTimeout(() => res.resume(), pauseMs);
        }
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    });
    req.on('error', (err) => (stopAfter === Infinity ? reject(err) : undefined));
    req.end();
  });
}

describe('a streamed answer field from reused buffers', () => {
  it('reuses the ring several times over in one answer', () => {
    expect(BYTES / STREAM_CHUNK).toBeGreaterThan(4 * ChunkRing.SIZE);
  });

  it('is its bytes exactly, read at once and read slowly', async () => {
    expect(firstDifference(await read(0))).toBe(-1);
    expect(firstDifference(await read(250))).toBe(-1);
  }, 120_000);

  it('is its bytes exactly up to where a client left it, and the next client gets the whole of it', async () => {
    const part = await read(250, 20 * 1024 * 1024);
    for (let i = 0; i < part.length; i++) if (part[i] !== byteAt(i)) throw new Error(`byte ${i} differs`);
    expect(firstDifference(await read(0))).toBe(-1);
  }, 120_000);
});
