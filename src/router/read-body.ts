/**
 * Reads a request body with the byte limit enforced on the stream itself, so a chunked body
 * without Content-Length cannot get past it (the @hono/node-server pitfall in ARCHITECTURE.md).
 */
import type { Context } from 'hono';
import type { IncomingMessage } from 'node:http';
import { badRequest, bodyIncomplete, malformedJson, payloadTooLarge, unsupportedMediaType } from './http-error.js';
import { jsonDepthExceeded } from './json-depth.js';

export async function readBodyText(c: Context, limit: number): Promise<string> {
  const body = await readBodyBytes(c, limit);
  return body.toString('utf8');
}

/** The body's bytes, limited like `readBodyText`. */
export async function readBodyBytes(c: Context, limit: number): Promise<Buffer> {
  const declared = Number(c.req.header('content-length'));
  if (Number.isFinite(declared) && declared > limit) throw payloadTooLarge(limit);
  // On @hono/node-server read the Node request directly: touching `c.req.raw.body` makes the
  // adapter build a full undici Request (AbortSignal, web stream transfer), which cost more than
  // everything else on the single-event ingest path.
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming ? await readIncoming(incoming, limit, Number.isFinite(declared) ? declared : -1) : await readWebStream(c.req.raw.body, limit);
}

/** Large bodies with a Content-Length are copied into one buffer of that size as they arrive. */
const PRESIZE_FROM = 256 * 1024;

function readIncoming(incoming: IncomingMessage, limit: number, declared: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    // A large body read into chunks and then joined allocates it twice (plus the chunks): on the
    // HTTP thread of a bulk route those megabytes of external memory set the pace of V8's full
    // collections. With its length declared, it goes into one buffer of that length once a
    // quarter of it has arrived (a client must send a quarter of what it declares before the
    // rest is allocated). What arrives is still counted: a body running longer than declared
    // falls back to chunks.
    let into: Buffer | null = null;
    const presize = declared >= PRESIZE_FROM ? declared : -1;
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        cleanup();
        // Discard the rest; the 413 answer closes the connection (see payloadTooLarge).
        incoming.resume();
        reject(payloadTooLarge(limit));
        return;
      }
      if (into === null && presize > 0 && total <= presize && total * 4 >= presize) {
        into = Buffer.allocUnsafe(presize);
        let at = 0;
        for (const c of chunks) {
          c.copy(into, at);
          at += c.length;
        }
        chunks.length = 0;
      }
      if (into !== null) {
        if (total <= into.length) {
          chunk.copy(into, total - chunk.length);
          return;
        }
        // longer than declared: what came so far becomes a chunk
        chunks.push(into.subarray(0, total - chunk.length));
        into = null;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      if (into !== null) resolve(into.subarray(0, total));
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total));
    };
    const onError = (err: Error) => {
      cleanup();
      // The only errors a request stream emits come from its connection (reset, aborted, timed out).
      reject(bodyIncomplete(err.message));
    };
    const cleanup = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
  });
}

async function readWebStream(stream: ReadableStream<Uint8Array> | null, limit: number): Promise<Buffer> {
  if (!stream) return Buffer.alloc(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read().catch((err: Error) => {
      throw bodyIncomplete(err.message);
    });
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw payloadTooLarge(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

export function requireContentType(c: Context, accepted: string[]): void {
  const raw = c.req.header('content-type');
  const type = raw?.split(';')[0]!.trim().toLowerCase();
  if (!type || !accepted.includes(type)) throw unsupportedMediaType(accepted.join(' or '), raw);
}

/** The default of the `maxJsonDepth` config key, for callers that do not pass theirs. */
export const DEFAULT_MAX_JSON_DEPTH = 32;

/** The 400 for a body (or, with `line`, one NDJSON line) nested deeper than `maxDepth`. */
export function tooDeep(maxDepth: number, at: number, line?: { number: number; index: number }): Error {
  const where = line ? `line ${line.number}, ` : '';
  return badRequest(`body nests deeper than maxJsonDepth (${maxDepth})`, [
    { ...(line ? { index: line.index } : {}), field: '(body)', reason: `${where}character ${at} opens nesting level ${maxDepth + 1}; at most ${maxDepth} levels of arrays/objects` },
  ]);
}

/**
 * Parses JSON text after checking its nesting depth on the text itself (see json-depth.ts), so
 * no value deeper than `maxDepth` ever reaches code that walks it recursively.
 */
export function parseJson(text: string, maxDepth = DEFAULT_MAX_JSON_DEPTH): unknown {
  if (text.trim() === '') throw malformedJson('empty body');
  const deep = jsonDepthExceeded(text, maxDepth);
  if (deep >= 0) throw tooDeep(maxDepth, deep);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw malformedJson((err as Error).message);
  }
}

/**
 * JSON body of a query route: content type checked, size limited, depth limited, parsed.
 * Empty body → {}. Pass `config.maxJsonDepth` as `maxDepth`.
 */
export async function readJsonBody(c: Context, limit: number, maxDepth = DEFAULT_MAX_JSON_DEPTH): Promise<unknown> {
  const text = await readBodyText(c, limit);
  if (text.trim() === '') return {};
  requireContentType(c, ['application/json']);
  return parseJson(text, maxDepth);
}
