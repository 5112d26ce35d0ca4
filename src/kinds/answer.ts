/**
 * The envelope every JSON answer gets: the kind's fields, then `query_time_ms` and `timestamp`,
 * serialized once, with pre-serialized JsonText fields spliced in, and bounded by
 * `maxResponseBytes`. Pure.
 */
import { JsonText } from './kind.js';
import { overLimit } from './request-error.js';

/** An answer's UTF-8 JSON as the pieces it is made of, in order, and their total length. */
export interface SerializedAnswer {
  pieces: Uint8Array[];
  bytes: number;
}

/**
 * `{...answer, query_time_ms, timestamp}` as UTF-8 JSON pieces. JsonText fields (megabytes, made
 * in the merge pool) are pieces as they are: never decoded on this thread, nor copied.
 * @throws RequestError (`invalid`, LIMIT_EXCEEDED) when longer than `maxBytes`.
 */
export function serializeAnswer(answer: Record<string, unknown>, startedMs: number, maxBytes: number): SerializedAnswer {
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
  // Neighbouring strings become one piece; a JsonText stays a piece of its own.
  const pieces: Uint8Array[] = [];
  let text = '';
  for (const p of parts) {
    if (typeof p === 'string') text += p;
    else {
      if (text) pieces.push(Buffer.from(text, 'utf8'));
      text = '';
      pieces.push(p);
    }
  }
  if (text) pieces.push(Buffer.from(text, 'utf8'));
  const total = pieces.reduce((n, c) => n + c.byteLength, 0);
  if (total > maxBytes) throw tooLarge(total, maxBytes);
  return { pieces, bytes: total };
}

/** Pieces up to this many bytes in all are joined into one buffer: a copy costs less than a stream. */
const JOIN_UP_TO = 1 << 20;

/**
 * The HTTP body of a serialized answer: one buffer, or for a large answer with several pieces
 * a stream of them, so a by-user answer of hundreds of MB is not copied once more into a single
 * buffer (~0.2-0.3 s for 241 MB, most of it page faults on the fresh memory).
 */
export function answerBody(answer: SerializedAnswer): Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> {
  const { pieces, bytes } = answer;
  if (pieces.length === 1 && pieces[0]!.buffer instanceof ArrayBuffer) return pieces[0] as Uint8Array<ArrayBuffer>;
  if (bytes <= JOIN_UP_TO || pieces.length === 1) return Buffer.concat(pieces, bytes) as unknown as Uint8Array<ArrayBuffer>;
  let next = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next < pieces.length) controller.enqueue(pieces[next++]!);
      else controller.close();
    },
  });
}

function tooLarge(bytes: number, max: number) {
  return overLimit('(answer)', `the answer is over ${bytes} bytes: narrow the filter, group by fewer keys or ask for fewer rows`, 'maxResponseBytes', max);
}
