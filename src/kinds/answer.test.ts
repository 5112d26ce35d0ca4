import { describe, expect, it } from 'vitest';
import { answerBody, serializeAnswer, STREAM_CHUNK } from './answer.js';
import { JsonStream, JsonText } from './kind.js';

async function readAll(body: Uint8Array | ReadableStream<Uint8Array>): Promise<string> {
  if (body instanceof Uint8Array) return Buffer.from(body).toString('utf8');
  const chunks: Uint8Array[] = [];
  for await (const c of body as unknown as AsyncIterable<Uint8Array>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

/** A JsonStream of `text`, written at most `step` bytes per fill. */
function streamOf(text: string, step = Infinity, failAt = Infinity): { stream: JsonStream; fills: number[] } {
  const bytes = Buffer.from(text, 'utf8');
  let at = 0;
  const fills: number[] = [];
  const stream = new JsonStream(bytes.length, (out) => {
    if (at >= failAt) throw new Error('shard rows out of order');
    const n = Math.min(out.length, bytes.length - at, step);
    out.set(bytes.subarray(at, at + n));
    at += n;
    fills.push(n);
    return n;
  });
  return { stream, fills };
}

describe('answer envelope', () => {
  it('counts a JsonStream field in the answer bytes and sends it in STREAM_CHUNK pieces between the other fields', async () => {
    const rows = JSON.stringify(Array.from({ length: 40_000 }, (_, i) => ({ user_id: `u${i}`, count: i, ü: 'é' })));
    const { stream, fills } = streamOf(rows);
    const answer = serializeAnswer({ results: stream, extra: new JsonText(Buffer.from('[1,2]')), n: 3 }, performance.now(), 1 << 30);
    const text = await readAll(answerBody(answer));
    expect(Buffer.byteLength(text)).toBe(answer.bytes);
    const parsed = JSON.parse(text) as Record<string, unknown>;
    expect(parsed.results).toEqual(JSON.parse(rows));
    expect(parsed.extra).toEqual([1, 2]);
    expect(parsed.n).toBe(3);
    expect(fills.length).toBe(Math.ceil(Buffer.byteLength(rows) / STREAM_CHUNK));
  });

  it('refuses a JsonStream over maxBytes before filling any of it', () => {
    const { stream, fills } = streamOf('[' + '1,'.repeat(2000) + '1]');
    expect(() => serializeAnswer({ results: stream }, performance.now(), 2048)).toThrow('maxResponseBytes');
    expect(fills).toEqual([]);
  });

  it('errors the body (never a short answer that looks whole) when a fill fails or writes less than asked, and says so', async () => {
    const rows = '[' + '"x",'.repeat(600_000) + '"x"]';
    const errors: unknown[] = [];
    const failing = streamOf(rows, Infinity, 1).stream;
    await expect(readAll(answerBody(serializeAnswer({ results: failing }, performance.now(), 1 << 30), (e) => errors.push(e)))).rejects.toThrow('out of order');
    expect(errors).toHaveLength(1);
    const short = streamOf(rows, 1000).stream;
    await expect(readAll(answerBody(serializeAnswer({ results: short }, performance.now(), 1 << 30), (e) => errors.push(e)))).rejects.toThrow('wrote 1000 of');
    expect(errors).toHaveLength(2);
  });
});
