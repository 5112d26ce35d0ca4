/**
 * Frames between a shard and its polars process (stdin/stdout). The Python side is
 * `python/engine_polars/protocol.py`; `test/vectors/frames.json` is read by both test suites.
 *
 *   u32 LE headerBytes | u32 LE bodyBytes | header: UTF-8 JSON | body: bytes (Arrow IPC stream or empty)
 *
 * Requests carry `{id, op, plan?}` (`query_many`: `plans`); responses carry the same `id` and
 * either `ok: true` with op-specific fields (`rows` after append/stats/shutdown, `appended`,
 * `chunks`, `rss_bytes`, `pid`, `parts` of query_many, `op_ms` and `op_cpu_ms` of query and
 * query_many: the time the process spent on it and the CPU it used, for the stage timings), or
 * `ok: false` with a stable `code` (BAD_FRAME, FRAME_TOO_LARGE, BAD_PLAN, RESULT_TOO_LARGE,
 * UNKNOWN_OP, INTERNAL, CUSTOM_*) and a `message`. The Python process writes nothing else to stdout (its logs go to stderr).
 */

export type SidecarOp =
  | 'append'
  | 'query'
  | 'query_many'
  | 'stats'
  | 'ping'
  | 'shutdown'
  | 'enrich_upsert'
  | 'enrich_drop'
  | 'enrich_list'
  | 'custom_list'
  // the segment store (src/shards/segment-keeper.ts)
  | 'open'
  | 'roll'
  | 'retain';

export const FRAME_PREFIX_BYTES = 8;

export function encodeFrame(header: object, body?: Uint8Array): Buffer {
  const head = encodeFrameHead(Buffer.from(JSON.stringify(header), 'utf8'), body?.byteLength ?? 0);
  if (!body || body.byteLength === 0) return head;
  return Buffer.concat([head, body]);
}

/** The prefix and header of a frame whose body (`bodyBytes` long) is written after it. */
export function encodeFrameHead(headerJson: Buffer, bodyBytes: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + headerJson.length);
  out.writeUInt32LE(headerJson.length, 0);
  out.writeUInt32LE(bodyBytes, 4);
  headerJson.copy(out, FRAME_PREFIX_BYTES);
  return out;
}

export interface DecodedFrame {
  header: Record<string, unknown>;
  body: Uint8Array;
}

/**
 * Incremental frame reader for a byte stream: push chunks, take whole frames.
 * Each body gets its own ArrayBuffer (so it can be transferred to another thread), allocated once
 * its frame's header is read and filled as its chunks arrive: a partial of 150 MB is copied once,
 * not gathered into one buffer and copied again (~0.2 s per copy, most of it page faults).
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** The frame whose header is read and whose body is being filled. */
  private filling: { header: Record<string, unknown>; body: Uint8Array; filled: number } | null = null;

  push(chunk: Buffer): DecodedFrame[] {
    const frames: DecodedFrame[] = [];
    let input: Buffer | null = chunk;
    for (;;) {
      const f = this.filling;
      if (f !== null) {
        if (f.filled < f.body.length) {
          if (input === null) break;
          const n = Math.min(input.length, f.body.length - f.filled);
          f.body.set(n === input.length ? input : input.subarray(0, n), f.filled);
          f.filled += n;
          input = n < input.length ? input.subarray(n) : null;
          if (f.filled < f.body.length) break;
        }
        frames.push({ header: f.header, body: f.body });
        this.filling = null;
        continue;
      }
      if (input !== null) {
        this.chunks.push(input);
        this.buffered += input.length;
        input = null;
      }
      if (this.buffered < FRAME_PREFIX_BYTES) break;
      const prefix = this.peek(FRAME_PREFIX_BYTES);
      const headLen = prefix.readUInt32LE(0);
      const bodyLen = prefix.readUInt32LE(4);
      if (this.buffered < FRAME_PREFIX_BYTES + headLen) break;
      const head = this.take(FRAME_PREFIX_BYTES + headLen);
      const header = JSON.parse(head.toString('utf8', FRAME_PREFIX_BYTES)) as Record<string, unknown>;
      // malloc'd, not zero-filled: every byte is written before the frame is handed out
      this.filling = { header, body: new Uint8Array(Buffer.allocUnsafeSlow(bodyLen).buffer, 0, bodyLen), filled: 0 };
      // what came after the header goes into the body (and the frames after it)
      if (this.buffered > 0) {
        input = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
        this.chunks = [];
        this.buffered = 0;
      }
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const joined = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered -= n;
    return out;
  }
}
