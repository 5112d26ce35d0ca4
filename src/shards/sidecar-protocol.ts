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
 * Bodies are copied out into their own ArrayBuffer so they can be transferred to another thread.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): DecodedFrame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: DecodedFrame[] = [];
    for (;;) {
      if (this.buffered < FRAME_PREFIX_BYTES) break;
      const prefix = this.peek(FRAME_PREFIX_BYTES);
      const headLen = prefix.readUInt32LE(0);
      const bodyLen = prefix.readUInt32LE(4);
      const total = FRAME_PREFIX_BYTES + headLen + bodyLen;
      if (this.buffered < total) break;
      const all = this.take(total);
      const header = JSON.parse(all.toString('utf8', FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + headLen)) as Record<string, unknown>;
      const body = new Uint8Array(bodyLen);
      body.set(all.subarray(FRAME_PREFIX_BYTES + headLen));
      frames.push({ header, body });
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
