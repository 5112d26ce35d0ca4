/**
 * Worker side: accumulates decoded ring records into Arrow-ready column buffers and seals them
 * into one Arrow RecordBatch (IPC stream bytes) for the polars process.
 *
 * Strings are copied once, from the ring scratch buffer straight into Utf8 value buffers with
 * Int32 offsets, so building the batch needs no string decoding at all. The batch schema is the
 * `append` contract of python/engine_polars/store.py.
 */
import { Field, Float64, RecordBatch, RecordBatchStreamWriter, Schema, Struct, Utf8, makeData } from 'apache-arrow';
import type { BlockView } from './ring-block.js';
import type { RecordView } from './ring-record.js';

export const EVENT_BATCH_SCHEMA = new Schema([
  new Field('timestamp', new Float64(), false),
  new Field('event_type', new Utf8(), false),
  new Field('user_id', new Utf8(), false),
  new Field('value', new Float64(), true),
  new Field('metadata', new Utf8(), true),
]);

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

const bytesOf = (a: Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

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

export interface SealedBatch {
  ipc: Uint8Array;
  rows: number;
  /** Wall-clock ms when the oldest row of this batch was decoded. */
  firstRowAt: number;
}

export class ColumnBuilder {
  private capacity = 1024;
  private timestamps = new Float64Array(this.capacity);
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
    const string = (col: StringColumn, nullBitmap?: Uint8Array, nullCount = 0) =>
      makeData({
        type: new Utf8(),
        length: n,
        nullCount,
        ...(nullBitmap ? { nullBitmap } : {}),
        valueOffsets: col.offsets.subarray(0, n + 1),
        data: col.data.subarray(0, col.bytes),
      });
    const children = [
      makeData({ type: new Float64(), length: n, data: this.timestamps.subarray(0, n) }),
      string(this.eventTypes),
      string(this.userIds),
      makeData({
        type: new Float64(),
        length: n,
        nullCount: this.valueNulls,
        nullBitmap: this.valueNulls > 0 ? this.valueValid.subarray(0, bitmapBytes) : new Uint8Array(0),
        data: this.values.subarray(0, n),
      }),
      string(this.metadata, this.metadataNulls > 0 ? this.metadataValid.subarray(0, bitmapBytes) : new Uint8Array(0), this.metadataNulls),
    ];
    const struct = makeData({ type: new Struct(EVENT_BATCH_SCHEMA.fields), length: n, nullCount: 0, children });
    const schema = metadata ? new Schema(EVENT_BATCH_SCHEMA.fields, metadata) : EVENT_BATCH_SCHEMA;
    const batch = new RecordBatch(schema, struct);
    // The columns above are views of this builder's arrays, not copies: the writer joins the
    // stream's messages into one new buffer before `reset()` reuses them (several messages, so
    // never a view of ours).
    const ipc = RecordBatchStreamWriter.writeAll([batch]).toUint8Array(true);
    const sealed = { ipc, rows: n, firstRowAt: this.firstRowAt };
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
    this.values = f64(this.values);
    this.valueValid = bits(this.valueValid);
    this.metadataValid = bits(this.metadataValid);
    this.eventTypes.grow(cap);
    this.userIds.grow(cap);
    this.metadata.grow(cap);
    this.capacity = cap;
  }
}
