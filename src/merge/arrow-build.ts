/**
 * Arrow vectors built straight from JS values, for the few places that send Arrow to the shards
 * (anomaly group moments, enrichment rows), and string columns re-laid for the Arrow export. Pure.
 */
import { Float64, Utf8, makeData, makeVector, type Data, type LargeUtf8, type Vector } from 'apache-arrow';

const encoder = new TextEncoder();

/**
 * A Utf8 vector built straight from the strings (offsets + one UTF-8 buffer + validity bits):
 * apache-arrow's generic `vectorFromArray` builder costs ~10 µs a string, a second per 100k rows.
 */
export function utf8Vector(values: ReadonlyArray<string | null>): Vector {
  const n = values.length;
  const offsets = new Int32Array(n + 1);
  const validity = new Uint8Array((n + 7) >> 3);
  let bytes = 0;
  for (let i = 0; i < n; i++) bytes += values[i] === null ? 0 : values[i]!.length * 3;
  const data = new Uint8Array(bytes);
  let at = 0;
  let nulls = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) nulls++;
    else {
      validity[i >> 3]! |= 1 << (i & 7);
      let ascii = true;
      for (let j = 0; j < v.length; j++) {
        const code = v.charCodeAt(j);
        if (code >= 0x80) {
          ascii = false;
          break;
        }
        data[at + j] = code;
      }
      at += ascii ? v.length : encoder.encodeInto(v, data.subarray(at)).written;
    }
    offsets[i + 1] = at;
  }
  return makeVector(makeData({ type: new Utf8(), length: n, nullCount: nulls, nullBitmap: nulls > 0 ? validity : null, valueOffsets: offsets, data: data.subarray(0, at) }));
}

/** A Float64 vector without nulls over the values (no copy when given a Float64Array). */
export function float64Vector(values: Float64Array | readonly number[]): Vector {
  const data = values instanceof Float64Array ? values : Float64Array.from(values);
  return makeVector(makeData({ type: new Float64(), length: data.length, nullCount: 0, data }));
}

/**
 * A `LargeUtf8` column as `Utf8`: the same validity bits and string bytes (not copied) behind
 * 32-bit offsets. Throws when the strings pass 2 GiB, which 32-bit offsets cannot address.
 */
export function utf8DataFromLarge(data: Data<LargeUtf8>): Data<Utf8> {
  const large = data.valueOffsets as unknown as BigInt64Array;
  const end = data.offset + data.length;
  const last = large[end] ?? 0n;
  if (last > 0x7fffffffn) throw new Error(`string column: expected at most 2147483647 bytes for Utf8 offsets, got ${last}`);
  const offsets = new Int32Array(end + 1);
  for (let i = 0; i <= end; i++) offsets[i] = Number(large[i]!);
  return makeData({
    type: new Utf8(),
    offset: data.offset,
    length: data.length,
    nullCount: data.nullCount,
    nullBitmap: data.nullBitmap ?? null,
    valueOffsets: offsets,
    data: data.values,
  });
}
