/**
 * POST /ingest/arrow, step 1: the Arrow IPC stream read into column chunks (one per record
 * batch), types checked per column and buffers checked against the row counts, so nothing
 * later reads past a buffer whatever the body claims. apache-arrow reads the messages; its
 * typed arrays are views into the body (no copy) except where a layout is normalized:
 *
 *   timestamp  Int64 (epoch ms), Timestamp (s, ms, µs or ns; any zone: Arrow timestamps are UTC
 *              instants) or Date64 → the raw 64-bit words, converted by validate-columns.ts
 *   strings    Utf8 (as is), LargeUtf8 (offsets narrowed), Utf8View (copied to Utf8 layout), or a
 *              Dictionary of those (distinct strings + one code per row: checked and hashed once
 *              per distinct string)
 *   value      Float64 (as is), Float32 and every integer type (converted to Float64), Null
 *   metadata   a string column as above, or Null
 *
 * Row-level rules (UTF-8, lengths, ranges, JSON) are validate-columns.ts's.
 */
import { DateUnit, Precision, RecordBatchReader, TimeUnit, Type, type Data, type DataType, type Field } from 'apache-arrow';
import { badRequest } from '../http-error.js';

/** UTF-8 strings laid out as Arrow's Utf8: string i is `data[offsets[i]..offsets[i + 1])`. */
export interface Utf8Strings {
  data: Uint8Array;
  offsets: Int32Array;
  count: number;
  /** LSB-first validity; null: all valid */
  valid: Uint8Array | null;
}

/** A string column: its strings by row, or (dictionary) the distinct strings and each row's code. */
export type StringColumn =
  | { kind: 'plain'; strings: Utf8Strings }
  | { kind: 'dict'; entries: Utf8Strings; codes: Int32Array; valid: Uint8Array | null };

export type TimestampUnit = 's' | 'ms' | 'us' | 'ns';

export interface ArrowChunk {
  /** the request-wide index of this chunk's first row */
  first: number;
  rows: number;
  /** two Int32 words per row, low then high */
  timestamp: { words: Int32Array; unit: TimestampUnit; valid: Uint8Array | null };
  eventType: StringColumn;
  userId: StringColumn;
  value: { values: Float64Array; valid: Uint8Array | null } | null;
  metadata: StringColumn | null;
}

export const ARROW_COLUMNS = ['timestamp', 'event_type', 'user_id', 'value', 'metadata'] as const;
const REQUIRED = new Set(['timestamp', 'event_type', 'user_id']);

const columnError = (column: string, reason: string) => badRequest(`column \`${column}\`: ${reason}`, [{ field: column, reason }]);

const STRING_TYPES = 'Utf8, LargeUtf8, Utf8View or a Dictionary of them';
const TIMESTAMP_UNITS: Record<number, TimestampUnit> = { [TimeUnit.SECOND]: 's', [TimeUnit.MILLISECOND]: 'ms', [TimeUnit.MICROSECOND]: 'us', [TimeUnit.NANOSECOND]: 'ns' };

const isStringType = (t: DataType) => t.typeId === Type.Utf8 || t.typeId === Type.LargeUtf8 || t.typeId === Type.Utf8View;

/** Why `type` does not fit `column`, or null. */
function typeProblem(column: string, type: DataType): string | null {
  const t = type as DataType & { bitWidth?: number; isSigned?: boolean; precision?: number; unit?: number; dictionary?: DataType };
  switch (column) {
    case 'timestamp':
      if (t.typeId === Type.Int && t.bitWidth === 64 && t.isSigned) return null;
      if (t.typeId === Type.Timestamp) return null;
      if (t.typeId === Type.Date && t.unit === DateUnit.MILLISECOND) return null;
      return `has type ${type}; expected Int64 (epoch ms), Timestamp (any unit) or Date64`;
    case 'value':
      if (t.typeId === Type.Float && t.precision !== Precision.HALF) return null;
      if (t.typeId === Type.Int || t.typeId === Type.Null) return null;
      return `has type ${type}; expected Float64 (or Float32, an integer type, or Null for no values)`;
    default:
      if (isStringType(t)) return null;
      if (t.typeId === Type.Dictionary && isStringType(t.dictionary!)) return null;
      if (column === 'metadata' && t.typeId === Type.Null) return null;
      return `has type ${type}; expected ${STRING_TYPES}${column === 'metadata' ? ' (JSON object text), or Null' : ''}`;
  }
}

/** The column fields by name, refusing unknown, duplicate and missing columns and wrong types. */
function columnsOf(fields: Field[]): Map<string, number> {
  const at = new Map<string, number>();
  fields.forEach((f, i) => {
    if (!(ARROW_COLUMNS as readonly string[]).includes(f.name)) {
      throw columnError(f.name, `unknown column; allowed: ${ARROW_COLUMNS.join(', ')}`);
    }
    if (at.has(f.name)) throw columnError(f.name, 'appears twice in the schema');
    const problem = typeProblem(f.name, f.type);
    if (problem) throw columnError(f.name, problem);
    at.set(f.name, i);
  });
  for (const name of REQUIRED) if (!at.has(name)) throw columnError(name, `missing; the stream needs columns ${[...REQUIRED].join(', ')} (value and metadata are optional)`);
  return at;
}

function validity(data: Data, rows: number, column: string): Uint8Array | null {
  if (data.typeId === Type.Null) return new Uint8Array((rows + 7) >> 3);
  if (data.nullCount <= 0) return null;
  const bitmap = data.nullBitmap;
  if (!bitmap || bitmap.length < (rows + 7) >> 3) throw columnError(column, `validity bitmap has ${bitmap?.length ?? 0} bytes for ${rows} rows`);
  return bitmap;
}

/** The 64-bit values as Int32 word pairs (a view when aligned). */
function words(values: ArrayBufferView, rows: number, column: string): Int32Array {
  if (values.byteLength < 8 * rows) throw columnError(column, `data buffer has ${values.byteLength} bytes for ${rows} 64-bit values`);
  if (values.byteOffset % 4 === 0) return new Int32Array(values.buffer, values.byteOffset, 2 * rows);
  const copy = new Uint8Array(8 * rows);
  copy.set(new Uint8Array(values.buffer, values.byteOffset, 8 * rows));
  return new Int32Array(copy.buffer);
}

function checkOffsets(offsets: Int32Array, count: number, bytes: number, column: string): void {
  if (offsets.length < count + 1) throw columnError(column, `offsets buffer has ${offsets.length} entries for ${count} strings`);
  if (offsets[0]! < 0) throw columnError(column, `string offsets start at ${offsets[0]}`);
  for (let i = 0; i < count; i++) if (offsets[i + 1]! < offsets[i]!) throw columnError(column, `string offsets decrease at string ${i}`);
  if (offsets[count]! > bytes) throw columnError(column, `string offsets reach byte ${offsets[count]} of a ${bytes}-byte data buffer`);
}

/** Utf8, LargeUtf8 or Utf8View data as Utf8 layout. */
function utf8Strings(data: Data, column: string): Utf8Strings {
  const count = data.length;
  const valid = validity(data, count, column);
  const values = data.values as Uint8Array;
  if (data.typeId === Type.Utf8) {
    const offsets = data.valueOffsets as Int32Array;
    checkOffsets(offsets, count, values.length, column);
    return { data: values, offsets, count, valid };
  }
  if (data.typeId === Type.LargeUtf8) {
    const w = words(data.valueOffsets as ArrayBufferView, count + 1, column);
    const offsets = new Int32Array(count + 1);
    for (let i = 0; i <= count; i++) {
      // a body is at most maxBodyBytes (≤ 1 GiB): a high word or a negative low word is garbage
      if (w[2 * i + 1] !== 0 || w[2 * i]! < 0) throw columnError(column, `LargeUtf8 offset of string ${i} is beyond the body`);
      offsets[i] = w[2 * i]!;
    }
    checkOffsets(offsets, count, values.length, column);
    return { data: values, offsets, count, valid };
  }
  return utf8ViewStrings(data, count, valid, column);
}

/** Utf8View (16-byte views: length, then 12 inline bytes or prefix, buffer index, offset) copied into Utf8 layout. */
function utf8ViewStrings(data: Data, count: number, valid: Uint8Array | null, column: string): Utf8Strings {
  const views = data.values as Uint8Array;
  if (views.length < 16 * count) throw columnError(column, `views buffer has ${views.length} bytes for ${count} strings`);
  const dv = new DataView(views.buffer, views.byteOffset, views.byteLength);
  const buffers = data.variadicBuffers;
  const offsets = new Int32Array(count + 1);
  let total = 0;
  for (let i = 0; i < count; i++) {
    if (valid === null || (valid[i >> 3]! >> (i & 7)) & 1) {
      const len = dv.getInt32(16 * i, true);
      if (len < 0) throw columnError(column, `view of string ${i} has length ${len}`);
      if (len > 12) {
        const buf = buffers[dv.getInt32(16 * i + 8, true)];
        const off = dv.getInt32(16 * i + 12, true);
        if (!buf || off < 0 || off + len > buf.length) throw columnError(column, `view of string ${i} points outside its data buffers`);
      }
      total += len;
    }
    offsets[i + 1] = total;
  }
  const out = new Uint8Array(total);
  for (let i = 0; i < count; i++) {
    const len = offsets[i + 1]! - offsets[i]!;
    if (len === 0) continue;
    const src = len <= 12 ? views.subarray(16 * i + 4, 16 * i + 4 + len) : buffers[dv.getInt32(16 * i + 8, true)]!.subarray(dv.getInt32(16 * i + 12, true), dv.getInt32(16 * i + 12, true) + len);
    out.set(src, offsets[i]!);
  }
  return { data: out, offsets, count, valid };
}

/** Dictionary chunks (one per delta) joined into one list of distinct strings. */
function joinEntries(parts: Utf8Strings[]): Utf8Strings {
  if (parts.length === 1) return parts[0]!;
  const count = parts.reduce((n, p) => n + p.count, 0);
  const bytes = parts.reduce((n, p) => n + p.offsets[p.count]! - p.offsets[0]!, 0);
  const data = new Uint8Array(bytes);
  const offsets = new Int32Array(count + 1);
  const anyNull = parts.some((p) => p.valid !== null);
  const valid = anyNull ? new Uint8Array((count + 7) >> 3) : null;
  let i = 0;
  let at = 0;
  for (const p of parts) {
    for (let k = 0; k < p.count; k++, i++) {
      const s = p.offsets[k]!;
      const e = p.offsets[k + 1]!;
      data.set(p.data.subarray(s, e), at);
      at += e - s;
      offsets[i + 1] = at;
      if (valid && (p.valid === null || (p.valid[k >> 3]! >> (k & 7)) & 1)) valid[i >> 3]! |= 1 << (i & 7);
    }
  }
  return { data, offsets, count, valid };
}

function stringColumn(data: Data, column: string): StringColumn {
  if (data.typeId !== Type.Dictionary) return { kind: 'plain', strings: utf8Strings(data, column) };
  const rows = data.length;
  const dictionary = data.dictionary;
  if (!dictionary) throw columnError(column, 'dictionary-encoded, but the stream carries no dictionary for it');
  const entries = joinEntries(dictionary.data.map((d) => utf8Strings(d, `${column} (dictionary)`)));
  const valid = validity(data, rows, column);
  const raw = data.values as ArrayBufferView & ArrayLike<number | bigint>;
  if (raw.byteLength < rows * (raw as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT) throw columnError(column, `indices buffer is too short for ${rows} rows`);
  const codes = new Int32Array(rows);
  const wide = raw instanceof BigInt64Array || raw instanceof BigUint64Array;
  const w = wide ? words(raw, rows, column) : null;
  for (let i = 0; i < rows; i++) {
    if (valid !== null && !((valid[i >> 3]! >> (i & 7)) & 1)) continue;
    const code = w ? (w[2 * i + 1] === 0 ? w[2 * i]! : -1) : (raw[i] as number);
    if (!(code >= 0 && code < entries.count)) throw columnError(column, `row ${i} has dictionary index ${wide ? String(raw[i]) : code}, outside the dictionary's ${entries.count} entries`);
    codes[i] = code;
  }
  return { kind: 'dict', entries, codes, valid };
}

function valueColumn(data: Data, rows: number): ArrowChunk['value'] {
  const valid = validity(data, rows, 'value');
  if (data.typeId === Type.Null) return { values: new Float64Array(rows), valid };
  const raw = data.values as ArrayBufferView & ArrayLike<number | bigint>;
  const per = (raw as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  if (raw.byteLength < rows * per) throw columnError('value', `data buffer has ${raw.byteLength} bytes for ${rows} values`);
  if (raw instanceof Float64Array) return { values: raw.length === rows ? raw : raw.subarray(0, rows), valid };
  if (raw instanceof BigInt64Array || raw instanceof BigUint64Array) {
    const w = words(raw, rows, 'value');
    const out = new Float64Array(rows);
    const signed = raw instanceof BigInt64Array;
    for (let i = 0; i < rows; i++) out[i] = (signed ? w[2 * i + 1]! : w[2 * i + 1]! >>> 0) * 4294967296 + (w[2 * i]! >>> 0);
    return { values: out, valid };
  }
  const out = new Float64Array(rows);
  out.set((raw as Float32Array).subarray(0, rows));
  return { values: out, valid };
}

function readChunk(children: readonly Data[], at: Map<string, number>, rows: number, first: number): ArrowChunk {
  const col = (name: string) => {
    const i = at.get(name);
    if (i === undefined) return null;
    const d = children[i]!;
    if (d.length !== rows) throw columnError(name, `has ${d.length} rows in a record batch of ${rows}`);
    if (d.offset !== 0) throw new Error(`read-arrow: column ${name} has a non-zero offset (${d.offset}); IPC never makes one`);
    return d;
  };
  const ts = col('timestamp')!;
  const type = ts.type as DataType & { unit?: number };
  const unit = ts.typeId === Type.Timestamp ? TIMESTAMP_UNITS[type.unit!]! : 'ms';
  const value = col('value');
  const metadata = col('metadata');
  return {
    first,
    rows,
    timestamp: { words: words(ts.values as ArrayBufferView, rows, 'timestamp'), unit, valid: validity(ts, rows, 'timestamp') },
    eventType: stringColumn(col('event_type')!, 'event_type'),
    userId: stringColumn(col('user_id')!, 'user_id'),
    value: value ? valueColumn(value, rows) : null,
    metadata: metadata === null ? null : metadata.typeId === Type.Null ? null : stringColumn(metadata, 'metadata'),
  };
}

/**
 * Reads every record batch of the stream. Throws a 400 naming the column for a schema or
 * buffer problem, and a 400 for a body that is not a readable uncompressed Arrow IPC stream.
 */
export function readArrowStream(body: Uint8Array): { chunks: ArrowChunk[]; rows: number } {
  let reader: RecordBatchReader;
  try {
    reader = RecordBatchReader.from(body);
    reader.open();
  } catch (err) {
    throw unreadable(err);
  }
  if (!reader.schema) throw badRequest('body is not an Arrow IPC stream: no schema message', [{ field: '(body)', reason: 'expected an Arrow IPC stream' }]);
  const at = columnsOf(reader.schema.fields);
  const chunks: ArrowChunk[] = [];
  let rows = 0;
  try {
    for (const batch of reader) {
      if (batch.numRows === 0) continue;
      chunks.push(readChunk(batch.data.children, at, batch.numRows, rows));
      rows += batch.numRows;
    }
  } catch (err) {
    if ((err as { status?: number }).status === 400) throw err;
    throw unreadable(err);
  }
  return { chunks, rows };
}

function unreadable(err: unknown): Error {
  const detail = (err as Error)?.message ?? String(err);
  const reason = /compress/i.test(detail) ? 'compressed record batches are not supported; send the stream uncompressed' : `not a readable Arrow IPC stream (${detail.slice(0, 160)})`;
  return badRequest(`body is ${reason}`, [{ field: '(body)', reason }]);
}
