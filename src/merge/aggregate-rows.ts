/**
 * Merge of finished aggregate rows: the partials of an aggregate grouped by `user_id`, whose groups
 * live on one shard each (routing is by user), so nothing is combined. Each shard answers its rows
 * already finished, as JSON text, sorted by the group keys (python/engine_polars/answer_rows.py);
 * this merge interleaves the shards' rows in key order and copies their texts into the answer's
 * `results` array without decoding them.
 *
 * Order: keys in `groupBy` order, strings by code point (compared as UTF-8 bytes, which is also
 * how polars sorts them), `window_start` by number, null last.
 */
import { Type, tableFromIPC, type Data } from 'apache-arrow';
import { offsetWords } from './decode-partial.js';
import { defineMerge } from './merge-def.js';

export interface AggregateRowsSpec {
  groupBy: string[];
}

const utf8 = new TextDecoder();
const encoder = new TextEncoder();
const COMMA = 0x2c;

/** A string column's bytes and offsets (32-bit words, `step` apart: LargeUtf8 offsets are read by their low word). */
class Strings {
  readonly words: Int32Array;
  readonly step: number;
  readonly bytes: Uint8Array;

  constructor(data: Data, what: string) {
    const o = offsetWords(data);
    if (!o) throw new Error(`aggregate rows: column \`${what}\` holds 2 GiB or more`);
    this.words = o.words;
    this.step = o.step;
    this.bytes = data.values as Uint8Array;
  }

  start(i: number): number {
    return this.words[i * this.step]!;
  }
}

const NO_NUMBERS = new Float64Array(0);
const NO_STRINGS = null;

/** A key column of one batch (one shape for every key, so comparisons stay monomorphic). */
class KeyColumn {
  readonly offset: number;
  /** Validity bitmap; null when the column has no nulls. */
  readonly valid: Uint8Array | null;
  readonly strings: Strings | null;
  /** Int64 keys (`window_start`) as numbers, by row. */
  readonly numbers: Float64Array;

  constructor(data: Data, name: string, shard: number) {
    this.offset = data.offset;
    this.valid = validityOf(data);
    if (data.typeId === Type.Utf8 || data.typeId === Type.LargeUtf8) {
      this.strings = new Strings(data, name);
      this.numbers = NO_NUMBERS;
      return;
    }
    if (data.typeId !== Type.Int) throw new Error(`aggregate rows partial of shard ${shard}: expected key \`${name}\` as strings or Int64, got ${String(data.type)}`);
    const values = data.values as BigInt64Array | Int32Array;
    this.strings = NO_STRINGS;
    this.numbers = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) this.numbers[i] = Number(values[data.offset + i]!);
  }
}

function validityOf(data: Data): Uint8Array | null {
  return data.nullCount === 0 || !data.nullBitmap || data.nullBitmap.length === 0 ? null : data.nullBitmap;
}

function isSet(bits: Uint8Array | null, bit: number): boolean {
  return bits === null || (bits[bit >> 3]! & (1 << (bit & 7))) !== 0;
}

/** One record batch of one shard's partial: rows sorted by the keys. */
class Run {
  i = 0;
  readonly n: number;
  readonly keys: KeyColumn[];
  private readonly rowOffset: number;
  private readonly rows: Strings;
  /** Re-serialized texts of the rows flagged `__reparse`, by row. */
  readonly rewritten = new Map<number, Uint8Array>();

  constructor(columns: Map<string, Data>, keyNames: string[], readonly shard: number) {
    const need = (name: string) => {
      const d = columns.get(name);
      if (!d) throw new Error(`aggregate rows partial of shard ${shard} is missing column \`${name}\`; has ${[...columns.keys()].join(', ')}`);
      return d;
    };
    const rowData = need('__row');
    this.n = rowData.length;
    this.rowOffset = rowData.offset;
    this.rows = new Strings(rowData, '__row');
    this.keys = keyNames.map((name) => new KeyColumn(need(name), name, shard));
    const reparse = need('__reparse');
    const bits = reparse.values as Uint8Array;
    const valid = validityOf(reparse);
    for (let i = 0; i < this.n; i++) {
      const bit = reparse.offset + i;
      if (isSet(valid, bit) && isSet(bits, bit)) {
        // polars wrote a number JavaScript writes differently (e.g. 1e+16, -0.0): same value, JS's text.
        this.rewritten.set(i, encoder.encode(JSON.stringify(JSON.parse(utf8.decode(this.rowBytes(i))))));
      }
    }
  }

  rowBytes(i: number): Uint8Array {
    return this.rows.bytes.subarray(this.rows.start(this.rowOffset + i), this.rows.start(this.rowOffset + i + 1));
  }

  /** Bytes the rows' texts add to the answer. */
  textBytes(): number {
    let n = this.rows.start(this.rowOffset + this.n) - this.rows.start(this.rowOffset);
    for (const [i, text] of this.rewritten) n += text.length - this.rowBytes(i).length;
    return n;
  }
}

function compareStrings(a: Strings, ai: number, b: Strings, bi: number): number {
  let x = a.start(ai);
  const xe = a.start(ai + 1);
  let y = b.start(bi);
  const ye = b.start(bi + 1);
  const ab = a.bytes;
  const bb = b.bytes;
  for (; x < xe && y < ye; x++, y++) {
    const d = ab[x]! - bb[y]!;
    if (d !== 0) return d;
  }
  return xe - x - (ye - y);
}

/** Row `i` of run `a` against row `j` of run `b`: negative when it comes first. */
function compareRows(a: Run, i: number, b: Run, j: number): number {
  const keys = a.keys.length;
  for (let k = 0; k < keys; k++) {
    const ka = a.keys[k]!;
    const kb = b.keys[k]!;
    const va = isSet(ka.valid, ka.offset + i);
    const vb = isSet(kb.valid, kb.offset + j);
    if (!va || !vb) {
      if (va !== vb) return va ? -1 : 1;
      continue;
    }
    const c = ka.strings !== null && kb.strings !== null ? compareStrings(ka.strings, ka.offset + i, kb.strings, kb.offset + j) : ka.numbers[i]! - kb.numbers[j]!;
    if (c !== 0) return c;
  }
  return 0;
}

function runsOf(ipc: Uint8Array, keyNames: string[], shard: number): Run[] {
  const table = tableFromIPC(ipc);
  return table.batches.map((batch) => new Run(new Map(table.schema.fields.map((f, c) => [f.name, batch.data.children[c]!])), keyNames, shard));
}

/**
 * The `results` array's UTF-8 JSON: every shard's rows, in key order. Pure.
 * @throws Error when a shard's rows are not in key order (a bug: the shards sort them).
 */
export function mergeAggregateRows(spec: AggregateRowsSpec, partials: Uint8Array[]): Uint8Array {
  const keyNames = spec.groupBy.map((k) => (k === 'window' ? 'window_start' : k));
  const runs = partials.flatMap((ipc, shard) => runsOf(ipc, keyNames, shard)).filter((r) => r.n > 0);
  let total = 2;
  let rows = 0;
  for (const r of runs) {
    total += r.textBytes();
    rows += r.n;
  }
  total += Math.max(0, rows - 1);
  // Every byte is written below (checked at the end); a zero-filled buffer of tens of MB
  // costs a page fault per 4 KiB, which the allocator's reused memory does not. Slow: never a
  // slice of Buffer's shared pool (small answers), whose ArrayBuffer cannot be transferred
  // (merge-task.ts moves these bytes to the main thread).
  const out = Buffer.allocUnsafeSlow(total);
  out[0] = 0x5b;
  let at = 1;
  const live = [...runs];
  while (live.length > 0) {
    let best = 0;
    for (let h = 1; h < live.length; h++) if (compareRows(live[h]!, live[h]!.i, live[best]!, live[best]!.i) < 0) best = h;
    const r = live[best]!;
    if (at > 1) out[at++] = COMMA;
    const text = (r.rewritten.size > 0 && r.rewritten.get(r.i)) || r.rowBytes(r.i);
    out.set(text, at);
    at += text.length;
    r.i++;
    if (r.i === r.n) live.splice(best, 1);
    else if (compareRows(r, r.i - 1, r, r.i) > 0) throw new Error(`aggregate rows of shard ${r.shard} are not in key order at row ${r.i}`);
  }
  out[at++] = 0x5d;
  if (at !== total) throw new Error(`aggregate rows: wrote ${at} bytes, expected ${total}`);
  return out;
}

/** Every shard's finished rows → `{rows}`: the `results` array as UTF-8 JSON (see merge-task.ts). */
export function mergeAggregateRowsTask(spec: AggregateRowsSpec, partials: Uint8Array[]): { rows: Uint8Array } {
  return { rows: mergeAggregateRows(spec, partials) };
}

export default defineMerge('aggregate-rows', mergeAggregateRowsTask);
