/**
 * Reads a request body with the byte limit enforced on the stream itself, so a chunked body
 * without Content-Length cannot get past it (the @hono/node-server pitfall in ARCHITECTURE.md).
 */
import type { Context } from 'hono';
import { malformedJson, payloadTooLarge, unsupportedMediaType } from './http-error.js';

export async function readBodyText(c: Context, limit: number): Promise<string> {
  const declared = Number(c.req.header('content-length'));
  if (Number.isFinite(declared) && declared > limit) throw payloadTooLarge(limit);
  const stream = c.req.raw.body;
  if (!stream) return '';
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw payloadTooLarge(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

export function requireContentType(c: Context, accepted: string[]): void {
  const raw = c.req.header('content-type');
  const type = raw?.split(';')[0]!.trim().toLowerCase();
  if (!type || !accepted.includes(type)) throw unsupportedMediaType(accepted.join(' or '), raw);
}

export function parseJson(text: string): unknown {
  if (text.trim() === '') throw malformedJson('empty body');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw malformedJson((err as Error).message);
  }
}

/** JSON body of a query route: content type checked, size limited, parsed. Empty body → {}. */
export async function readJsonBody(c: Context, limit: number): Promise<unknown> {
  const text = await readBodyText(c, limit);
  if (text.trim() === '') return {};
  requireContentType(c, ['application/json']);
  return parseJson(text);
}
