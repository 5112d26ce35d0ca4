/**
 * The envelope every JSON answer gets: the kind's fields, then `query_time_ms` and `timestamp`,
 * serialized once, with pre-serialized JsonText fields spliced in, and bounded by
 * `maxResponseBytes`. Pure.
 */
import { JsonText } from './kind.js';
import { overLimit } from './request-error.js';

/**
 * `{...answer, query_time_ms, timestamp}` as UTF-8 JSON. JsonText fields (megabytes, made in the
 * merge pool) are copied into the answer once and never decoded on this thread.
 * @throws RequestError (`invalid`, LIMIT_EXCEEDED) when longer than `maxBytes`.
 */
export function serializeAnswer(answer: Record<string, unknown>, startedMs: number, maxBytes: number): Uint8Array<ArrayBuffer> {
  const envelope = { query_time_ms: performance.now() - startedMs, timestamp: new Date().toISOString() };
  const parts: Array<string | Uint8Array> = [];
  let size = 0;
  for (const [key, value] of Object.entries<unknown>({ ...answer, ...envelope })) {
    if (value === undefined) continue;
    const head = `${parts.length === 0 ? '{' : ','}${JSON.stringify(key)}:`;
    const body = value instanceof JsonText ? value.bytes : JSON.stringify(value);
    parts.push(head, body);
    // A string's UTF-8 size is at least its length: exact sizes are summed below.
    size += head.length + (typeof body === 'string' ? body.length : body.byteLength);
    if (size > maxBytes) throw tooLarge(size, maxBytes);
  }
  parts.push('}');
  const chunks = parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p));
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  if (total > maxBytes) throw tooLarge(total, maxBytes);
  return Buffer.concat(chunks, total) as unknown as Uint8Array<ArrayBuffer>;
}

function tooLarge(bytes: number, max: number) {
  return overLimit('(answer)', `the answer is over ${bytes} bytes: narrow the filter, group by fewer keys or ask for fewer rows`, 'maxResponseBytes', max);
}
