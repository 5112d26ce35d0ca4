/**
 * The shard log: what a shard hands to its polars process, written down first, so a polars
 * process that dies (or is killed to cancel a query) can be rebuilt by replaying it, and a
 * restarted engine gets its data back.
 *
 * Everything outside `src/shards/log/` sees only this interface. The file implementation
 * (file-log.ts) is the first; a replicated log (NATS JetStream) can take its place for scale-out,
 * which is why `sync`, `readFrom` and `truncateBefore` are asynchronous and positions are opaque
 * increasing numbers (byte offsets in the file log, sequence numbers in a stream).
 */

/** Record types. The numbers are on disk: never reuse one. */
export const LogRecordType = {
  /** A sealed event batch: the Arrow IPC stream bytes the shard handed to polars. */
  EVENT_BATCH: 1,
  /** An enrichment upsert: `u16 LE tableBytes | table (UTF-8) | Arrow IPC stream`. */
  ENRICH_UPSERT: 2,
  /** An enrichment table dropped: `table (UTF-8)`. */
  ENRICH_DROP: 3,
} as const;
export type LogRecordTypeValue = (typeof LogRecordType)[keyof typeof LogRecordType];

export function isLogRecordType(t: number): t is LogRecordTypeValue {
  return t === LogRecordType.EVENT_BATCH || t === LogRecordType.ENRICH_UPSERT || t === LogRecordType.ENRICH_DROP;
}

export interface LogRecord {
  /** Where the record starts; pass it to `readFrom` to read from here. */
  position: number;
  /** Where the next record starts (`truncateBefore(next)` drops this record and everything before). */
  next: number;
  type: LogRecordTypeValue;
  payload: Uint8Array;
}

export interface ShardLogStats {
  /** Bytes held (records and their framing). */
  bytes: number;
  records: number;
  /** Torn or corrupt records found at open and cut off, with everything after them. */
  tornRecordsCut: number;
  tornBytesCut: number;
  /** Duration of the last sync, ms. */
  lastSyncMs: number | null;
}

export interface ShardLog {
  /** Position of the first record held (0 until anything is truncated). */
  readonly start: number;
  /** Position the next append gets. */
  readonly end: number;
  /** Appends one record; returns its position. Not durable until `sync()` resolves. */
  append(type: LogRecordTypeValue, payload: Uint8Array): number;
  /** Makes every record appended so far durable (one fdatasync: group commit). */
  sync(): Promise<void>;
  /**
   * Records from `position` (a record boundary; anything at or before `start` reads from the
   * start) up to `end` as it is when called. Each record's checksum is verified.
   */
  readFrom(position: number): AsyncIterable<LogRecord>;
  /** Drops records wholly before `position` (as far as whole files allow); never later ones. */
  truncateBefore(position: number): Promise<void>;
  stats(): ShardLogStats;
  close(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeEnrichUpsert(table: string, ipc: Uint8Array): Uint8Array {
  const name = encoder.encode(table);
  if (name.length > 0xffff) throw new Error(`enrichment table name is ${name.length} bytes; at most 65535`);
  const out = new Uint8Array(2 + name.length + ipc.byteLength);
  new DataView(out.buffer).setUint16(0, name.length, true);
  out.set(name, 2);
  out.set(ipc, 2 + name.length);
  return out;
}

export function decodeEnrichUpsert(payload: Uint8Array): { table: string; ipc: Uint8Array } {
  if (payload.length < 2) throw new Error(`enrichment upsert record is ${payload.length} bytes; expected at least 2`);
  const nameLen = new DataView(payload.buffer, payload.byteOffset, 2).getUint16(0, true);
  if (payload.length < 2 + nameLen) throw new Error(`enrichment upsert record names a ${nameLen}-byte table but holds ${payload.length - 2} bytes`);
  return { table: decoder.decode(payload.subarray(2, 2 + nameLen)), ipc: payload.subarray(2 + nameLen) };
}

export const encodeEnrichDrop = (table: string): Uint8Array => encoder.encode(table);
export const decodeEnrichDrop = (payload: Uint8Array): { table: string } => ({ table: decoder.decode(payload) });
