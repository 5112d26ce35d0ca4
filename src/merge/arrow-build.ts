/**
 * Arrow vectors built straight from JS values, for the few places that send Arrow to the shards
 * (anomaly group moments, enrichment rows). Pure.
 */
import { Float64, Utf8, makeData, makeVector, type Vector } from 'apache-arrow';

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
