/**
 * Merge of finished aggregate rows: the partials of an aggregate grouped by `user_id`, whose groups
 * live on one shard each (routing is by user), so nothing is combined. Each shard answers its rows
 * already finished, as JSON text, sorted by the group keys (python/engine_polars/answer_rows.py);
 * this merge interleaves the shards' rows in key order and copies their texts into the answer's
 * `results` array without decoding them.
 *
 * Order: keys in `groupBy` order, strings by code point (compared as UTF-8 bytes, which is also
 * how polars sorts them), `window_start` by number, null last.
 *
 * A shard's partial is a rows partial (python/engine_polars/_utils/ipc.py): `u32 LE ipc_len`,
 * `u32 LE 0`, an Arrow IPC stream of the keys, `__len` (UInt32: each row text's UTF-8 length)
 * and `__reparse`, then the texts' bytes back to back (0-7 bytes of padding after them), so the
 * hundreds of MB of text never go through an Arrow writer or reader.
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

/** A string key column's bytes and its rows' offsets into them (`starts[i]` to `starts[i + 1]`, by row of the batch). */
export class Strings {
  readonly starts: Int32Array;
  readonly bytes: Uint8Array;

  constructor(data: Data, what: string) {
    const o = offsetWords(data);
    if (!o) throw new Error(`aggregate rows: column \`${what}\` holds 2 GiB or more`);
    // LargeUtf8 offsets are read by their low word; copied once into one word per row, so the
    // comparisons below index them directly.
    const { words, step } = o;
    this.starts = new Int32Array(data.length + 1);
    for (let i = 0, w = data.offset * step; i <= data.length; i++, w += step) this.starts[i] = words[w]!;
    this.bytes = data.values as Uint8Array;
  }
}

/** The bytes of a string key a head holds (6 bytes, 48 bits, stay exact in a double). */
const HEAD_BYTES = 6;

/**
 * A key column of one batch (one shape for every key, so comparisons stay monomorphic). Each row
 * has a head, a number that orders the rows as the key does as far as it goes: an Int64 key
 * (`window_start`) itself, a string the 6 bytes after the prefix every row of the key shares (see
 * `setHeads`) as a big-endian number, 0 past the end. Most comparisons end at the heads (user ids
 * differ within their first bytes after a shared `user-`); equal heads compare the bytes after
 * them, then the lengths (a string shorter than its head equals its NUL-padded extension up to
 * there, and comes first: it is a prefix of it). (Also the Arrow answer's merge, aggregate-arrow.ts.)
 */
export class KeyColumn {
  /** The batch's first row's bit in `valid`. */
  readonly offset: number;
  /** Validity bitmap; null when the column has no nulls. */
  readonly valid: Uint8Array | null;
  /** For a string key: its bytes; null for an Int64 key. */
  readonly strings: Strings | null;
  heads: Float64Array;
  /** For a string key: where the bytes after the head begin in each string. */
  tail = 0;

  constructor(data: Data, name: string, shard: number) {
    this.offset = data.offset;
    this.valid = validityOf(data);
    if (data.typeId === Type.Utf8 || data.typeId === Type.LargeUtf8) {
      this.strings = new Strings(data, name);
      this.heads = new Float64Array(data.length);
      return;
    }
    if (data.typeId !== Type.Int) throw new Error(`aggregate rows partial of shard ${shard}: expected key \`${name}\` as strings or Int64, got ${String(data.type)}`);
    const values = data.values as BigInt64Array | Int32Array;
    this.strings = null;
    this.heads = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) this.heads[i] = Number(values[data.offset + i]!);
  }

  /** How many bytes every non-null string of this batch begins with that `first` (a row) also has, at most `max`. */
  sharedPrefix(first: { bytes: Uint8Array; start: number; end: number }, max: number): number {
    const s = this.strings!;
    let shared = Math.min(max, first.end - first.start);
    for (let i = 0; i < s.starts.length - 1 && shared > 0; i++) {
      if (!isSet(this.valid, this.offset + i)) continue;
      const at = s.starts[i]!;
      const n = Math.min(shared, s.starts[i + 1]! - at);
      let k = 0;
      while (k < n && s.bytes[at + k] === first.bytes[first.start + k]) k++;
      shared = k;
    }
    return shared;
  }

  /** The heads of the strings, past the `skip` bytes every row shares. */
  setHeads(skip: number): void {
    const { starts, bytes } = this.strings!;
    this.tail = skip + HEAD_BYTES;
    // two big-endian reads where the string holds all 6 bytes (1.36 M user ids: ~45 -> ~15 ms)
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < this.heads.length; i++) {
      const at = starts[i]! + skip;
      const end = starts[i + 1]!;
      if (end - at >= HEAD_BYTES) {
        this.heads[i] = view.getUint32(at) * 65536 + view.getUint16(at + 4);
        continue;
      }
      let h = 0;
      for (let k = 0; k < HEAD_BYTES; k++) h = h * 256 + (at + k < end ? bytes[at + k]! : 0);
      this.heads[i] = h;
    }
  }
}

export function validityOf(data: Data): Uint8Array | null {
  return data.nullCount === 0 || !data.nullBitmap || data.nullBitmap.length === 0 ? null : data.nullBitmap;
}

export function isSet(bits: Uint8Array | null, bit: number): boolean {
  return bits === null || (bits[bit >> 3]! & (1 << (bit & 7))) !== 0;
}

/** One record batch of one shard's partial: rows sorted by the keys, their texts in `text`. */
class Run {
  i = 0;
  readonly n: number;
  readonly keys: KeyColumn[];
  /** Row `i`'s text is `text[starts[i]]` to `text[starts[i + 1]]`. */
  readonly starts: Int32Array;
  /** Re-serialized texts of the rows flagged `__reparse`, by row; null when there are none. */
  readonly rewritten: Map<number, Uint8Array> | null;

  /** `text` holds the partial's texts; this batch's begin at byte `at` of it. */
  constructor(columns: Map<string, Data>, keyNames: string[], readonly shard: number, readonly text: Uint8Array, at: number) {
    const need = (name: string) => {
      const d = columns.get(name);
      if (!d) throw new Error(`aggregate rows partial of shard ${shard} is missing column \`${name}\`; has ${[...columns.keys()].join(', ')}`);
      return d;
    };
    const lengths = need('__len');
    if (lengths.typeId !== Type.Int || lengths.nullCount > 0) throw new Error(`aggregate rows partial of shard ${shard}: expected \`__len\` as UInt32 without nulls, got ${String(lengths.type)}`);
    this.n = lengths.length;
    const lens = lengths.values as Uint32Array;
    this.starts = new Int32Array(this.n + 1);
    let end = at;
    for (let i = 0; i < this.n; i++) {
      this.starts[i] = end;
      end += lens[lengths.offset + i]!;
    }
    this.starts[this.n] = end;
    if (end > text.length) throw new Error(`aggregate rows partial of shard ${shard}: \`__len\` adds up to ${end} bytes of text, has ${text.length}`);
    this.keys = keyNames.map((name) => new KeyColumn(need(name), name, shard));
    const reparse = need('__reparse');
    const bits = reparse.values as Uint8Array;
    const valid = validityOf(reparse);
    let rewritten: Map<number, Uint8Array> | null = null;
    for (let i = 0; i < this.n; i++) {
      const bit = reparse.offset + i;
      if (bits[bit >> 3] !== 0 && isSet(valid, bit) && isSet(bits, bit)) {
        // polars wrote a number JavaScript writes differently (e.g. 1e+16, -0.0): same value, JS's text.
        rewritten ??= new Map();
        rewritten.set(i, encoder.encode(JSON.stringify(JSON.parse(utf8.decode(this.rowBytes(i))))));
      }
    }
    this.rewritten = rewritten;
  }

  rowBytes(i: number): Uint8Array {
    return this.text.subarray(this.starts[i]!, this.starts[i + 1]!);
  }

  /** Bytes the rows' texts add to the answer. */
  textBytes(): number {
    let n = this.starts[this.n]! - this.starts[0]!;
    if (this.rewritten) for (const [i, text] of this.rewritten) n += text.length - (this.starts[i + 1]! - this.starts[i]!);
    return n;
  }
}

/** Strings `ai` of `a` and `bi` of `b`, whose heads are equal, by their bytes from `from` on. */
function compareTails(a: Strings, ai: number, b: Strings, bi: number, from: number): number {
  let x = a.starts[ai]! + from;
  const xe = a.starts[ai + 1]!;
  let y = b.starts[bi]! + from;
  const ye = b.starts[bi + 1]!;
  // Equal heads: both strings end inside them (same length: 0 below), or both go on past them.
  const ab = a.bytes;
  const bb = b.bytes;
  for (; x < xe && y < ye; x++, y++) {
    const d = ab[x]! - bb[y]!;
    if (d !== 0) return d;
  }
  return xe - x - (ye - y);
}

/** Sorted rows with key columns: a batch of one shard's partial. */
export interface Keyed {
  readonly keys: KeyColumn[];
}

/** Row `i` of run `a` against row `j` of run `b`: negative when it comes first. */
export function compareRows(a: Keyed, i: number, b: Keyed, j: number): number {
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
    const ha = ka.heads[i]!;
    const hb = kb.heads[j]!;
    if (ha !== hb) return ha < hb ? -1 : 1;
    if (ka.strings !== null && kb.strings !== null) {
      const c = compareTails(ka.strings, i, kb.strings, j, ka.tail);
      if (c !== 0) return c;
    }
  }
  return 0;
}

/**
 * Sets every string key's heads, past the prefix that all rows of all runs share for that key
 * (`user-` for the bench's user ids), so that heads of different keys differ.
 */
export function setHeads(runs: readonly Keyed[], keys: number): void {
  for (let k = 0; k < keys; k++) {
    const columns = runs.map((r) => r.keys[k]!).filter((c) => c.strings !== null);
    let first: { bytes: Uint8Array; start: number; end: number } | null = null;
    for (const c of columns) {
      const s = c.strings!;
      for (let i = 0; i < s.starts.length - 1 && first === null; i++) if (isSet(c.valid, c.offset + i)) first = { bytes: s.bytes, start: s.starts[i]!, end: s.starts[i + 1]! };
    }
    let shared = first === null ? 0 : 64;
    for (const c of columns) if (first !== null) shared = c.sharedPrefix(first, shared);
    for (const c of columns) c.setHeads(shared);
  }
}

/** Answers of this many bytes or more are filled before they are written (see mergeAggregateRows). */
const PREFAULT_BYTES = 1 << 24;

/** The 8-byte prefix of a rows partial: the length of the IPC stream after it. */
const PREFIX = 8;

function runsOf(partial: Uint8Array, keyNames: string[], shard: number): Run[] {
  const view = new DataView(partial.buffer, partial.byteOffset, partial.byteLength);
  const ipcBytes = partial.byteLength >= PREFIX ? view.getUint32(0, true) : -1;
  if (ipcBytes < 0 || view.getUint32(4, true) !== 0 || PREFIX + ipcBytes > partial.byteLength) {
    throw new Error(`aggregate rows partial of shard ${shard}: expected an 8-byte prefix (the IPC stream's length, 0) then that many bytes, in ${partial.byteLength} bytes`);
  }
  const table = tableFromIPC(partial.subarray(PREFIX, PREFIX + ipcBytes));
  const text = partial.subarray(PREFIX + ipcBytes);
  let at = 0;
  const runs = table.batches.map((batch) => {
    const run = new Run(new Map(table.schema.fields.map((f, c) => [f.name, batch.data.children[c]!])), keyNames, shard, text, at);
    at = run.starts[run.n]!;
    return run;
  });
  // polars pads the texts to a multiple of 8 bytes
  if (text.length - at >= 8 || text.length - at < 0) throw new Error(`aggregate rows partial of shard ${shard}: \`__len\` adds up to ${at} bytes of text, has ${text.length}`);
  return runs;
}

/**
 * The `results` array's UTF-8 JSON (every shard's rows, in key order), written piece by piece
 * into the buffers `fill` is given: an answer of hundreds of MB is sent while it is merged (as the
 * client takes it) instead of after. `bytes` is its whole length, known before the first byte.
 * Rows may be cut between two fills.
 */
export class RowsMerge {
  readonly bytes: number;
  private readonly live: Run[];
  private written = 0;
  /** the piece being copied (a row with its comma or bracket, or a bracket) and how much of it is out */
  private piece: Uint8Array | null = null;
  private pieceAt = 0;

  constructor(spec: AggregateRowsSpec, partials: Uint8Array[]) {
    const keyNames = spec.groupBy.map((k) => (k === 'window' ? 'window_start' : k));
    const runs = partials.flatMap((p, shard) => runsOf(p, keyNames, shard)).filter((r) => r.n > 0);
    setHeads(runs, keyNames.length);
    let total = 2;
    let rows = 0;
    for (const r of runs) {
      total += r.textBytes();
      rows += r.n;
    }
    this.bytes = total + Math.max(0, rows - 1);
    this.live = runs;
  }

  /** Bytes not yet written. */
  get left(): number {
    return this.bytes - this.written;
  }

  /**
   * Writes the next bytes into `out` from its start, as many as fit; returns how many (0 once
   * everything is written).
   * @throws Error when a shard's rows are not in key order (a bug: the shards sort them).
   */
  fill(out: Uint8Array): number {
    let at = 0;
    if (this.written === 0 && out.length > 0) out[at++] = 0x5b;
    const live = this.live;
    while (at < out.length) {
      if (this.piece !== null) {
        const n = Math.min(out.length - at, this.piece.length - this.pieceAt);
        out.set(this.piece.subarray(this.pieceAt, this.pieceAt + n), at);
        at += n;
        this.pieceAt += n;
        if (this.pieceAt < this.piece.length) break;
        this.piece = null;
        continue;
      }
      if (live.length === 0) {
        if (this.written + at === this.bytes - 1) out[at++] = 0x5d;
        break;
      }
      let best = 0;
      for (let h = 1; h < live.length; h++) if (compareRows(live[h]!, live[h]!.i, live[best]!, live[best]!.i) < 0) best = h;
      const r = live[best]!;
      const i = r.i;
      const rewritten = r.rewritten === null ? undefined : r.rewritten.get(i);
      // every row but the first follows a comma; the first follows only `[`
      const comma = this.written + at > 1 ? 1 : 0;
      const s = r.starts[i]!;
      const e = r.starts[i + 1]!;
      const length = rewritten === undefined ? e - s : rewritten.length;
      if (at + comma + length <= out.length) {
        if (comma) out[at++] = COMMA;
        if (rewritten === undefined) out.set(r.text.subarray(s, e), at);
        else out.set(rewritten, at);
        at += length;
      } else {
        // the row goes out over this fill and the next ones
        const piece = new Uint8Array(comma + length);
        if (comma) piece[0] = COMMA;
        piece.set(rewritten ?? r.text.subarray(s, e), comma);
        this.piece = piece;
        this.pieceAt = 0;
      }
      r.i++;
      if (r.i === r.n) live.splice(best, 1);
      else if (compareRows(r, i, r, i + 1) > 0) throw new Error(`aggregate rows of shard ${r.shard} are not in key order at row ${r.i}`);
    }
    this.written += at;
    if (this.written > this.bytes) throw new Error(`aggregate rows: wrote ${this.written} bytes, expected ${this.bytes}`);
    return at;
  }
}

/**
 * The `results` array's UTF-8 JSON: every shard's rows, in key order, in one buffer. Pure.
 * @throws Error when a shard's rows are not in key order (a bug: the shards sort them).
 */
export function mergeAggregateRows(spec: AggregateRowsSpec, partials: Uint8Array[]): Uint8Array {
  const merge = new RowsMerge(spec, partials);
  // Slow: never a slice of Buffer's shared pool (small answers), whose ArrayBuffer cannot be
  // transferred (merge-task.ts moves these bytes to the main thread). Every byte is written below
  // (checked at the end), but a large answer's memory is fresh from the kernel and faults once
  // per 4 KiB page: faulted in by one fill first, 243 MB merged in ~450 instead of ~500 ms (the
  // faults amid the row copies cost more than the fill).
  const out = Buffer.allocUnsafeSlow(merge.bytes);
  if (merge.bytes >= PREFAULT_BYTES) out.fill(0);
  const at = merge.fill(out);
  if (at !== merge.bytes || merge.left !== 0) throw new Error(`aggregate rows: wrote ${at} bytes, expected ${merge.bytes}`);
  return out;
}

/** Every shard's finished rows → `{rows}`: the `results` array as UTF-8 JSON (see merge-task.ts). */
export function mergeAggregateRowsTask(spec: AggregateRowsSpec, partials: Uint8Array[]): { rows: Uint8Array } {
  return { rows: mergeAggregateRows(spec, partials) };
}

export default defineMerge('aggregate-rows', mergeAggregateRowsTask);
