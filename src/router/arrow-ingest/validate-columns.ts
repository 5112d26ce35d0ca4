/**
 * POST /ingest/arrow, step 2: the JSON routes' event rules (docs/API.md "Events") applied
 * column by column, with no object per event:
 *
 *   timestamp  not null; epoch ms in years 0001–9999 (other units converted exactly, sub-ms
 *              dropped); at most `maxFutureSkew` ahead of the receive time
 *   event_type, user_id  not null, 1–64 / 1–128 UTF-16 code units, well-formed UTF-8 (a lone
 *              surrogate cannot be encoded in valid UTF-8, so this is the JSON routes' rule)
 *   value      finite or null
 *   metadata   null, or JSON object text stored as `JSON.stringify` writes it (metadata-json.ts)
 *
 * Strings are checked once per distinct dictionary entry (only the entries some row uses), or
 * per row for plain columns: one `isUtf8` over the column's bytes plus a look at each string's
 * first and last byte, instead of a decode per string.
 */
import { isUtf8 } from 'node:buffer';
import { utf16Units } from '../utf16-units.js';
import type { FieldError } from '../http-error.js';
import { MAX_EVENT_TYPE_CHARS, MAX_METADATA_BYTES, MAX_TS, MAX_USER_ID_CHARS, MIN_TS, futureSkewReason } from '../validate-event.js';
import type { BlockSource, Utf8Rows } from '../../shards/ring-block.js';
import type { ArrowChunk, StringColumn, Utf8Strings } from './read-arrow.js';
import { canonicalMetadata, isCanonicalObject, type MetadataOutcome } from './metadata-json.js';

export interface ValidateOptions {
  receivedAt: number;
  /** null: no bound */
  maxFutureSkewMs: number | null;
  maxJsonDepth: number;
}

/** Errors by row, at most `perField` kept per column (the lowest rows: columns are read in row order). */
export class RowErrors {
  readonly kept: FieldError[] = [];
  total = 0;
  private readonly perColumn = new Map<string, number>();

  constructor(private readonly perField: number) {}

  add(index: number, column: string, field: string, reason: string): void {
    this.total++;
    const n = this.perColumn.get(column) ?? 0;
    if (n >= this.perField) return;
    this.perColumn.set(column, n + 1);
    this.kept.push({ index, field, reason });
  }

  /** The `limit` errors of the lowest rows, in row order. */
  first(limit: number): FieldError[] {
    return [...this.kept].sort((a, b) => a.index! - b.index!).slice(0, limit);
  }
}

const isValid = (bits: Uint8Array | null, i: number) => bits === null || ((bits[i >> 3]! >> (i & 7)) & 1) === 1;


const enum Status {
  OK = 0,
  NULL = 1,
  EMPTY = 2,
  TOO_LONG = 3,
  BAD_UTF8 = 4,
  UNUSED = 5,
}

/**
 * The status of each string in `s` that `used` marks (all when null): null, empty, over
 * `maxUnits` UTF-16 code units, or not well-formed UTF-8.
 */
function stringStatus(s: Utf8Strings, used: Uint8Array | null, maxUnits: number): Uint8Array {
  const status = new Uint8Array(s.count);
  const { data, offsets } = s;
  const lo = offsets[0]!;
  const hi = offsets[s.count]!;
  // One pass over all the bytes; if that fails (a bad string, or bytes under a null), per string.
  const whole = isUtf8(data.subarray(lo, hi));
  for (let i = 0; i < s.count; i++) {
    if (used !== null && used[i] === 0) {
      status[i] = Status.UNUSED;
      continue;
    }
    if (!isValid(s.valid, i)) {
      status[i] = Status.NULL;
      continue;
    }
    const a = offsets[i]!;
    const b = offsets[i + 1]!;
    if (a === b) {
      status[i] = Status.EMPTY;
      continue;
    }
    // Valid bytes overall; each string must also start and end on a character boundary.
    const ok = whole ? (data[a]! & 0xc0) !== 0x80 && (b === hi || (data[b]! & 0xc0) !== 0x80) : isUtf8(data.subarray(a, b));
    if (!ok) status[i] = Status.BAD_UTF8;
    else if (b - a > maxUnits && utf16Units(data, a, b) > maxUnits) status[i] = Status.TOO_LONG;
  }
  return status;
}

type DictColumn = Extract<StringColumn, { kind: 'dict' }>;

function usedEntries(col: DictColumn, rows: number): Uint8Array {
  const used = new Uint8Array(col.entries.count);
  for (let i = 0; i < rows; i++) if (isValid(col.valid, i)) used[col.codes[i]!] = 1;
  return used;
}

/** The strings a column's rows point at, and the status of each (see `stringStatus`). */
function statusOf(col: StringColumn, rows: number, maxUnits: number): { strings: Utf8Strings; status: Uint8Array } {
  if (col.kind === 'plain') return { strings: col.strings, status: stringStatus(col.strings, null, maxUnits) };
  return { strings: col.entries, status: stringStatus(col.entries, usedEntries(col, rows), maxUnits) };
}

/** Row `i`'s string index (itself, or its dictionary code), or -1 when the row is null. */
const entryOf = (col: StringColumn, i: number): number => (col.kind === 'plain' ? i : isValid(col.valid, i) ? col.codes[i]! : -1);

/**
 * Start and end of each row's bytes: views of the offsets for plain columns; for dictionary
 * columns looked up by code. `starts`/`ends` (per string) replace the offsets (rewritten texts).
 */
function rowSpans(col: StringColumn, rows: number, data?: Uint8Array, starts?: Int32Array, ends?: Int32Array): Utf8Rows {
  if (col.kind === 'plain') {
    const o = col.strings.offsets;
    return { data: data ?? col.strings.data, start: starts ?? o.subarray(0, rows), end: ends ?? o.subarray(1, rows + 1) };
  }
  const s = starts ?? col.entries.offsets;
  const e = ends ?? col.entries.offsets.subarray(1);
  const start = new Int32Array(rows);
  const end = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const k = col.codes[i]!;
    start[i] = s[k]!;
    end[i] = e[k]!;
  }
  return { data: data ?? col.entries.data, start, end };
}

function checkNamedString(col: StringColumn, rows: number, first: number, field: string, maxUnits: number, errors: RowErrors): Utf8Rows {
  const { strings, status } = statusOf(col, rows, maxUnits);
  for (let i = 0; i < rows; i++) {
    const k = entryOf(col, i);
    const st = k < 0 ? Status.NULL : status[k]!;
    if (st === Status.OK) continue;
    const reason =
      st === Status.NULL
        ? 'required'
        : st === Status.EMPTY
          ? `expected 1–${maxUnits} characters, got 0`
          : st === Status.TOO_LONG
            ? `expected 1–${maxUnits} characters, got ${utf16Units(strings.data, strings.offsets[k]!, strings.offsets[k + 1]!)}`
            : 'not well-formed UTF-8 (a lone surrogate or invalid bytes)';
    errors.add(first + i, field, field, reason);
  }
  return rowSpans(col, rows);
}

function checkTimestamps(chunk: ArrowChunk, opts: ValidateOptions, errors: RowErrors): Float64Array {
  const { words, unit, valid } = chunk.timestamp;
  const n = chunk.rows;
  const out = new Float64Array(n);
  const skew = opts.maxFutureSkewMs;
  for (let i = 0; i < n; i++) {
    if (!isValid(valid, i)) {
      errors.add(chunk.first + i, 'timestamp', 'timestamp', 'required');
      continue;
    }
    const lo = words[2 * i]! >>> 0;
    const hi = words[2 * i + 1]!;
    // Exact: 2^32 = 4294967·1000 + 296 = 4294·10^6 + 967296, so floor(v / d) splits into parts below 2^53.
    const ms =
      unit === 'ms'
        ? hi * 4294967296 + lo
        : unit === 'us'
          ? hi * 4294967 + Math.floor((hi * 296 + lo) / 1000)
          : unit === 'ns'
            ? hi * 4294 + Math.floor((hi * 967296 + lo) / 1_000_000)
            : (hi * 4294967296 + lo) * 1000;
    if (ms < MIN_TS || ms > MAX_TS) {
      errors.add(chunk.first + i, 'timestamp', 'timestamp', `epoch milliseconds out of range (${ms}${unit === 'ms' ? '' : `, from ${unit}`}); years 0001–9999`);
      continue;
    }
    if (skew !== null && ms - opts.receivedAt > skew) {
      errors.add(chunk.first + i, 'timestamp', 'timestamp', futureSkewReason(ms, opts.receivedAt, skew)!);
      continue;
    }
    out[i] = ms;
  }
  return out;
}

function checkValues(chunk: ArrowChunk, errors: RowErrors): void {
  const v = chunk.value;
  if (!v) return;
  const { values, valid } = v;
  for (let i = 0; i < chunk.rows; i++) {
    const x = values[i]!;
    // x - x is NaN for NaN and ±Infinity
    if (x - x !== 0 && isValid(valid, i)) errors.add(chunk.first + i, 'value', 'value', `expected a finite number or null, got ${x}`);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Metadata: each used string must be JSON object text. Canonical text is kept as it is; other
 * text is replaced by its canonical form, appended after the column's bytes.
 */
function checkMetadata(col: StringColumn, rows: number, first: number, opts: ValidateOptions, errors: RowErrors): { rows: Utf8Rows; valid: Uint8Array | null } {
  const { strings, status } = statusOf(col, rows, Infinity);
  const outcome = new Map<number, MetadataOutcome>();
  const { data, offsets } = strings;
  let extra = 0;
  for (let k = 0; k < strings.count; k++) {
    const st = status[k]!;
    if (st === Status.UNUSED || st === Status.NULL) continue;
    if (st === Status.BAD_UTF8) {
      outcome.set(k, { field: 'metadata', reason: 'not well-formed UTF-8 (a lone surrogate or invalid bytes)' });
      continue;
    }
    const a = offsets[k]!;
    const b = offsets[k + 1]!;
    if (isCanonicalObject(data, a, b, opts.maxJsonDepth)) {
      if (b - a > MAX_METADATA_BYTES) outcome.set(k, { field: 'metadata', reason: `serialized size ${b - a} bytes exceeds ${MAX_METADATA_BYTES}` });
      continue;
    }
    const o = canonicalMetadata(decoder.decode(data.subarray(a, b)), opts.maxJsonDepth);
    outcome.set(k, o);
    if ('bytes' in o) extra += o.bytes.length;
  }
  // A row is null when its validity (or its dictionary entry's) says so.
  const valid = new Uint8Array((rows + 7) >> 3);
  let nulls = 0;
  for (let i = 0; i < rows; i++) {
    const k = entryOf(col, i);
    if (k < 0 || status[k] === Status.NULL) {
      nulls++;
      continue;
    }
    valid[i >> 3]! |= 1 << (i & 7);
    const o = outcome.get(k);
    if (o && 'reason' in o) errors.add(first + i, 'metadata', o.field, o.reason);
  }
  const validity = nulls === 0 ? null : valid;
  if (extra === 0) return { rows: rowSpans(col, rows), valid: validity };
  // Rewritten texts go after the column's bytes; their strings point there.
  const joined = new Uint8Array(data.length + extra);
  joined.set(data);
  const starts = offsets.slice(0, strings.count);
  const ends = offsets.slice(1, strings.count + 1);
  let at = data.length;
  for (const [k, o] of outcome) {
    if (!('bytes' in o)) continue;
    joined.set(o.bytes, at);
    starts[k] = at;
    ends[k] = at + o.bytes.length;
    at += o.bytes.length;
  }
  return { rows: rowSpans(col, rows, joined, starts, ends), valid: validity };
}

/** The chunk as block columns, with its rows' errors added to `errors` (the columns are then not to be written). */
export function validateChunk(chunk: ArrowChunk, opts: ValidateOptions, errors: RowErrors): BlockSource {
  const n = chunk.rows;
  const timestamps = checkTimestamps(chunk, opts, errors);
  const eventType = checkNamedString(chunk.eventType, n, chunk.first, 'event_type', MAX_EVENT_TYPE_CHARS, errors);
  const userId = checkNamedString(chunk.userId, n, chunk.first, 'user_id', MAX_USER_ID_CHARS, errors);
  checkValues(chunk, errors);
  const metadata = chunk.metadata ? checkMetadata(chunk.metadata, n, chunk.first, opts, errors) : null;
  return {
    timestamps,
    values: chunk.value?.values ?? null,
    valueValid: chunk.value?.valid ?? null,
    eventType,
    userId,
    metadata: metadata?.rows ?? null,
    metadataValid: metadata?.valid ?? null,
  };
}
