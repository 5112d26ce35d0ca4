/**
 * The column block: one ring record carrying many events of one request's part on a shard as
 * columns (POST /ingest/arrow). The router writes whole columns and the shard's column builder
 * copies them with `set` (memcpy) instead of decoding one framed record per event. Pure encode
 * and decode, imported by both sides like ring-record.ts.
 *
 * Layout. The first 30 bytes are the common record header of ring-record.ts (little-endian), so
 * `decodeRecord` tells a block by its kind byte:
 *
 *   u32 recordBytes | f64 0 | f64 0 | u8 pad | u8 kind = RECORD_KIND_COLUMNS | u16 0 | u16 0 | u32 rows
 *   u32 eventTypeBytes | u32 userIdBytes | u32 metadataBytes | u32 0
 *   pad × u8 0                       so that the columns start 8-byte aligned in the producer's buffer
 *   f64 timestamp[rows]              epoch ms
 *   f64 value[rows]                  0 where null
 *   u32 eventTypeEnd[rows] | u32 userIdEnd[rows] | u32 metadataEnd[rows]
 *                                    each row's end in its column's bytes (row 0 starts at 0)
 *   u8  valueValid[ceil(rows / 8)] | u8 metadataValid[ceil(rows / 8)]   LSB-first, as Arrow's
 *   event_type bytes | user_id bytes | metadata bytes   (UTF-8, metadata JSON text)
 *
 * The columns are in the platform's byte order: both sides write and read them through typed
 * arrays of the same process (checked little-endian at load, like the rest of the record).
 * The padding lets the producer fill the columns through typed-array views; the consumer reads
 * them at whatever offset its pop scratch puts them, by copying bytes.
 *
 * A block of `rows` events counts as `rows` records in the ring's `pushed` and `consumed`, the
 * durable counter and the row numbers, exactly as `rows` single-event records would. Blocks are
 * kept under BLOCK_MAX_BYTES so a block always fits the shard's pop scratch (1 MiB) whole.
 */
import { RECORD_HEADER_BYTES, RECORD_KIND_COLUMNS } from './ring-record.js';

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('ring-block: column blocks assume a little-endian platform');

export const BLOCK_HEADER_BYTES = RECORD_HEADER_BYTES + 16;
/** A block stops growing once it would pass this (a single row never does: ≤ ~5 KiB). */
export const BLOCK_MAX_BYTES = 256 * 1024;
/** Fixed bytes per row: timestamp, value, three string ends (bitmaps come on top). */
const ROW_FIXED_BYTES = 8 + 8 + 3 * 4;

/** UTF-8 strings, one per row: row r is `data[start[r]..end[r])`. */
export interface Utf8Rows {
  data: Uint8Array;
  start: Int32Array;
  end: Int32Array;
}

/** Columns of validated events (main thread), indexed by row. */
export interface BlockSource {
  /** epoch ms, integral */
  timestamps: Float64Array;
  /** null: the request had no value column (every value null) */
  values: Float64Array | null;
  /** LSB-first validity of `values`; null: all valid */
  valueValid: Uint8Array | null;
  eventType: Utf8Rows;
  userId: Utf8Rows;
  /** null: the request had no metadata column */
  metadata: Utf8Rows | null;
  /** LSB-first validity of `metadata`; null: all valid */
  metadataValid: Uint8Array | null;
}

const bitmapBytes = (rows: number) => (rows + 7) >> 3;
const isSet = (bits: Uint8Array | null, i: number) => bits === null || ((bits[i >> 3]! >> (i & 7)) & 1) === 1;

/** Padding after the header of a block whose record starts at byte `at` of its buffer (absolute, with the buffer's byteOffset). */
const padAt = (at: number) => (8 - ((at + BLOCK_HEADER_BYTES) & 7)) & 7;

/** A block's size: header, `pad` bytes, `rows` rows' columns and `stringBytes` of strings. */
export function blockBytes(rows: number, stringBytes: number, pad: number): number {
  return BLOCK_HEADER_BYTES + pad + rows * ROW_FIXED_BYTES + 2 * bitmapBytes(rows) + stringBytes;
}

/**
 * The rows `order[from..to)` that make the next block: as many as fit in BLOCK_MAX_BYTES (at
 * least one). Returns `to` and the string bytes they hold.
 */
export function nextBlock(src: BlockSource, order: Uint32Array, from: number, limit: number): { to: number; strings: number } {
  const { eventType: et, userId: uid, metadata: md, metadataValid } = src;
  let strings = 0;
  let to = from;
  while (to < limit) {
    const r = order[to]!;
    let add = et.end[r]! - et.start[r]! + uid.end[r]! - uid.start[r]!;
    if (md !== null && isSet(metadataValid, r)) add += md.end[r]! - md.start[r]!;
    if (to > from && blockBytes(to + 1 - from, strings + add, 7) > BLOCK_MAX_BYTES) break;
    strings += add;
    to++;
  }
  return { to, strings };
}

/** The size `encodeBlock` will give `rows` rows holding `strings` bytes at `offset` of `buf`. */
export function blockBytesAt(buf: Uint8Array, offset: number, rows: number, strings: number): number {
  return blockBytes(rows, strings, padAt(buf.byteOffset + offset));
}

/** Copies the strings of rows `order[from..to)` to `dataAt` and their ends into `ends`; returns the bytes copied. */
function writeStrings(col: Utf8Rows | null, valid: Uint8Array | null, order: Uint32Array, from: number, to: number, buf: Uint8Array, view: DataView, ends: Uint32Array, dataAt: number): number {
  let p = dataAt;
  if (col === null) {
    ends.fill(0);
    return 0;
  }
  const { data, start, end } = col;
  const src = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let k = from, j = 0; k < to; k++, j++) {
    const r = order[k]!;
    if (valid === null || (valid[r >> 3]! >> (r & 7)) & 1) {
      let x = start[r]!;
      const e = end[r]!;
      if (e - x > 64) {
        buf.set(data.subarray(x, e), p);
        p += e - x;
      } else {
        // Short strings (most): four bytes at a time, as integers (a float store may rewrite
        // NaN bits), then the tail; cheaper than a subarray for `set`.
        for (; x + 4 <= e; x += 4, p += 4) view.setUint32(p, src.getUint32(x, true), true);
        for (; x < e; x++) buf[p++] = data[x]!;
      }
    }
    ends[j] = p - dataAt;
  }
  return p - dataAt;
}

/**
 * Writes the block of rows `order[from..to)` holding `strings` bytes (from `nextBlock`) at
 * `offset` of `buf` (`view` over the same bytes, same indexes), which must have room for
 * `blockBytesAt(buf, offset, to - from, strings)`; returns the offset after it.
 */
export function encodeBlock(src: BlockSource, order: Uint32Array, from: number, to: number, strings: number, buf: Uint8Array, view: DataView, offset: number): number {
  const n = to - from;
  const pad = padAt(buf.byteOffset + offset);
  const bytes = blockBytes(n, strings, pad);
  const bm = bitmapBytes(n);
  view.setUint32(offset, bytes - 4, true);
  view.setFloat64(offset + 4, 0, true);
  view.setFloat64(offset + 12, 0, true);
  view.setUint8(offset + 20, pad);
  view.setUint8(offset + 21, RECORD_KIND_COLUMNS);
  view.setUint16(offset + 22, 0, true);
  view.setUint16(offset + 24, 0, true);
  view.setUint32(offset + 26, n, true);
  const tsAt = offset + BLOCK_HEADER_BYTES + pad;
  const abs = buf.byteOffset;
  const ts = new Float64Array(buf.buffer, abs + tsAt, n);
  const vals = new Float64Array(buf.buffer, abs + tsAt + 8 * n, n);
  const etEnds = new Uint32Array(buf.buffer, abs + tsAt + 16 * n, n);
  const uidEnds = new Uint32Array(buf.buffer, abs + tsAt + 20 * n, n);
  const mdEnds = new Uint32Array(buf.buffer, abs + tsAt + 24 * n, n);
  const vvAt = tsAt + 28 * n;
  const mvAt = vvAt + bm;
  const dataAt = mvAt + bm;
  buf.fill(0, offset + BLOCK_HEADER_BYTES, tsAt);
  buf.fill(0, vvAt, dataAt);
  const { timestamps, values, valueValid, metadata, metadataValid } = src;
  for (let k = from, j = 0; k < to; k++, j++) ts[j] = timestamps[order[k]!]!;
  if (values === null) {
    vals.fill(0);
  } else {
    for (let k = from, j = 0; k < to; k++, j++) {
      const r = order[k]!;
      if (valueValid === null || (valueValid[r >> 3]! >> (r & 7)) & 1) {
        vals[j] = values[r]!;
        buf[vvAt + (j >> 3)]! |= 1 << (j & 7);
      } else {
        vals[j] = 0;
      }
    }
  }
  if (metadata !== null) {
    for (let k = from, j = 0; k < to; k++, j++) {
      const r = order[k]!;
      if (metadataValid === null || (metadataValid[r >> 3]! >> (r & 7)) & 1) buf[mvAt + (j >> 3)]! |= 1 << (j & 7);
    }
  }
  const etBytes = writeStrings(src.eventType, null, order, from, to, buf, view, etEnds, dataAt);
  const uidBytes = writeStrings(src.userId, null, order, from, to, buf, view, uidEnds, dataAt + etBytes);
  const mdBytes = writeStrings(metadata, metadataValid, order, from, to, buf, view, mdEnds, dataAt + etBytes + uidBytes);
  view.setUint32(offset + RECORD_HEADER_BYTES, etBytes, true);
  view.setUint32(offset + RECORD_HEADER_BYTES + 4, uidBytes, true);
  view.setUint32(offset + RECORD_HEADER_BYTES + 8, mdBytes, true);
  view.setUint32(offset + RECORD_HEADER_BYTES + 12, 0, true);
  const end = dataAt + etBytes + uidBytes + mdBytes;
  if (end - offset !== bytes) throw new Error(`column block of ${n} rows: planned ${bytes} bytes, wrote ${end - offset}`);
  return end;
}

/** Where a block's parts are in the buffer it was read from (offsets into that buffer). */
export interface BlockView {
  rows: number;
  timestampsAt: number;
  valuesAt: number;
  valueValidAt: number;
  metadataValidAt: number;
  eventTypeEndsAt: number;
  userIdEndsAt: number;
  metadataEndsAt: number;
  eventTypeAt: number;
  eventTypeBytes: number;
  userIdAt: number;
  userIdBytes: number;
  metadataAt: number;
  metadataBytes: number;
}

/**
 * Reads the block whose record (`body` bytes after its length word) starts at `offset`. Throws
 * when the sizes disagree (a producer bug, never user input).
 */
export function decodeBlock(view: DataView, offset: number, body: number): BlockView {
  const rows = view.getUint32(offset + 26, true);
  const pad = view.getUint8(offset + 20);
  const eventTypeBytes = view.getUint32(offset + RECORD_HEADER_BYTES, true);
  const userIdBytes = view.getUint32(offset + RECORD_HEADER_BYTES + 4, true);
  const metadataBytes = view.getUint32(offset + RECORD_HEADER_BYTES + 8, true);
  const expected = blockBytes(rows, eventTypeBytes + userIdBytes + metadataBytes, pad) - 4;
  if (pad > 7 || expected !== body) throw new Error(`corrupt column block at ${offset}: expected ${body} body bytes, its ${rows} rows, ${pad} padding and strings add to ${expected}`);
  const bm = bitmapBytes(rows);
  const timestampsAt = offset + BLOCK_HEADER_BYTES + pad;
  const eventTypeAt = timestampsAt + 28 * rows + 2 * bm;
  return {
    rows,
    timestampsAt,
    valuesAt: timestampsAt + 8 * rows,
    eventTypeEndsAt: timestampsAt + 16 * rows,
    userIdEndsAt: timestampsAt + 20 * rows,
    metadataEndsAt: timestampsAt + 24 * rows,
    valueValidAt: timestampsAt + 28 * rows,
    metadataValidAt: timestampsAt + 28 * rows + bm,
    eventTypeAt,
    eventTypeBytes,
    userIdAt: eventTypeAt + eventTypeBytes,
    userIdBytes,
    metadataAt: eventTypeAt + eventTypeBytes + userIdBytes,
    metadataBytes,
  };
}
