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
import { RecordBatchReader } from 'apache-arrow';

/** Record types. The numbers are on disk: never reuse one. */
export const LogRecordType = {
  /**
   * A sealed event batch as written before rows were numbered: the Arrow IPC stream bytes alone.
   * Still read (its rows are numbered by counting from the one before); no longer written.
   */
  EVENT_BATCH: 1,
  /** An enrichment upsert: `u16 LE tableBytes | table (UTF-8) | Arrow IPC stream`. */
  ENRICH_UPSERT: 2,
  /** An enrichment table dropped: `table (UTF-8)`. */
  ENRICH_DROP: 3,
  /**
   * A sealed event batch with its row numbers: `f64 LE first_row | u32 LE rows | Arrow IPC stream`.
   * `first_row` is the absolute index of its first row: a shard's rows are numbered in log order
   * from 0 across restarts and polars restores, and a query's cut (`rows_upto`) is such a number.
   */
  NUMBERED_BATCH: 4,
} as const;
export type LogRecordTypeValue = (typeof LogRecordType)[keyof typeof LogRecordType];

export function isLogRecordType(t: number): t is LogRecordTypeValue {
  return t === LogRecordType.EVENT_BATCH || t === LogRecordType.ENRICH_UPSERT || t === LogRecordType.ENRICH_DROP || t === LogRecordType.NUMBERED_BATCH;
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
  /**
   * Drops records wholly before `position` (as far as whole files allow); never later ones, and
   * never the last NUMBERED_BATCH record: the next row number is read from it at start, so a
   * caller that truncates must replay from its own position, not from `start`.
   */
  truncateBefore(position: number): Promise<void>;
  /**
   * Drops every record at or after `position` (appended, not yet synced: a write or sync
   * failed, so none of them may count as durable, and a later append must not land after them).
   */
  discardFrom(position: number): Promise<void>;
  /** Writes and syncs a little outside the records: resolves once the log's storage takes writes again. */
  probe(): Promise<void>;
  /** The last record of `type` the log holds, or null. */
  last(type: LogRecordTypeValue): Promise<LogRecord | null>;
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

export const NUMBERED_HEAD_BYTES = 12;

/** A NUMBERED_BATCH payload: the batch's IPC stream behind its first row number and row count. */
export function encodeNumberedBatch(firstRow: number, rows: number, ipc: Uint8Array): Uint8Array {
  const out = new Uint8Array(NUMBERED_HEAD_BYTES + ipc.byteLength);
  out.set(ipc, NUMBERED_HEAD_BYTES);
  return numberedBatchIn(out, firstRow, rows);
}

/**
 * A NUMBERED_BATCH payload made in place: `payload` holds the IPC stream behind
 * `NUMBERED_HEAD_BYTES` of room (a sealed batch's, column-builder.ts), where the head is written.
 * Returns `payload`; no copy of the stream.
 */
export function numberedBatchIn(payload: Uint8Array, firstRow: number, rows: number): Uint8Array {
  const view = new DataView(payload.buffer, payload.byteOffset, NUMBERED_HEAD_BYTES);
  view.setFloat64(0, firstRow, true);
  view.setUint32(8, rows, true);
  return payload;
}

export function decodeNumberedBatch(payload: Uint8Array): { firstRow: number; rows: number; ipc: Uint8Array } {
  if (payload.length < NUMBERED_HEAD_BYTES) throw new Error(`numbered batch record is ${payload.length} bytes; expected at least ${NUMBERED_HEAD_BYTES}`);
  const view = new DataView(payload.buffer, payload.byteOffset, NUMBERED_HEAD_BYTES);
  const firstRow = view.getFloat64(0, true);
  if (!Number.isSafeInteger(firstRow) || firstRow < 0) throw new Error(`numbered batch record has first_row ${firstRow}; expected a non-negative integer`);
  return { firstRow, rows: view.getUint32(8, true), ipc: payload.subarray(NUMBERED_HEAD_BYTES) };
}

/** Rows of an Arrow IPC stream (a legacy EVENT_BATCH record, numbered by counting). */
export function ipcRowCount(ipc: Uint8Array): number {
  let rows = 0;
  for (const batch of RecordBatchReader.from(ipc)) rows += batch.numRows;
  return rows;
}

export const encodeEnrichDrop = (table: string): Uint8Array => encoder.encode(table);
export const decodeEnrichDrop = (payload: Uint8Array): { table: string } => ({ table: decoder.decode(payload) });
