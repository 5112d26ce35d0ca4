/**
 * POST /ingest/batch without JSON.parse, for the bodies clients send most: a byte scanner that
 * reads `{"events": [...]}` or `[...]` of flat events straight into the block columns of
 * event-columns.ts. JSON.parse builds an object per event and a string per field (internalizing
 * every string of up to 10 characters: a string-table lookup per user id), ~0.5 µs per ~94-byte
 * event, half the HTTP thread's work; this scan reads the bytes once.
 *
 * It accepts only what it can store exactly as JSON.parse + `eventColumns` would, and gives up
 * (null: the caller takes that path, which names any error) on anything else: bytes that are not
 * valid UTF-8, an escape or control character in a string, a key other than the five fields or
 * one seen twice, a number written with an exponent or more than 15 digits where it must be
 * read (`Number` of its text then, still exact), a fraction in a timestamp, metadata not written
 * exactly as JSON.stringify writes it (metadata-json.ts' recognizer), any invalid value, no
 * event, more than fit the scratch. What it accepts it proves shallow: the body, the events and
 * their metadata nest at most `maxDepth` levels.
 *
 * Exact numbers without strtod: a decimal with at most 15 significant digits and at most 22
 * fraction digits is `m / 10^k` with m and 10^k exact doubles, and IEEE division rounds that
 * quotient correctly, as JSON.parse rounds the decimal (Clinger's fast path).
 */
import { isUtf8 } from 'node:buffer';
import { canonicalObjectEnd } from './arrow-ingest/metadata-json.js';
import { finishColumns, scratch, type EventColumns } from './event-columns.js';
import { utf16Units } from './utf16-units.js';
import { jumpConsistentHash } from './route-hash.js';
import { MAX_EVENT_TYPE_CHARS, MAX_METADATA_BYTES, MAX_TS, MAX_USER_ID_CHARS, MIN_TS, parseTimestamp } from './validate-event.js';

// Local, not imported: the scan's loops read them per byte, and imported module bindings made
// the scan ~10 % slower (0.263-0.269 -> 0.298-0.300 us/event, /tmp stage bench, alternated).
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

const TIMESTAMP = 1;
const EVENT_TYPE = 2;
const USER_ID = 4;
const VALUE = 8;
const METADATA = 16;

/** The smallest event, `{"event_type":"a","user_id":"b"}`, and its comma: rows ≤ bytes / 32. */
const MIN_EVENT_BYTES = 32;
const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);
const EVENTS_KEY = Buffer.from('"events"');
const NULL_BYTES = Buffer.from('null');

/** Where the last `readNumber` ended. */
let numberEnd = 0;

const isWhitespace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function skip(b: Uint8Array, p: number): number {
  while (p < b.length && isWhitespace(b[p]!)) p++;
  return p;
}

function matches(b: Uint8Array, p: number, what: Uint8Array): boolean {
  if (p + what.length > b.length) return false;
  for (let i = 0; i < what.length; i++) if (b[p + i] !== what[i]) return false;
  return true;
}

/** `src[s..e)` to `dst` at `at`: a loop for short runs (Buffer#copy costs ~0.1 µs a call), `set` for long ones. */
function copyBytes(src: Uint8Array, s: number, e: number, dst: Uint8Array, at: number): void {
  if (e - s > 64) dst.set(src.subarray(s, e), at);
  else for (let i = s; i < e; i++) dst[at++] = src[i]!;
}

/** The closing quote of the string opening at `p`, or -1 for an escape, a control character or no end. */
function stringEnd(b: Uint8Array, p: number): number {
  for (let q = p + 1; q < b.length; q++) {
    const c = b[q]!;
    if (c === QUOTE) return q;
    if (c === BACKSLASH || c < 0x20) return -1;
  }
  return -1;
}

/** The field the key at `p` names (`"timestamp"` … `"metadata"`, quotes included, no escapes), or 0. */
function fieldAt(b: Uint8Array, p: number): number {
  // a body cut right after the quote has no letter (a lookup by undefined would throw)
  if (p + 1 >= b.length) return 0;
  // by the first letter, then every byte up to the closing quote
  const f = FIELD_BY_LETTER[b[p + 1]!]!;
  return f !== 0 && matches(b, p, KEYS[f]!) ? f : 0;
}
const FIELD_BY_LETTER = new Uint8Array(256);
FIELD_BY_LETTER[0x74] = TIMESTAMP; // t
FIELD_BY_LETTER[0x65] = EVENT_TYPE; // e
FIELD_BY_LETTER[0x75] = USER_ID; // u
FIELD_BY_LETTER[0x76] = VALUE; // v
FIELD_BY_LETTER[0x6d] = METADATA; // m
const KEYS: Record<number, Uint8Array> = {
  [TIMESTAMP]: Buffer.from('"timestamp"'),
  [EVENT_TYPE]: Buffer.from('"event_type"'),
  [USER_ID]: Buffer.from('"user_id"'),
  [VALUE]: Buffer.from('"value"'),
  [METADATA]: Buffer.from('"metadata"'),
};
const KEY_BYTES: Record<number, number> = { [TIMESTAMP]: 11, [EVENT_TYPE]: 12, [USER_ID]: 9, [VALUE]: 7, [METADATA]: 10 };

/**
 * The JSON number at `p` (its end in `numberEnd`), or NaN when there is none, it is not valid
 * JSON, or `integral` and it has a fraction or exponent. Exact (see the file's comment).
 */
function readNumber(b: Uint8Array, p: number, integral: boolean): number {
  const start = p;
  const negative = b[p] === MINUS;
  if (negative) p++;
  const first = p;
  let m = 0;
  while (p < b.length && b[p]! >= ZERO && b[p]! <= NINE) m = m * 10 + (b[p++]! - ZERO);
  let digits = p - first;
  if (digits === 0 || (b[first] === ZERO && digits > 1)) return NaN;
  let fraction = 0;
  const c = b[p];
  if (c === DOT) {
    if (integral) return NaN;
    p++;
    const f = p;
    while (p < b.length && b[p]! >= ZERO && b[p]! <= NINE) m = m * 10 + (b[p++]! - ZERO);
    fraction = p - f;
    if (fraction === 0) return NaN;
    digits += fraction;
  }
  const e = b[p];
  if (e === 0x65 || e === 0x45) {
    if (integral) return NaN;
    p++;
    if (b[p] === 0x2b || b[p] === MINUS) p++;
    const x = p;
    while (p < b.length && b[p]! >= ZERO && b[p]! <= NINE) p++;
    if (p === x) return NaN;
    numberEnd = p;
    return Number(Buffer.prototype.latin1Slice.call(b, start, p));
  }
  numberEnd = p;
  // leading zeros ("0.000123") add digits, not significance: still exact under 10^15
  if (digits > 15) return integral ? NaN : Number(Buffer.prototype.latin1Slice.call(b, start, p));
  const v = fraction === 0 ? m : m / POW10[fraction]!;
  return negative ? -v : v;
}

/**
 * The events of the batch body `b` as block columns grouped by shard (as `eventColumns` gives
 * them), or null when the body is not of the form read here or any event breaks a rule.
 */
export function scanBatch(b: Buffer, receivedAt: number, maxFutureSkewMs: number | null, shards: number, maxDepth: number): EventColumns | null {
  const n = b.length;
  if (!isUtf8(b)) return null;
  const cap = Math.floor(n / MIN_EVENT_BYTES) + 1;
  const sc = scratch;
  sc.begin(cap);
  const { timestamps, values, valueValid, metadataValid, typeStart, typeEnd, userEnds, metaEnds, shardOf, types, users, meta } = sc;
  let p = skip(b, 0);
  let above = 1;
  if (b[p] === OPEN_OBJECT) {
    p = skip(b, p + 1);
    if (!matches(b, p, EVENTS_KEY)) return null;
    p = skip(b, p + EVENTS_KEY.length);
    if (b[p] !== COLON) return null;
    p = skip(b, p + 1);
    above = 2;
  }
  if (b[p] !== OPEN_ARRAY) return null;
  const metadataLevels = maxDepth - above - 1;
  if (metadataLevels < 0) return null;
  p = skip(b, p + 1);
  // event types of this request: their bytes in `types`, looked up by comparing bytes
  let typeCount = 0;
  const typeStarts: number[] = [];
  const typeEnds: number[] = [];
  let valueNulls = 0;
  let metadataRows = 0;
  let rows = 0;
  for (;;) {
    if (rows >= cap || b[p] !== OPEN_OBJECT) return null;
    const i = rows;
    let seen = 0;
    p = skip(b, p + 1);
    for (;;) {
      if (b[p] !== QUOTE) return null;
      const field = fieldAt(b, p);
      if (field === 0 || (seen & field) !== 0) return null;
      seen |= field;
      p = skip(b, p + KEY_BYTES[field]!);
      if (b[p] !== COLON) return null;
      p = skip(b, p + 1);
      const c = b[p];
      if (field === USER_ID) {
        if (c !== QUOTE) return null;
        const q = stringEnd(b, p);
        if (q < 0) return null;
        const len = q - p - 1;
        if (len < 1 || (len > MAX_USER_ID_CHARS && utf16Units(b, p + 1, q) > MAX_USER_ID_CHARS)) return null;
        users.reserve(len);
        const d = users.data;
        let at = users.at;
        let h = FNV_OFFSET;
        for (let k = p + 1; k < q; k++) {
          const x = b[k]!;
          d[at++] = x;
          h = Math.imul(h ^ x, FNV_PRIME);
        }
        users.at = at;
        userEnds[i + 1] = at;
        shardOf[i] = shards === 1 ? 0 : jumpConsistentHash(0, h >>> 0, shards);
        p = q + 1;
      } else if (field === EVENT_TYPE) {
        if (c !== QUOTE) return null;
        const q = stringEnd(b, p);
        if (q < 0) return null;
        const s = p + 1;
        const len = q - s;
        let k = 0;
        for (; k < typeCount; k++) {
          const ts = typeStarts[k]!;
          if (typeEnds[k]! - ts !== len) continue;
          let j = 0;
          while (j < len && types.data[ts + j] === b[s + j]) j++;
          if (j === len) break;
        }
        if (k === typeCount) {
          if (len < 1 || (len > MAX_EVENT_TYPE_CHARS && utf16Units(b, s, q) > MAX_EVENT_TYPE_CHARS)) return null;
          types.reserve(len);
          copyBytes(b, s, q, types.data, types.at);
          typeStarts.push(types.at);
          types.at += len;
          typeEnds.push(types.at);
          typeCount++;
        }
        typeStart[i] = typeStarts[k]!;
        typeEnd[i] = typeEnds[k]!;
        p = q + 1;
      } else if (field === TIMESTAMP) {
        let t: number;
        if (c === QUOTE) {
          const q = stringEnd(b, p);
          if (q < 0) return null;
          const parsed = parseTimestamp(Buffer.prototype.latin1Slice.call(b, p + 1, q) as string);
          if (typeof parsed !== 'number') return null;
          t = parsed;
          p = q + 1;
        } else {
          t = readNumber(b, p, true);
          if (Number.isNaN(t) || t < MIN_TS || t > MAX_TS) return null;
          p = numberEnd;
        }
        if (maxFutureSkewMs !== null && t - receivedAt > maxFutureSkewMs) return null;
        timestamps[i] = t;
      } else if (field === VALUE) {
        if (c === 0x6e) {
          if (!matches(b, p, NULL_BYTES)) return null;
          p += 4;
          values[i] = 0;
          valueNulls++;
        } else {
          const v = readNumber(b, p, false);
          if (v - v !== 0) return null;
          values[i] = v;
          valueValid[i >> 3]! |= 1 << (i & 7);
          p = numberEnd;
        }
      } else {
        if (c === 0x6e) {
          if (!matches(b, p, NULL_BYTES)) return null;
          p += 4;
        } else {
          const end = canonicalObjectEnd(b, p, n, metadataLevels);
          if (end < 0 || end - p > MAX_METADATA_BYTES) return null;
          meta.reserve(end - p);
          copyBytes(b, p, end, meta.data, meta.at);
          meta.at += end - p;
          metadataValid[i >> 3]! |= 1 << (i & 7);
          metadataRows++;
          p = end;
        }
      }
      p = skip(b, p);
      if (b[p] === COMMA) {
        p = skip(b, p + 1);
        continue;
      }
      if (b[p] !== CLOSE_OBJECT) return null;
      p++;
      break;
    }
    if ((seen & (EVENT_TYPE | USER_ID)) !== (EVENT_TYPE | USER_ID)) return null;
    if ((seen & TIMESTAMP) === 0) timestamps[i] = receivedAt;
    if ((seen & VALUE) === 0) {
      values[i] = 0;
      valueNulls++;
    }
    metaEnds[i + 1] = meta.at;
    rows++;
    p = skip(b, p);
    if (b[p] === COMMA) {
      p = skip(b, p + 1);
      continue;
    }
    if (b[p] !== CLOSE_ARRAY) return null;
    p++;
    break;
  }
  if (above === 2) {
    p = skip(b, p);
    if (b[p] !== CLOSE_OBJECT) return null;
    p++;
  }
  if (skip(b, p) !== n) return null;
  return finishColumns(sc, rows, valueNulls, metadataRows, shards, 0);
}
