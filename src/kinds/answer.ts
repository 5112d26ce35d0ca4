/**
 * The envelope every JSON answer gets: the kind's fields, then `query_time_ms` and `timestamp`,
 * serialized once, with pre-serialized JsonText fields spliced in, and bounded by
 * `maxResponseBytes`. Pure.
 */
import { BytesFeed, JsonStream, JsonText } from './kind.js';
import { overLimit } from './request-error.js';

/** An answer's UTF-8 JSON as the pieces it is made of, in order, and their total length. */
export interface SerializedAnswer {
  /** bytes, or a JsonStream or BytesFeed made as it is sent */
  pieces: Array<Uint8Array | JsonStream | BytesFeed>;
  bytes: number;
}

/**
 * `{...answer, query_time_ms, timestamp}` as UTF-8 JSON pieces. JsonText fields (megabytes, made
 * in the merge pool) are pieces as they are: never decoded on this thread, nor copied.
 * @throws RequestError (`invalid`, LIMIT_EXCEEDED) when longer than `maxBytes`.
 */
export function serializeAnswer(answer: Record<string, unknown>, startedMs: number, maxBytes: number): SerializedAnswer {
  const envelope = { query_time_ms: performance.now() - startedMs, timestamp: new Date().toISOString() };
  const parts: Array<string | Uint8Array | JsonStream> = [];
  let size = 0;
  for (const [key, value] of Object.entries<unknown>({ ...answer, ...envelope })) {
    if (value === undefined) continue;
    const head = `${parts.length === 0 ? '{' : ','}${JSON.stringify(key)}:`;
    const body = value instanceof JsonText ? value.bytes : value instanceof JsonStream ? value : JSON.stringify(value);
    parts.push(head, body);
    // A string's UTF-8 size is at least its length: exact sizes are summed below.
    size += head.length + (typeof body === 'string' ? body.length : body.byteLength);
    if (size > maxBytes) throw tooLarge(size, maxBytes);
  }
  parts.push('}');
  // Neighbouring strings become one piece; a JsonText or JsonStream stays a piece of its own.
  const pieces: Array<Uint8Array | JsonStream> = [];
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

/**
 * A binary answer's pieces, bounded like a JSON answer's (no byte has gone out yet).
 * @throws RequestError (`invalid`, LIMIT_EXCEEDED) when longer than `maxBytes`.
 */
export function boundedBytes(pieces: Array<Uint8Array | BytesFeed>, bytes: number, maxBytes: number): SerializedAnswer {
  if (bytes > maxBytes) {
    cancelFeeds(pieces);
    throw tooLarge(bytes, maxBytes);
  }
  return { pieces, bytes };
}

/** Stops making the answer's BytesFeed pieces: it will not be sent (refused, or its client has gone). */
export function cancelFeeds(pieces: ReadonlyArray<Uint8Array | JsonStream | BytesFeed>): void {
  for (const p of pieces) if (p instanceof BytesFeed) p.cancel();
}

/** Pieces up to this many bytes in all are joined into one buffer: a copy costs less than a stream. */
const JOIN_UP_TO = 1 << 20;
/**
 * A JsonStream is sent in buffers of this size. Fresh buffers above glibc's mmap threshold
 * (`npm start` sets 128 KiB) were new mappings each, paid for in page faults (Q1b at 10 M events,
 * 243 MB: 2,822 ms merged in the pool, 2,660 streamed in fresh 1 MiB buffers, 2,564 in 64 KiB
 * ones); sent to a Node socket they come from a ring reused in turn (ChunkRing), so they are
 * faulted in once per answer: 208 MB went out in ~580-630 ms instead of ~700-750 in fresh 64 KiB
 * ones.
 */
export const STREAM_CHUNK = 256 * 1024;
/** Buffers filled ahead of the socket: the merge keeps going while the socket drains. */
const STREAM_AHEAD = 32;

/**
 * The buffers a JsonStream is filled into when the body is written to a Node socket by
 * @hono/node-server (`writeFromReadableStream`): it reads a chunk only once the one before is
 * written (`write` returned true) or drained, and a write that returns true leaves at most the
 * socket's high-water mark (16 KiB) of that latest chunk with the kernel. When chunk n is filled
 * at most STREAM_AHEAD chunks wait in the stream's queue, the reader may still be writing the one
 * before them and hold the tail of the one before that: a ring of STREAM_AHEAD + 4 buffers never
 * hands out one that is still in use (test/integration/stream-chunk-ring.test.ts reads a
 * 40 MB answer slowly and at once, byte for byte). A consumer that keeps what it reads (a Response
 * read whole in-process) gets fresh buffers instead: `answerBody`'s `reuse` is false.
 */
export class ChunkRing {
  static readonly SIZE = STREAM_AHEAD + 4;
  private readonly buffers: Buffer[] = [];
  private next = 0;

  /** The next buffer, `bytes` long (at most STREAM_CHUNK). */
  take(bytes: number): Buffer {
    const slot = this.next++ % ChunkRing.SIZE;
    const buffer = (this.buffers[slot] ??= Buffer.allocUnsafeSlow(STREAM_CHUNK));
    return buffer.subarray(0, bytes);
  }
}

/**
 * The HTTP body of a serialized answer: one buffer, or for a large answer with several pieces
 * a stream of them, so a by-user answer of hundreds of MB is not copied once more into a single
 * buffer (~0.2-0.3 s for 241 MB, most of it page faults on the fresh memory). A JsonStream piece
 * is filled STREAM_CHUNK bytes at a time, STREAM_AHEAD buffers ahead of the socket; a BytesFeed
 * piece is sent as its pieces come. When either fails midway (`onError`), the body errors and
 * the connection is cut, never a short answer that looks whole; when the body is cancelled (the
 * client has gone), every feed is cancelled too. `reuse`: the body goes to a Node socket through
 * @hono/node-server, so a JsonStream's buffers come from a ChunkRing.
 */
export function answerBody(answer: SerializedAnswer, onError: (err: unknown) => void = () => undefined, reuse = false): Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> {
  const { pieces, bytes } = answer;
  const streams = pieces.some((p) => p instanceof JsonStream || p instanceof BytesFeed);
  if (!streams && pieces.length === 1 && (pieces[0] as Uint8Array).buffer instanceof ArrayBuffer) return pieces[0] as Uint8Array<ArrayBuffer>;
  if (!streams && (bytes <= JOIN_UP_TO || pieces.length === 1)) return Buffer.concat(pieces as Uint8Array[], bytes) as unknown as Uint8Array<ArrayBuffer>;
  const failed = (controller: ReadableStreamDefaultController<Uint8Array>, err: unknown) => {
    onError(err);
    cancelFeeds(pieces);
    controller.error(err);
  };
  let next = 0;
  let left = 0;
  const ring = reuse ? new ChunkRing() : null;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      // (a pull must enqueue, close or error: a feed's end moves on to the next piece)
      for (;;) {
        const piece = pieces[next];
        if (piece === undefined) return controller.close();
        if (piece instanceof BytesFeed) {
          let chunk: Uint8Array | null;
          try {
            chunk = await piece.next();
          } catch (err) {
            return failed(controller, err);
          }
          if (chunk === null) {
            next++;
            continue;
          }
          return controller.enqueue(chunk);
        }
        if (!(piece instanceof JsonStream)) {
          next++;
          return controller.enqueue(piece);
        }
        if (left === 0) left = piece.byteLength;
        // Back to the event loop before each slice: while the kernel takes every write at once (a
        // client reading as fast as it comes), reads, writes and fills would otherwise chain as
        // microtasks through the whole answer (~30-50 ms for 15 MB, ingest waiting behind it).
        await new Promise<void>((resolve) => setImmediate(resolve));
        try {
          const size = Math.min(STREAM_CHUNK, left);
          const chunk = ring === null ? Buffer.allocUnsafeSlow(size) : ring.take(size);
          const n = piece.fill(chunk);
          if (n !== chunk.length) throw new Error(`a streamed answer field wrote ${n} of ${chunk.length} bytes (${left} were left)`);
          left -= n;
          if (left === 0) next++;
          return controller.enqueue(chunk);
        } catch (err) {
          return failed(controller, err);
        }
      }
    },
    cancel() {
      cancelFeeds(pieces);
    },
  }, new CountQueuingStrategy({ highWaterMark: STREAM_AHEAD }));
}

function tooLarge(bytes: number, max: number) {
  return overLimit('(answer)', `the answer is over ${bytes} bytes: narrow the filter, group by fewer keys or ask for fewer rows`, 'maxResponseBytes', max);
}
