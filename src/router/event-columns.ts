/**
 * POST /ingest/batch and /ingest/ndjson: parsed JSON events validated straight into block
 * columns (src/shards/ring-block.ts) and grouped by shard, for `IngestWriter.writeColumns`, as
 * the Arrow route does: no EncodableEvent per event, no framed ring record per event, and the
 * shard copies whole columns instead of decoding one record at a time.
 *
 * This is the happy path only. It accepts exactly what `validateEvent` accepts and stores the
 * same values (the same UTF-8 bytes, the metadata's `JSON.stringify` text, the receive time for
 * a missing timestamp); at the first event it would refuse it gives up and returns null, and the
 * caller runs `validateBatch` for the errors it reports (which fields, which indexes, how many),
 * so every message comes from one place. Tests check both agree on random valid and invalid events.
 *
 * Per event it does only what the rules need: the field names compared as interned strings, the
 * strings copied into the columns in a JavaScript loop while checking they are ASCII (a string
 * with no code unit ≥ 0x80 is well-formed and its bytes are its code units; others go through
 * `isWellFormed` and a native UTF-8 write), event types as a per-request dictionary, and the
 * metadata's Unicode check skipped when its text has no backslash: JSON.stringify writes a lone
 * surrogate, in a key or a value, as a `\udXXX` escape, so text without one holds none.
 */
import type { BlockSource, Utf8Rows } from '../shards/ring-block.js';
import { groupByShard, type ShardOrder } from './arrow-ingest/route-rows.js';
import { jumpConsistentHash } from './route-hash.js';
import { MAX_EVENT_TYPE_CHARS, MAX_METADATA_BYTES, MAX_TS, MAX_USER_ID_CHARS, MIN_TS, illFormedMetadataPath, parseTimestamp } from './validate-event.js';

/** A request's events as block columns and its rows grouped by shard (`writeColumns`' input). */
export interface EventColumns {
  source: BlockSource;
  order: ShardOrder;
  /** arrays and objects in the events (each event, its metadata's), for batch-body.ts' depth proof */
  containers: number;
}

/** Strings longer than this are written by Buffer#write (native) rather than the copy loop. */
const LOOP_CHARS = 64;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** One string column being filled: UTF-8 bytes, grown by doubling, kept between requests. */
export class ByteColumn {
  data = Buffer.allocUnsafe(64 * 1024);
  at = 0;
  /** FNV-1a 32 of the bytes `append` wrote last (route-hash.ts), for user ids */
  hash = 0;

  reserve(bytes: number): void {
    if (this.at + bytes <= this.data.length) return;
    let size = this.data.length * 2;
    while (size < this.at + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.data.copy(grown, 0, 0, this.at);
    this.data = grown;
  }

  /**
   * Appends `s` as UTF-8 and returns its bytes (and their hash in `hash`), or -1 when `s` is not
   * well-formed (nothing kept).
   */
  append(s: string): number {
    const n = s.length;
    this.reserve(3 * n);
    const d = this.data;
    if (n <= LOOP_CHARS) {
      let p = this.at;
      let h = FNV_OFFSET;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) return this.appendNative(s);
        d[p++] = c;
        h = Math.imul(h ^ c, FNV_PRIME);
      }
      this.at = p;
      this.hash = h >>> 0;
      return n;
    }
    return this.appendNative(s);
  }

  private appendNative(s: string): number {
    if (!s.isWellFormed()) return -1;
    const start = this.at;
    const bytes = this.data.write(s, start, 'utf8');
    this.at += bytes;
    let h = FNV_OFFSET;
    for (let i = start; i < this.at; i++) h = Math.imul(h ^ this.data[i]!, FNV_PRIME);
    this.hash = h >>> 0;
    return bytes;
  }

  /**
   * Appends `JSON.stringify(o)` for the common metadata, an object whose values are strings,
   * numbers, booleans or null and whose keys and strings are printable ASCII without `"` or `\`
   * (text that needs no escape and holds no lone surrogate); returns its bytes, or -1, having
   * written nothing, for any other object.
   */
  appendFlatObject(o: Record<string, unknown>): number {
    const start = this.at;
    this.reserve(2);
    this.data[this.at++] = 0x7b; // {
    let first = true;
    for (const key in o) {
      const v = o[key];
      this.reserve(1);
      if (!first) this.data[this.at++] = 0x2c; // ,
      first = false;
      if (!this.appendPlain(key)) return this.rewind(start);
      this.reserve(1);
      this.data[this.at++] = 0x3a; // :
      if (typeof v === 'string') {
        if (!this.appendPlain(v)) return this.rewind(start);
      } else if (typeof v === 'number' || typeof v === 'boolean' || v === null) {
        // what JSON.stringify writes: String(n) for finite numbers, null for the rest
        const text = typeof v === 'number' && v - v !== 0 ? 'null' : String(v);
        this.reserve(text.length);
        for (let i = 0; i < text.length; i++) this.data[this.at++] = text.charCodeAt(i);
      } else return this.rewind(start);
    }
    this.reserve(1);
    this.data[this.at++] = 0x7d; // }
    return this.at - start;
  }

  /** `"s"` when s is printable ASCII without `"` or `\`; false otherwise. */
  private appendPlain(s: string): boolean {
    const n = s.length;
    if (n > LOOP_CHARS) return false;
    this.reserve(n + 2);
    const d = this.data;
    let p = this.at;
    d[p++] = QUOTE;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c >= 0x7f || c === QUOTE || c === BACKSLASH) return false;
      d[p++] = c;
    }
    d[p++] = QUOTE;
    this.at = p;
    return true;
  }

  private rewind(to: number): -1 {
    this.at = to;
    return -1;
  }
}

/** Per-row arrays reused between requests (the main thread validates one request at a time). */
export class RowScratch {
  rows = 0;
  timestamps = new Float64Array(0);
  values = new Float64Array(0);
  valueValid = new Uint8Array(0);
  metadataValid = new Uint8Array(0);
  typeStart = new Int32Array(0);
  typeEnd = new Int32Array(0);
  userEnds = new Int32Array(1);
  metaEnds = new Int32Array(1);
  shardOf = new Uint8Array(0);
  readonly types = new ByteColumn();
  readonly users = new ByteColumn();
  readonly meta = new ByteColumn();

  /** Room for `rows` rows, the bitmaps cleared, the byte columns emptied. */
  begin(rows: number): void {
    if (rows > this.rows || this.rows > 4 * SCRATCH_KEEP_ROWS) {
      const n = Math.max(rows, Math.min(SCRATCH_KEEP_ROWS, 2 * this.rows));
      this.rows = n;
      this.timestamps = new Float64Array(n);
      this.values = new Float64Array(n);
      this.valueValid = new Uint8Array((n + 7) >> 3);
      this.metadataValid = new Uint8Array((n + 7) >> 3);
      this.typeStart = new Int32Array(n);
      this.typeEnd = new Int32Array(n);
      this.userEnds = new Int32Array(n + 1);
      this.metaEnds = new Int32Array(n + 1);
      this.shardOf = new Uint8Array(n);
    } else {
      this.valueValid.fill(0, 0, (rows + 7) >> 3);
      this.metadataValid.fill(0, 0, (rows + 7) >> 3);
    }
    for (const col of [this.types, this.users, this.meta]) {
      col.at = 0;
      if (col.data.length > SCRATCH_KEEP_BYTES) col.data = Buffer.allocUnsafe(64 * 1024);
    }
  }
}

/** Scratch larger than this is not kept for the next request (a one-off giant batch). */
const SCRATCH_KEEP_ROWS = 100_000;
const SCRATCH_KEEP_BYTES = 8 * 1024 * 1024;
/** The one scratch: eventColumns and batch-scan.ts fill it, the writer copies it out before the next request. */
export const scratch = new RowScratch();

/**
 * The events of `raws` as block columns grouped by shard (of `shards`), or null when any event
 * breaks a rule (`validateBatch(raws, …)` then says which). `receivedAt` fills missing
 * timestamps; `maxFutureSkewMs` (null: no bound) as for `validateEvent`. `metadataLevels`: how
 * deep a metadata value may nest (its object is level 1), checked iteratively before it is
 * serialized; null too when an event (level 0) or its metadata would nest deeper, for a body
 * whose text was not scanned for depth (batch-body.ts).
 *
 * The columns view memory the next call reuses: write them (`IngestWriter.writeColumns` copies
 * them into its staging) before validating another request.
 *
 * @example const cols = eventColumns(raws, Date.now(), config.maxFutureSkew, shards.length) ?? reportErrors()
 */
export function eventColumns(raws: readonly unknown[], receivedAt: number, maxFutureSkewMs: number | null, shards: number, metadataLevels = Infinity): EventColumns | null {
  const rows = raws.length;
  if (metadataLevels < 0) return null;
  let containers = rows;
  const sc = scratch;
  sc.begin(rows);
  const { timestamps, values, valueValid, metadataValid, typeStart, typeEnd, userEnds, metaEnds, shardOf, types, users, meta } = sc;
  // event types repeat: each distinct one is checked and encoded once per request
  const typeIndex = new Map<string, number>();
  const typeStarts: number[] = [];
  const typeEnds: number[] = [];
  let valueNulls = 0;
  let metadataRows = 0;
  for (let i = 0; i < rows; i++) {
    const raw = raws[i];
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
    const o = raw as Record<string, unknown>;
    for (const key in o) {
      if (key !== 'timestamp' && key !== 'event_type' && key !== 'user_id' && key !== 'value' && key !== 'metadata') return null;
    }

    const et = o.event_type;
    if (typeof et !== 'string') return null;
    let k = typeIndex.get(et);
    if (k === undefined) {
      if (et.length < 1 || et.length > MAX_EVENT_TYPE_CHARS) return null;
      const start = types.at;
      if (types.append(et) < 0) return null;
      k = typeStarts.length;
      typeStarts.push(start);
      typeEnds.push(types.at);
      typeIndex.set(et, k);
    }
    typeStart[i] = typeStarts[k]!;
    typeEnd[i] = typeEnds[k]!;

    const uid = o.user_id;
    if (typeof uid !== 'string' || uid.length < 1 || uid.length > MAX_USER_ID_CHARS) return null;
    if (users.append(uid) < 0) return null;
    userEnds[i + 1] = users.at;
    shardOf[i] = shards === 1 ? 0 : jumpConsistentHash(0, users.hash, shards);

    const ts = o.timestamp;
    if (ts === undefined) timestamps[i] = receivedAt;
    else {
      let t: number;
      if (typeof ts === 'number') {
        if (!Number.isInteger(ts) || ts < MIN_TS || ts > MAX_TS) return null;
        t = ts;
      } else if (typeof ts === 'string') {
        const parsed = parseTimestamp(ts);
        if (typeof parsed !== 'number') return null;
        t = parsed;
      } else return null;
      if (maxFutureSkewMs !== null && t - receivedAt > maxFutureSkewMs) return null;
      timestamps[i] = t;
    }

    const v = o.value;
    if (v === undefined || v === null) {
      valueNulls++;
      values[i] = 0;
    } else if (typeof v === 'number' && v - v === 0) {
      values[i] = v;
      valueValid[i >> 3]! |= 1 << (i & 7);
    } else return null;

    const md = o.metadata;
    if (md !== undefined && md !== null) {
      if (typeof md !== 'object' || Array.isArray(md)) return null;
      const held = appendMetadata(meta, md as Record<string, unknown>, metadataLevels);
      if (held < 0) return null;
      containers += held;
      metadataValid[i >> 3]! |= 1 << (i & 7);
      metadataRows++;
    }
    metaEnds[i + 1] = meta.at;
  }
  return finishColumns(sc, rows, valueNulls, metadataRows, shards, containers);
}

/** The scratch's first `rows` rows as columns, grouped by shard. */
export function finishColumns(sc: RowScratch, rows: number, valueNulls: number, metadataRows: number, shards: number, containers: number): EventColumns {
  const { timestamps, values, valueValid, metadataValid, typeStart, typeEnd, userEnds, metaEnds, shardOf, types, users, meta } = sc;
  const utf8 = (col: ByteColumn, ends: Int32Array): Utf8Rows => ({ data: col.data, start: ends.subarray(0, rows), end: ends.subarray(1, rows + 1) });
  return {
    source: {
      timestamps: timestamps.subarray(0, rows),
      values: values.subarray(0, rows),
      valueValid: valueNulls === 0 ? null : valueValid,
      eventType: { data: types.data, start: typeStart.subarray(0, rows), end: typeEnd.subarray(0, rows) },
      userId: utf8(users, userEnds),
      metadata: metadataRows === 0 ? null : utf8(meta, metaEnds),
      metadataValid: metadataRows === rows ? null : metadataValid,
    },
    order: groupByShard(shardOf.subarray(0, rows), shards),
    containers,
  };
}

/**
 * Appends a metadata object's `JSON.stringify` text if it is valid metadata (at most
 * MAX_METADATA_BYTES, well-formed, nesting at most `levels`); returns the arrays and objects it
 * holds (itself included), or -1 when it is not valid.
 */
function appendMetadata(meta: ByteColumn, md: Record<string, unknown>, levels: number): number {
  if (levels < 1) return -1;
  const flat = meta.appendFlatObject(md);
  if (flat >= 0) {
    if (flat <= MAX_METADATA_BYTES) return 1;
    meta.at -= flat;
    return -1;
  }
  const containers = containersWithin(md, levels);
  if (containers < 0) return -1;
  const text = JSON.stringify(md);
  // UTF-8 bytes ≥ UTF-16 code units (lone surrogates are escaped in the text)
  if (text.length > MAX_METADATA_BYTES) return -1;
  // A lone surrogate is written as a \udXXX escape: text without a backslash holds none.
  if (text.indexOf('\\') >= 0 && illFormedMetadataPath(md) !== null) return -1;
  const start = meta.at;
  meta.reserve(3 * text.length);
  meta.at += meta.data.write(text, start, 'utf8');
  if (meta.at - start <= MAX_METADATA_BYTES) return containers;
  meta.at = start;
  return -1;
}

/** The arrays and objects in `value` (itself included), or -1 when they nest deeper than `levels`. Iterative. */
function containersWithin(value: object, levels: number): number {
  const stack: Array<[value: object, level: number]> = [[value, 1]];
  let n = 0;
  while (stack.length > 0) {
    const [v, level] = stack.pop()!;
    if (level > levels) return -1;
    n++;
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (typeof x === 'object' && x !== null) stack.push([x, level + 1]);
  }
  return n;
}
