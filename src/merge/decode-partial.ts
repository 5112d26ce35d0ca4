/**
 * Arrow IPC partial → plain column arrays. Int64 columns become numbers (counts stay far below
 * 2^53), nulls become null. Used by every merge; pure apart from decoding.
 *
 * Decoding reads the Arrow buffers directly instead of calling `vector.get(i)` per cell, which
 * dominated by-user aggregates (tens of thousands of groups per shard): numbers come from the
 * typed arrays, and a string column whose bytes are all ASCII is decoded once and sliced.
 */
import { Type, tableFromIPC, type Data, type Table, type Vector } from 'apache-arrow';

export type Column = Array<number | string | null>;

export interface DecodedPartial {
  rows: number;
  columns: Map<string, Column>;
}

const utf8 = new TextDecoder();

/** Whether row `i` of `data` (relative to its offset) is not null. */
function isValid(data: Data, i: number): boolean {
  if (data.nullCount === 0 || !data.nullBitmap || data.nullBitmap.length === 0) return true;
  const bit = data.offset + i;
  return (data.nullBitmap[bit >> 3]! & (1 << (bit & 7))) !== 0;
}

/**
 * A string column's offsets as 32-bit words and the step between them. polars writes `LargeUtf8`
 * (64-bit offsets); reading those as BigInts costs an allocation per cell (twice the decode time
 * of a 100,000-key partial), so while they stay below 2^31 (a partial's strings are far below
 * 2 GiB) the low word of each little-endian Int64 is read instead. Null when they do not fit.
 */
export function offsetWords(data: Data): { words: Int32Array; step: 1 | 2 } | null {
  const offsets = data.valueOffsets as Int32Array | BigInt64Array;
  if (offsets instanceof Int32Array) return { words: offsets, step: 1 };
  if (offsets[data.offset + data.length]! >= 2n ** 31n) return null;
  return { words: new Int32Array(offsets.buffer, offsets.byteOffset, offsets.length * 2), step: 2 };
}

function decodeStrings(data: Data, out: Column, at: number): boolean {
  const o = offsetWords(data);
  if (!o) return false;
  const { words, step } = o;
  const bytes = data.values as Uint8Array;
  const n = data.length;
  const first = words[data.offset * step]!;
  const last = words[(data.offset + n) * step]!;
  const slab = bytes.subarray(first, last);
  const text = utf8.decode(slab);
  // One UTF-16 unit per byte means every byte was ASCII: byte offsets are string offsets.
  const ascii = text.length === slab.length;
  for (let i = 0; i < n; i++) {
    if (!isValid(data, i)) {
      out[at + i] = null;
      continue;
    }
    const s = words[(data.offset + i) * step]! - first;
    const e = words[(data.offset + i + 1) * step]! - first;
    out[at + i] = ascii ? text.slice(s, e) : utf8.decode(slab.subarray(s, e));
  }
  return true;
}

function decodeNumbers(data: Data, out: Column, at: number): void {
  const values = data.values as Float64Array | Int32Array | BigInt64Array | Float32Array;
  const big = values instanceof BigInt64Array;
  for (let i = 0; i < data.length; i++) {
    if (!isValid(data, i)) out[at + i] = null;
    else out[at + i] = big ? Number(values[data.offset + i]) : (values[data.offset + i] as number);
  }
}

/** Anything else (bools, timestamps, views): the generic accessor. */
function decodeGeneric(vector: Vector, length: number, out: Column, at: number): void {
  for (let i = 0; i < length; i++) {
    const v = vector.get(at + i) as unknown;
    out[at + i] = v === null || v === undefined ? null : typeof v === 'bigint' ? Number(v) : (v as number | string);
  }
}

function decodeVector(vector: Vector, rows: number): Column {
  const out: Column = new Array(rows);
  let at = 0;
  for (const data of vector.data) {
    switch (data.typeId) {
      case Type.Utf8:
      case Type.LargeUtf8:
        if (!decodeStrings(data, out, at)) decodeGeneric(vector, data.length, out, at);
        break;
      case Type.Float:
      case Type.Int:
        decodeNumbers(data, out, at);
        break;
      default:
        decodeGeneric(vector, data.length, out, at);
    }
    at += data.length;
  }
  return out;
}

export function decodePartial(ipc: Uint8Array): DecodedPartial {
  const table: Table = tableFromIPC(ipc);
  const columns = new Map<string, Column>();
  for (const field of table.schema.fields) columns.set(field.name, decodeVector(table.getChild(field.name)!, table.numRows));
  return { rows: table.numRows, columns };
}

/**
 * For merges that read a few columns of large partials: one column of an IPC table, decoded as
 * decodePartial decodes it (`tableFromIPC` once, then this per column).
 */
export function tableColumn(table: Table, name: string): Column {
  return decodeVector(requireChild(table, name), table.numRows);
}

/**
 * A numeric column (Int64, Float64, …) as doubles, a null as NaN: no boxed number per cell, which
 * for partials of tens of thousands of rows is most of what decoding costs.
 */
export function floatColumn(table: Table, name: string): Float64Array {
  const vector = requireChild(table, name);
  const out = new Float64Array(table.numRows);
  let at = 0;
  for (const data of vector.data) {
    if (data.typeId !== Type.Float && data.typeId !== Type.Int) throw new Error(`partial column \`${name}\` is not numeric`);
    const values = data.values as Float64Array | Int32Array | BigInt64Array | Float32Array;
    const big = values instanceof BigInt64Array;
    for (let i = 0; i < data.length; i++) {
      out[at + i] = !isValid(data, i) ? NaN : big ? Number(values[data.offset + i]) : (values[data.offset + i] as number);
    }
    at += data.length;
  }
  return out;
}

function requireChild(table: Table, name: string): Vector {
  const v = table.getChild(name);
  if (!v) throw new Error(`partial is missing column \`${name}\`; has ${table.schema.fields.map((f) => f.name).join(', ')}`);
  return v;
}

/** A column that must exist, with a message naming it. */
export function requireColumn(p: DecodedPartial, name: string): Column {
  const c = p.columns.get(name);
  if (!c) throw new Error(`partial is missing column \`${name}\`; has ${[...p.columns.keys()].join(', ')}`);
  return c;
}
