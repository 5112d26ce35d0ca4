/**
 * Worker side: accumulates decoded ring records into Arrow-ready column buffers and seals them
 * into one Arrow RecordBatch (IPC stream bytes) for the polars process.
 *
 * Strings are copied once, from the ring scratch buffer straight into Utf8 value buffers with
 * Int32 offsets, so building the batch needs no string decoding at all. The batch schema is the
 * `append` contract of python/engine_polars/store.py.
 *
 * Sealing writes the IPC stream itself, in one allocation and one copy of the columns, with
 * room in front for the log record's numbered-batch head (shard-log.ts), so the log and the pipe
 * to polars take it as it is. Only the two flatbuffer headers come from apache-arrow's encoder;
 * the bytes are those `RecordBatchStreamWriter.writeAll` writes (column-builder.test.ts compares
 * them), which cost ~3x the CPU: its buffer chunks are joined in a second copy, and then the log
 * record copied them a third time behind the head.
 */
import { Field, Float64, Int64, Schema, Utf8 } from 'apache-arrow';
import { BufferRegion, FieldNode, Message, RecordBatch as RecordBatchHeader } from 'apache-arrow/ipc/metadata/message';
import { NUMBERED_HEAD_BYTES } from './log/shard-log.js';
import type { BlockView } from './ring-block.js';
import type { RecordView } from './ring-record.js';
import { framedMessage, pad8 } from '../arrow-frame.js';

/**
 * The sealed batch's schema. Timestamps go as Int64 epoch ms, the type polars stores: both ingest
 * routes hand the shard integral epoch ms (safe integers), and sent as Float64 polars checked each
 * one (finite, integral, within 2^53) and cast it, ~10 ns a row on 20,000-row batches (20 under
 * the ingest bench's contention) against ~2 for the conversion here. A batch holding any
 * timestamp that is not a safe integer goes as Float64 (`FLOAT_TIMESTAMP_SCHEMA`), which polars
 * checks as before; batches logged before this change are Float64 too.
 */
export const EVENT_BATCH_SCHEMA = new Schema([
  new Field('timestamp', new Int64(), false),
  new Field('event_type', new Utf8(), false),
  new Field('user_id', new Utf8(), false),
  new Field('value', new Float64(), true),
  new Field('metadata', new Utf8(), true),
]);

/** `EVENT_BATCH_SCHEMA` with Float64 timestamps: a batch with a timestamp that is not a safe integer. */
export const FLOAT_TIMESTAMP_SCHEMA = new Schema([new Field('timestamp', new Float64(), false), ...EVENT_BATCH_SCHEMA.fields.slice(1)]);

/**
 * Writes `ts[0..n)` as Int64 little-endian words into `words` (two per value); false (and
 * `words` partly written) when one of them is not a safe integer.
 */
function int64Words(ts: Float64Array, n: number, words: Uint32Array): boolean {
  for (let i = 0; i < n; i++) {
    const t = ts[i]!;
    if (!Number.isSafeInteger(t)) return false;
    const hi = Math.floor(t / 4294967296);
    words[2 * i] = t - hi * 4294967296;
    words[2 * i + 1] = hi; // ToUint32: a negative high word in two's complement
  }
  return true;
}

class StringColumn {
  offsets = new Int32Array(1024 + 1);
  data = new Uint8Array(16 * 1024);
  bytes = 0;

  append(src: Uint8Array, start: number, len: number, row: number): void {
    if (this.bytes + len > this.data.length) {
      const grown = new Uint8Array(Math.max(this.data.length * 2, this.bytes + len));
      grown.set(this.data.subarray(0, this.bytes));
      this.data = grown;
    }
    this.data.set(src.subarray(start, start + len), this.bytes);
    this.bytes += len;
    this.offsets[row + 1] = this.bytes;
  }

  /** Rows `row..row+rows` from a column block: their bytes in one copy, their ends rebased. */
  appendBlock(src: Uint8Array, endsAt: number, dataAt: number, dataBytes: number, row: number, rows: number): void {
    if (this.bytes + dataBytes > this.data.length) {
      const grown = new Uint8Array(Math.max(this.data.length * 2, this.bytes + dataBytes));
      grown.set(this.data.subarray(0, this.bytes));
      this.data = grown;
    }
    this.data.set(src.subarray(dataAt, dataAt + dataBytes), this.bytes);
    // the ends in one copy (same process, same byte order), then rebased in place
    const base = this.bytes;
    const offsets = this.offsets;
    new Uint8Array(offsets.buffer, offsets.byteOffset + 4 * (row + 1), 4 * rows).set(src.subarray(endsAt, endsAt + 4 * rows));
    if (base !== 0) for (let i = row + 1; i <= row + rows; i++) offsets[i]! += base;
    this.bytes += dataBytes;
  }

  grow(capacity: number): void {
    const grown = new Int32Array(capacity + 1);
    grown.set(this.offsets);
    this.offsets = grown;
  }
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** ORs `rows` bits from `src` (LSB first, at byte `at`) into `dst` from bit `dstBit`; returns how many were set. */
function copyBits(src: Uint8Array, at: number, rows: number, dst: Uint8Array, dstBit: number): number {
  let set = 0;
  for (let i = 0; i < rows; i++) {
    if ((src[at + (i >> 3)]! >> (i & 7)) & 1) {
      const b = dstBit + i;
      dst[b >> 3]! |= 1 << (b & 7);
      set++;
    }
  }
  return set;
}

/** Bytes in front of a sealed batch's IPC stream in `payload`: room for the log record's numbered-batch head. */
export const SEALED_HEAD_BYTES = NUMBERED_HEAD_BYTES;

const NO_BYTES = new Uint8Array(0);

/** One IPC stream message as the stream writer frames it (arrow-frame.ts). */
const framed = (message: Message): Uint8Array => framedMessage(Message.encode(message));

let defaultSchemaMessage: Uint8Array | null = null;
/** The schema message; the one without idempotency keys (nearly every batch) encoded once. */
function schemaMessage(schema: Schema): Uint8Array {
  if (schema !== EVENT_BATCH_SCHEMA) return framed(Message.from(schema)); // keys, or Float64 timestamps: rare
  return (defaultSchemaMessage ??= framed(Message.from(schema)));
}

export interface SealedBatch {
  /** `SEALED_HEAD_BYTES` for the log record's head, then `ipc` */
  payload: Uint8Array;
  /** the Arrow IPC stream: a view of `payload` */
  ipc: Uint8Array;
  rows: number;
  /** Wall-clock ms when the oldest row of this batch was decoded. */
  firstRowAt: number;
}

export class ColumnBuilder {
  private capacity = 1024;
  private timestamps = new Float64Array(this.capacity);
  /** the timestamps as Int64 words, written at seal */
  private timestampWords = new Uint32Array(2 * this.capacity);
  private values = new Float64Array(this.capacity);
  private valueValid = new Uint8Array(this.capacity >> 3);
  private metadataValid = new Uint8Array(this.capacity >> 3);
  private eventTypes = new StringColumn();
  private userIds = new StringColumn();
  private metadata = new StringColumn();
  private valueNulls = 0;
  private metadataNulls = 0;
  private firstRowAt = 0;
  rows = 0;

  append(src: Uint8Array, rec: RecordView): void {
    if (this.rows === this.capacity) this.grow();
    const row = this.rows;
    if (row === 0) this.firstRowAt = Date.now();
    this.timestamps[row] = rec.timestamp;
    if (rec.value === null) {
      this.valueNulls++;
    } else {
      this.values[row] = rec.value;
      this.valueValid[row >> 3]! |= 1 << (row & 7);
    }
    this.eventTypes.append(src, rec.eventTypeStart, rec.eventTypeLen, row);
    this.userIds.append(src, rec.userIdStart, rec.userIdLen, row);
    if (rec.hasMetadata) {
      this.metadataValid[row >> 3]! |= 1 << (row & 7);
    } else {
      this.metadataNulls++;
    }
    this.metadata.append(src, rec.metadataStart, rec.hasMetadata ? rec.metadataLen : 0, row);
    this.rows++;
  }

  /** Appends a column block's rows (ring-block.ts, read from `src` through `view`): copies, no per-event decoding. */
  appendBlock(src: Uint8Array, b: BlockView): void {
    const n = b.rows;
    if (n === 0) return;
    while (this.rows + n > this.capacity) this.grow();
    const row = this.rows;
    if (row === 0) this.firstRowAt = Date.now();
    bytesOf(this.timestamps).set(src.subarray(b.timestampsAt, b.timestampsAt + 8 * n), 8 * row);
    bytesOf(this.values).set(src.subarray(b.valuesAt, b.valuesAt + 8 * n), 8 * row);
    this.valueNulls += n - copyBits(src, b.valueValidAt, n, this.valueValid, row);
    this.metadataNulls += n - copyBits(src, b.metadataValidAt, n, this.metadataValid, row);
    this.eventTypes.appendBlock(src, b.eventTypeEndsAt, b.eventTypeAt, b.eventTypeBytes, row, n);
    this.userIds.appendBlock(src, b.userIdEndsAt, b.userIdAt, b.userIdBytes, row, n);
    this.metadata.appendBlock(src, b.metadataEndsAt, b.metadataAt, b.metadataBytes, row, n);
    this.rows += n;
  }

  /**
   * Seals the rows so far into Arrow IPC stream bytes and starts a fresh batch. `metadata` goes
   * into the stream's schema (the batch's idempotency keys, see batch-keys.ts).
   */
  seal(metadata?: Map<string, string>): SealedBatch | null {
    const n = this.rows;
    if (n === 0) return null;
    const bitmapBytes = (n + 7) >> 3;
    // The body's buffers in the order the schema's fields read them (validity first, a zero-length
    // one without nulls), each at an offset that is a multiple of 8, as the stream writer lays them.
    const nodes: FieldNode[] = [];
    const regions: BufferRegion[] = [];
    const buffers: Uint8Array[] = [];
    let bodyBytes = 0;
    const add = (bytes: Uint8Array): void => {
      regions.push(new BufferRegion(bodyBytes, pad8(bytes.byteLength)));
      buffers.push(bytes);
      bodyBytes += pad8(bytes.byteLength);
    };
    const float = (values: Float64Array, nulls: number, valid: Uint8Array): void => {
      nodes.push(new FieldNode(n, nulls));
      add(nulls > 0 ? valid.subarray(0, bitmapBytes) : NO_BYTES);
      add(bytesOf(values.subarray(0, n)));
    };
    const string = (col: StringColumn, nulls = 0, valid = NO_BYTES): void => {
      nodes.push(new FieldNode(n, nulls));
      add(nulls > 0 ? valid.subarray(0, bitmapBytes) : NO_BYTES);
      add(bytesOf(col.offsets.subarray(0, n + 1)));
      add(col.data.subarray(0, col.bytes));
    };
    const intTimestamps = int64Words(this.timestamps, n, this.timestampWords);
    if (intTimestamps) {
      nodes.push(new FieldNode(n, 0));
      add(NO_BYTES);
      add(bytesOf(this.timestampWords.subarray(0, 2 * n)));
    } else {
      float(this.timestamps, 0, NO_BYTES);
    }
    string(this.eventTypes);
    string(this.userIds);
    float(this.values, this.valueNulls, this.valueValid);
    string(this.metadata, this.metadataNulls, this.metadataValid);
    const fields = intTimestamps ? EVENT_BATCH_SCHEMA : FLOAT_TIMESTAMP_SCHEMA;
    const schema = metadata ? new Schema(fields.fields, metadata) : fields;
    const head = schemaMessage(schema);
    const batchHead = framed(Message.from(new RecordBatchHeader(n, nodes, regions, null, [], new Map()), bodyBytes));
    // Not zero-filled (malloc, where `new Uint8Array` is calloc): a zeroed allocation of a batch's
    // size came as fresh pages, a page fault per 4 KiB on every seal (~45 ns/event at 100,000-row
    // batches, stage bench); the bytes not copied into (head room, padding) are zeroed here.
    const payload: Uint8Array = Buffer.allocUnsafeSlow(SEALED_HEAD_BYTES + head.byteLength + batchHead.byteLength + bodyBytes + 8);
    payload.fill(0, 0, SEALED_HEAD_BYTES);
    let at = SEALED_HEAD_BYTES;
    payload.set(head, at);
    at += head.byteLength;
    payload.set(batchHead, at);
    at += batchHead.byteLength;
    for (const b of buffers) {
      payload.set(b, at);
      payload.fill(0, at + b.byteLength, at + pad8(b.byteLength));
      at += pad8(b.byteLength);
    }
    // end of stream: continuation marker and a zero length
    const view = new DataView(payload.buffer, payload.byteOffset);
    view.setInt32(at, -1, true);
    view.setInt32(at + 4, 0, true);
    const sealed = { payload, ipc: payload.subarray(SEALED_HEAD_BYTES), rows: n, firstRowAt: this.firstRowAt };
    this.reset();
    return sealed;
  }

  private reset(): void {
    this.rows = 0;
    this.valueNulls = 0;
    this.metadataNulls = 0;
    this.valueValid.fill(0);
    this.metadataValid.fill(0);
    this.eventTypes.bytes = 0;
    this.userIds.bytes = 0;
    this.metadata.bytes = 0;
  }

  private grow(): void {
    const cap = this.capacity * 2;
    const f64 = (a: Float64Array) => {
      const g = new Float64Array(cap);
      g.set(a);
      return g;
    };
    const bits = (a: Uint8Array) => {
      const g = new Uint8Array(cap >> 3);
      g.set(a);
      return g;
    };
    this.timestamps = f64(this.timestamps);
    this.timestampWords = new Uint32Array(2 * cap);
    this.values = f64(this.values);
    this.valueValid = bits(this.valueValid);
    this.metadataValid = bits(this.metadataValid);
    this.eventTypes.grow(cap);
    this.userIds.grow(cap);
    this.metadata.grow(cap);
    this.capacity = cap;
  }
}
