/**
 * The Arrow answer of POST /query/aggregate (`format: "arrow"`): the answer rows as an Arrow IPC
 * stream, one column per JSON field, in the JSON answer's order.
 *
 * With `finish` (a by-user grouping: no group is on two shards) each shard's partial is already
 * the answer's columns, sorted by the keys (python/engine_polars/answer_rows.py
 * `answer_columns`: strings LargeUtf8, numbers Int64/Float64). They are interleaved by key (the
 * comparisons of aggregate-rows.ts: numeric heads, then the string bytes after them), which
 * gives each shard row its answer row; a shard's rows keep their order, so each column of each
 * output batch is then scattered shard by shard in one loop straight into the batch's message
 * (arrow-ipc.ts): 8-byte values as pairs of 32-bit words, string bytes copied, validity bits
 * moved, no JavaScript object per row. Otherwise the partials are merged as for JSON
 * (aggregate.ts) and the rows written out.
 */
import { Type, tableFromIPC, type Data } from 'apache-arrow';
import { compareRows, KeyColumn, setHeads, validityOf, type Keyed } from './aggregate-rows.js';
import { mergeAggregateTask, statsOf, type AggregateRow, type AggregateSpec } from './aggregate.js';
import { BatchWriter, ipcPieces, schemaMessage, type ColumnSpec, type IpcPieces } from './arrow-ipc.js';
import { defineMerge, type PieceStream } from './merge-def.js';
import { ARROW_EOS } from './export.js';

export interface AggregateArrowSpec extends AggregateSpec {
  /** The partials are finished columns (`answer_columns`), whose groups no two shards share. */
  finish: boolean;
}

/** Rows per record batch: ~5 MB of a by-user answer; a reader gets its first rows early. */
export const ARROW_BATCH_ROWS = 65_536;

/**
 * Finished columns of more bytes than this, all shards together, are merged while the answer is
 * sent (MergePool.stream): each batch goes out while the pool gathers the next. Below it the
 * answer is about one batch (~5 MB a batch, the partials about as many bytes as the answer), so
 * there is nothing to overlap, and it is merged whole, then sent.
 */
export const STREAM_ARROW_FROM = 4 * 1024 * 1024;

/** The answer's columns, named and ordered as the JSON answer's fields. */
export function answerColumns(spec: AggregateSpec): ColumnSpec[] {
  const out: ColumnSpec[] = [];
  for (const k of spec.groupBy) {
    if (k === 'window') out.push({ name: 'window_start', kind: 'int64', nullable: false }, { name: 'window_end', kind: 'int64', nullable: false });
    else out.push({ name: k, kind: 'utf8', nullable: true });
  }
  out.push({ name: 'count', kind: 'int64', nullable: false });
  for (const m of spec.metrics) {
    out.push({ name: `${m}_count`, kind: 'int64', nullable: false });
    for (const f of statsOf(spec)) out.push({ name: `${m}_${f}`, kind: 'float64', nullable: true });
  }
  return out;
}

/** One column of one shard's batch, as the gather reads it. */
interface SourceColumn {
  /** The batch's first row's bit in `valid`. */
  offset: number;
  valid: Uint8Array | null;
  /** Utf8: string `i` is `bytes[starts[i]]` to `bytes[starts[i + 1]]`. */
  starts: Int32Array | null;
  bytes: Uint8Array | null;
  /** 8-byte values as 32-bit word pairs, from the batch's first row. */
  words: Int32Array | null;
}

/** One record batch of one shard's finished columns, rows sorted by the keys. */
class ColumnRun implements Keyed {
  i = 0;
  readonly n: number;
  readonly keys: KeyColumn[];
  readonly columns: SourceColumn[];

  constructor(children: Map<string, Data>, columns: readonly ColumnSpec[], keyNames: readonly string[], readonly shard: number) {
    const need = (name: string) => {
      const d = children.get(name);
      if (!d) throw new Error(`aggregate columns partial of shard ${shard} is missing column \`${name}\`; has ${[...children.keys()].join(', ')}`);
      return d;
    };
    this.n = need('count').length;
    this.keys = keyNames.map((name) => new KeyColumn(need(name), name, shard));
    this.columns = columns.map((c) => {
      const data = need(c.name);
      const key = keyNames.indexOf(c.name);
      if (c.kind === 'utf8') {
        const strings = key >= 0 ? this.keys[key]!.strings : null;
        if (strings === null) throw new Error(`aggregate columns partial of shard ${shard}: expected \`${c.name}\` as strings, got ${String(data.type)}`);
        return { offset: data.offset, valid: validityOf(data), starts: strings.starts, bytes: strings.bytes, words: null };
      }
      const float = data.typeId === Type.Float && data.values instanceof Float64Array;
      const int = data.typeId === Type.Int && data.values instanceof BigInt64Array;
      if ((c.kind === 'float64' && !float) || (c.kind === 'int64' && !int)) {
        throw new Error(`aggregate columns partial of shard ${shard}: expected \`${c.name}\` as ${c.kind === 'int64' ? 'Int64' : 'Float64'}, got ${String(data.type)}`);
      }
      if (!c.nullable && data.nullCount > 0) throw new Error(`aggregate columns partial of shard ${shard}: \`${c.name}\` has ${data.nullCount} nulls`);
      const values = data.values as Float64Array | BigInt64Array;
      return { offset: data.offset, valid: validityOf(data), starts: null, bytes: null, words: new Int32Array(values.buffer, values.byteOffset + 8 * data.offset, 2 * data.length) };
    });
  }
}

function runsOf(partial: Uint8Array, columns: readonly ColumnSpec[], keyNames: readonly string[], shard: number): ColumnRun[] {
  const table = tableFromIPC(partial);
  return table.batches.map((batch) => new ColumnRun(new Map(table.schema.fields.map((f, c) => [f.name, batch.data.children[c]!])), columns, keyNames, shard));
}

/** A shard's runs (its partial's record batches, in key order one after the other) and the one being read. */
interface ShardCursor {
  runs: ColumnRun[];
  /** the index in `runs` of `r` */
  k: number;
  r: ColumnRun;
  at: Int32Array;
}

/**
 * Every shard's rows in key order: for each run, the answer row each of its rows becomes (rising,
 * since a run's rows keep their order), so the gathers below go run by run in tight loops. A
 * shard's runs follow each other in key order, so only each shard's current run competes for the
 * next row: one comparison a row with two shards, however many batches each sent (with every run
 * competing, a shard sending its rows in two batches made it three).
 */
function interleave(runs: ColumnRun[], keyCount: number): Int32Array[] {
  const positions = runs.map((r) => new Int32Array(r.n));
  const at = new Map(runs.map((r, k) => [r, positions[k]!]));
  const cursors: ShardCursor[] = [];
  for (const r of runs) {
    if (r.n === 0) continue;
    const c = cursors.find((c) => c.r.shard === r.shard);
    if (c) c.runs.push(r);
    else cursors.push({ runs: [r], k: 0, r, at: at.get(r)! });
  }
  const disorder = (r: ColumnRun, row: number) => new Error(`aggregate columns of shard ${r.shard} are not in key order at row ${row}`);
  // the current run is read: on to the shard's next (false when it has none), checked against the last row before it
  const advance = (c: ShardCursor): boolean => {
    if (c.k + 1 === c.runs.length) return false;
    const prev = c.r;
    c.r = c.runs[++c.k]!;
    c.at = at.get(c.r)!;
    if (keyCount > 0 && compareRows(prev, prev.n - 1, c.r, 0) > 0) throw disorder(c.r, 0);
    return true;
  };
  let out = 0;
  while (cursors.length > 1) {
    let best = 0;
    for (let h = 1; h < cursors.length; h++) if (compareRows(cursors[h]!.r, cursors[h]!.r.i, cursors[best]!.r, cursors[best]!.r.i) < 0) best = h;
    const c = cursors[best]!;
    const r = c.r;
    c.at[r.i++] = out++;
    if (r.i === r.n) {
      if (!advance(c)) cursors.splice(best, 1);
    } else if (keyCount > 0 && compareRows(r, r.i - 1, r, r.i) > 0) throw disorder(r, r.i);
  }
  // the last shard left: its rows follow in order (still checked)
  for (const c of cursors) {
    do {
      const { r, at: rows } = c;
      for (; r.i < r.n; r.i++) {
        if (keyCount > 0 && r.i > 0 && compareRows(r, r.i - 1, r, r.i) > 0) throw disorder(r, r.i);
        rows[r.i] = out++;
      }
    } while (advance(c));
  }
  return positions;
}

/** Run rows `j0` to `j1` of a Utf8 column, whose answer rows are `at[j] - from`: their lengths at `offsets[o + 1]`, validity bits; the nulls. */
function scatterLengths(src: SourceColumn, at: Int32Array, j0: number, j1: number, from: number, offsets: Int32Array, valid: Uint8Array): number {
  const starts = src.starts!;
  const sv = src.valid;
  const off = src.offset;
  let nulls = 0;
  for (let j = j0; j < j1; j++) {
    const o = at[j]! - from;
    offsets[o + 1] = starts[j + 1]! - starts[j]!;
    const bit = off + j;
    if (sv === null || (sv[bit >> 3]! & (1 << (bit & 7))) !== 0) valid[o >> 3]! |= 1 << (o & 7);
    else nulls++;
  }
  return nulls;
}

/** The same rows' string bytes, each at its answer row's offset. */
function scatterBytes(src: SourceColumn, at: Int32Array, j0: number, j1: number, from: number, offsets: Int32Array, out: Uint8Array): void {
  const starts = src.starts!;
  const bytes = src.bytes!;
  for (let j = j0; j < j1; j++) {
    let to = offsets[at[j]! - from]!;
    let b = starts[j]!;
    const e = starts[j + 1]!;
    // short strings (user ids) byte by byte: a subarray per row costs more than its copy
    if (e - b > 32) out.set(bytes.subarray(b, e), to);
    else while (b < e) out[to++] = bytes[b++]!;
  }
}

/** The same rows of an 8-byte column (as word pairs), and their validity bits when `valid`; the nulls. */
function scatterWords(src: SourceColumn, at: Int32Array, j0: number, j1: number, from: number, words: Int32Array, valid: Uint8Array | null): number {
  const w = src.words!;
  for (let j = j0; j < j1; j++) {
    const o = 2 * (at[j]! - from);
    const i = 2 * j;
    words[o] = w[i]!;
    words[o + 1] = w[i + 1]!;
  }
  if (valid === null) return 0;
  const sv = src.valid;
  if (sv === null) {
    for (let j = j0; j < j1; j++) {
      const o = at[j]! - from;
      valid[o >> 3]! |= 1 << (o & 7);
    }
    return 0;
  }
  const off = src.offset;
  let nulls = 0;
  for (let j = j0; j < j1; j++) {
    const o = at[j]! - from;
    const bit = off + j;
    if ((sv[bit >> 3]! & (1 << (bit & 7))) !== 0) valid[o >> 3]! |= 1 << (o & 7);
    else nulls++;
  }
  return nulls;
}

/**
 * Answer rows `from` to `to` as one record batch message: run k's rows `first[k]` to `last[k]`,
 * with `stringBytes[c]` bytes of Utf8 column c's strings (laid out by `arrowStreamFromColumns`).
 */
function gatherBatch(writer: BatchWriter, runs: ColumnRun[], positions: Int32Array[], first: Int32Array, last: Int32Array, stringBytes: readonly number[], from: number, to: number): Uint8Array {
  const columns = writer.columns;
  const rows = to - from;
  const batch = writer.begin(rows, stringBytes);
  const nulls = new Array<number>(columns.length).fill(0);
  for (let col = 0; col < columns.length; col++) {
    const valid = batch.validity[col] ?? null;
    if (columns[col]!.kind === 'utf8') {
      // each row's length at its place, the offsets as their running sum, then the bytes
      const offsets = batch.offsets[col]!;
      for (let k = 0; k < runs.length; k++) nulls[col]! += scatterLengths(runs[k]!.columns[col]!, positions[k]!, first[k]!, last[k]!, from, offsets, valid!);
      for (let o = 0; o < rows; o++) offsets[o + 1]! += offsets[o]!;
      for (let k = 0; k < runs.length; k++) scatterBytes(runs[k]!.columns[col]!, positions[k]!, first[k]!, last[k]!, from, offsets, batch.bytes[col]!);
    } else {
      for (let k = 0; k < runs.length; k++) nulls[col]! += scatterWords(runs[k]!.columns[col]!, positions[k]!, first[k]!, last[k]!, from, batch.words[col]!, valid);
    }
  }
  return writer.end(batch, nulls);
}

/**
 * Finished columns of every shard → the answer's IPC stream, laid out but not yet gathered: its
 * length is known once the rows are interleaved (each batch's rows of each run, so its string
 * bytes, so its size), and each record batch is gathered when `pieces` is iterated to it. So the
 * answer can be sent while its later batches are made (MergePool.stream).
 */
export function arrowStreamFromColumns(spec: AggregateSpec, partials: Uint8Array[], batchRows = ARROW_BATCH_ROWS): PieceStream {
  const columns = answerColumns(spec);
  const keyNames = spec.groupBy.map((k) => (k === 'window' ? 'window_start' : k));
  const runs = partials.flatMap((p, shard) => runsOf(p, columns, keyNames, shard));
  setHeads(runs, keyNames.length);
  const positions = interleave(runs, keyNames.length);
  const total = runs.reduce((n, r) => n + r.n, 0);
  const writer = new BatchWriter(columns);
  const schema = schemaMessage(columns);
  // per batch: each run's first row after it, its string bytes per Utf8 column, its message's size
  const ends: Int32Array[] = [];
  const strings: number[][] = [];
  const sizes: number[] = [];
  let edge: Int32Array = new Int32Array(runs.length);
  for (let from = 0; from < total; from += batchRows) {
    const to = Math.min(total, from + batchRows);
    const last = new Int32Array(runs.length);
    for (let k = 0; k < runs.length; k++) {
      // the run's first row at or past `to` (its answer rows rise)
      const at = positions[k]!;
      let lo = edge[k]!;
      let hi = at.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (at[mid]! < to) lo = mid + 1;
        else hi = mid;
      }
      last[k] = lo;
    }
    const first = edge;
    const stringBytes = columns.map((c, col) => {
      let n = 0;
      if (c.kind === 'utf8') for (let k = 0; k < runs.length; k++) n += runs[k]!.columns[col]!.starts![last[k]!]! - runs[k]!.columns[col]!.starts![first[k]!]!;
      return n;
    });
    ends.push(last);
    strings.push(stringBytes);
    sizes.push(writer.messageBytes(to - from, stringBytes));
    edge = last;
  }
  function* pieces(): Generator<Uint8Array> {
    yield schema;
    let first: Int32Array = new Int32Array(runs.length);
    for (let b = 0; b < ends.length; b++) {
      const from = b * batchRows;
      const message = gatherBatch(writer, runs, positions, first, ends[b]!, strings[b]!, from, Math.min(total, from + batchRows));
      if (message.length !== sizes[b]) throw new Error(`aggregate arrow: batch ${b} laid out as ${sizes[b]} bytes, made ${message.length}`);
      first = ends[b]!;
      yield message;
    }
    // (a copy: the pieces' buffers are moved out of the merge pool)
    yield ARROW_EOS.slice();
  }
  return { bytes: schema.length + sizes.reduce((n, s) => n + s, 0) + ARROW_EOS.length, pieces: pieces() };
}

/** Finished columns of every shard → the answer's IPC stream, made whole. */
export function arrowFromColumns(spec: AggregateSpec, partials: Uint8Array[], batchRows = ARROW_BATCH_ROWS): IpcPieces {
  const stream = arrowStreamFromColumns(spec, partials, batchRows);
  return { pieces: [...stream.pieces], bytes: stream.bytes };
}

const encoder = new TextEncoder();

/** Answer rows (the JSON answer's, aggregate.ts) → the answer's IPC stream. */
export function arrowFromRows(spec: AggregateSpec, rows: readonly AggregateRow[], batchRows = ARROW_BATCH_ROWS): IpcPieces {
  const columns = answerColumns(spec);
  const writer = new BatchWriter(columns);
  const batches: Uint8Array[] = [];
  for (let from = 0; from < rows.length; from += batchRows) {
    const slice = rows.slice(from, from + batchRows);
    const texts = columns.map((c) => (c.kind === 'utf8' ? slice.map((r) => (r[c.name] == null ? null : encoder.encode(String(r[c.name])))) : null));
    const batch = writer.begin(slice.length, texts.map((t) => (t === null ? 0 : t.reduce((n, b) => n + (b?.length ?? 0), 0))));
    const nulls = columns.map((c, k) => {
      let nullCount = 0;
      const valid = batch.validity[k] ?? null;
      const text = texts[k];
      if (text) {
        const offsets = batch.offsets[k]!;
        const out = batch.bytes[k]!;
        let at = 0;
        text.forEach((b, o) => {
          if (b === null) nullCount++;
          else {
            valid![o >> 3]! |= 1 << (o & 7);
            out.set(b, at);
            at += b.length;
          }
          offsets[o + 1] = at;
        });
        return nullCount;
      }
      const words = batch.words[k]!;
      const ints = new BigInt64Array(words.buffer, words.byteOffset, slice.length);
      const floats = new Float64Array(words.buffer, words.byteOffset, slice.length);
      slice.forEach((r, o) => {
        const v = r[c.name];
        if (v === null || v === undefined) {
          if (valid === null) throw new Error(`aggregate arrow: \`${c.name}\` is null in row ${from + o}`);
          nullCount++;
          return;
        }
        if (valid !== null) valid[o >> 3]! |= 1 << (o & 7);
        // the JSON answer's overflowed moments are the strings "Infinity", "-Infinity", "NaN"
        if (c.kind === 'int64') ints[o] = BigInt(v);
        else floats[o] = Number(v);
      });
      return nullCount;
    });
    batches.push(writer.end(batch, nulls));
  }
  return ipcPieces(schemaMessage(columns), batches);
}

/** Every shard's partial → the answer's Arrow IPC stream, as pieces. Pure. */
export function mergeAggregateArrowTask(spec: AggregateArrowSpec, partials: Uint8Array[]): IpcPieces {
  if (spec.finish) return arrowFromColumns(spec, partials);
  return arrowFromRows(spec, mergeAggregateTask(spec, partials).rows);
}

export default defineMerge('aggregate-arrow', mergeAggregateArrowTask, {
  // the pieces' buffers are moved to the main thread, not copied
  transfer: (out: IpcPieces) => out.pieces.map((p) => p.buffer as ArrayBuffer),
  // a by-user answer's batches are gathered one at a time, as they are sent
  stream: (spec: AggregateArrowSpec, partials: Uint8Array[]): PieceStream => (spec.finish ? arrowStreamFromColumns(spec, partials) : mergeAggregateArrowTask(spec, partials)),
});
