/**
 * Metadata from an Arrow column is JSON object text; it is checked by the JSON routes' rules
 * and stored as they store it: `JSON.stringify` of the parsed object, so an event means the
 * same (groups by `metadata.<key>`, export text) whichever route brought it. Pure.
 *
 * Parsing every text would cost a JSON.parse and a JSON.stringify per event. Most texts are
 * already exactly what JSON.stringify writes (clients serialize with it, or with
 * `json.dumps(..., separators=(",", ":"))`), so `isCanonicalObject` first runs a byte-level
 * recognizer of that one form: compact, the escapes JSON.stringify uses and no others, numbers
 * as JavaScript prints them, no duplicate or array-index keys (JSON.parse would drop or reorder
 * them). It answers `true` only when the text certainly is canonical; anything else, valid or
 * not, goes to `canonicalMetadata`, which parses and re-serializes like the JSON routes.
 */
import { LONE_SURROGATE, MAX_METADATA_BYTES, illFormedMetadataPath } from '../validate-event.js';
import { jsonDepthExceeded } from '../json-depth.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];
/** Escapes JSON.stringify writes in short form: \" \\ \b \f \n \r \t. */
const SHORT_ESCAPES = new Set([QUOTE, BACKSLASH, 0x62, 0x66, 0x6e, 0x72, 0x74]);
/** Control characters JSON.stringify writes in short form, so never as \u00xx. */
const SHORT_CONTROLS = new Set([0x08, 0x09, 0x0a, 0x0c, 0x0d]);
const MAX_KEYS = 1024;

// Reused across calls: the recognizer allocates nothing per text.
const keyStart = new Int32Array(MAX_KEYS);
const keyEnd = new Int32Array(MAX_KEYS);
// containers[d]: 1 object, 2 array; keyBase[d]: where the object at depth d keeps its keys
let containers = new Uint8Array(65);
let keyBase = new Int32Array(65);

const isDigit = (c: number) => c >= ZERO && c <= NINE;
const isLowerHex = (c: number) => isDigit(c) || (c >= 0x61 && c <= 0x66);
const hexValue = (c: number) => (c <= NINE ? c - ZERO : c - 0x61 + 10);

/** The end of the string token at `p` (its opening quote), or -1 when it is not in JSON.stringify's form. */
function scanString(b: Uint8Array, p: number, e: number): number {
  for (p++; p < e; ) {
    const c = b[p]!;
    if (c === QUOTE) return p + 1;
    if (c < 0x20) return -1;
    if (c !== BACKSLASH) {
      p++;
      continue;
    }
    if (p + 1 >= e) return -1;
    const x = b[p + 1]!;
    if (SHORT_ESCAPES.has(x)) {
      p += 2;
      continue;
    }
    // \u00xx for the other control characters only, lower-case hex
    if (x !== 0x75 || p + 5 >= e || b[p + 2] !== ZERO || b[p + 3] !== ZERO || !isLowerHex(b[p + 4]!) || !isLowerHex(b[p + 5]!)) return -1;
    const code = hexValue(b[p + 4]!) * 16 + hexValue(b[p + 5]!);
    if (code >= 0x20 || SHORT_CONTROLS.has(code)) return -1;
    p += 6;
  }
  return -1;
}

/** The end of the number token at `p`, or -1 when it is not written as JavaScript writes it. */
function scanNumber(b: Uint8Array, p: number, e: number): number {
  const s = p;
  let plainDigits = true;
  for (; p < e; p++) {
    const c = b[p]!;
    if (isDigit(c)) continue;
    if (c === MINUS && p === s) continue;
    if (c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === MINUS) {
      plainDigits = false;
      continue;
    }
    break;
  }
  const first = b[s] === MINUS ? s + 1 : s;
  const digits = p - first;
  if (digits === 0) return -1;
  if (plainDigits) {
    // -?[1-9][0-9]{0,14} or 0: exact in a double and printed back the same
    if (digits <= 15 && (b[first] !== ZERO || (digits === 1 && first === s))) return p;
    if (digits > 15 && b[first] !== ZERO) return String(Number(latin1(b, s, p))) === latin1(b, s, p) ? p : -1;
    return -1;
  }
  const token = latin1(b, s, p);
  return String(Number(token)) === token ? p : -1;
}

function latin1(b: Uint8Array, s: number, e: number): string {
  let out = '';
  for (let i = s; i < e; i++) out += String.fromCharCode(b[i]!);
  return out;
}

function literalAt(b: Uint8Array, p: number, e: number, lit: number[]): number {
  if (p + lit.length > e) return -1;
  for (let i = 0; i < lit.length; i++) if (b[p + i] !== lit[i]) return -1;
  return p + lit.length;
}

/** A key JSON.parse would move to the front of its object (an array index: "0" … "4294967294"). */
function isArrayIndex(b: Uint8Array, s: number, e: number): boolean {
  const n = e - s;
  if (n === 0 || n > 10) return false;
  for (let i = s; i < e; i++) if (!isDigit(b[i]!)) return false;
  if (n > 1 && b[s] === ZERO) return false;
  return n < 10 || Number(latin1(b, s, e)) <= 4294967294;
}

function sameBytes(b: Uint8Array, s1: number, e1: number, s2: number, e2: number): boolean {
  if (e1 - s1 !== e2 - s2) return false;
  for (let i = 0; i < e1 - s1; i++) if (b[s1 + i] !== b[s2 + i]) return false;
  return true;
}

/**
 * True when `b[s..e)` is certainly a JSON object nested at most `maxDepth` levels and written
 * exactly as `JSON.stringify(JSON.parse(text))` writes it (the bytes must be valid UTF-8: the
 * caller checks that). False says nothing: ask `canonicalMetadata`.
 */
export function isCanonicalObject(b: Uint8Array, s: number, e: number, maxDepth: number): boolean {
  return canonicalObjectEnd(b, s, e, maxDepth) === e;
}

/**
 * The end of the object at `b[s]` when it is certainly written as `isCanonicalObject` asks,
 * nested at most `maxDepth` levels and ending by `e` (what follows it is not looked at); -1 otherwise.
 */
export function canonicalObjectEnd(b: Uint8Array, s: number, e: number, maxDepth: number): number {
  if (e - s < 2 || b[s] !== OPEN_OBJECT || maxDepth < 1) return -1;
  if (containers.length <= maxDepth) {
    containers = new Uint8Array(maxDepth + 1);
    keyBase = new Int32Array(maxDepth + 1);
  }
  let keys = 0;
  let depth = 0;
  let p = s;
  let expectValue = true;
  for (;;) {
    if (expectValue) {
      if (p >= e) return -1;
      const c = b[p]!;
      if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
        if (++depth > maxDepth) return -1;
        containers[depth] = c === OPEN_OBJECT ? 1 : 2;
        keyBase[depth] = keys;
        p++;
        if (p < e && b[p] === (c === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) {
          p++;
          depth--;
          expectValue = false;
          continue;
        }
        if (c === OPEN_OBJECT) {
          p = readKey(b, p, e, keyBase[depth]!, keys);
          if (p < 0) return -1;
          keys++;
        }
        continue;
      }
      if (c === QUOTE) p = scanString(b, p, e);
      else if (c === MINUS || isDigit(c)) p = scanNumber(b, p, e);
      else if (c === 0x74) p = literalAt(b, p, e, TRUE);
      else if (c === 0x66) p = literalAt(b, p, e, FALSE);
      else if (c === 0x6e) p = literalAt(b, p, e, NULL);
      else return -1;
      if (p < 0) return -1;
      expectValue = false;
      continue;
    }
    if (depth === 0) return p;
    if (p >= e) return -1;
    const c = b[p]!;
    const inObject = containers[depth] === 1;
    if (c === COMMA) {
      p++;
      if (inObject) {
        p = readKey(b, p, e, keyBase[depth]!, keys);
        if (p < 0) return -1;
        keys++;
      }
      expectValue = true;
      continue;
    }
    if (c !== (inObject ? CLOSE_OBJECT : CLOSE_ARRAY)) return -1;
    p++;
    if (inObject) keys = keyBase[depth]!;
    depth--;
  }
}

/** Reads `"key":` at `p` (a new key of the object whose keys start at `base`); the position after the colon, or -1. */
function readKey(b: Uint8Array, p: number, e: number, base: number, keys: number): number {
  if (keys >= MAX_KEYS || p >= e || b[p] !== QUOTE) return -1;
  const end = scanString(b, p, e);
  if (end < 0 || end >= e || b[end] !== COLON) return -1;
  const ks = p + 1;
  const ke = end - 1;
  if (isArrayIndex(b, ks, ke)) return -1;
  for (let k = base; k < keys; k++) if (sameBytes(b, keyStart[k]!, keyEnd[k]!, ks, ke)) return -1;
  keyStart[keys] = ks;
  keyEnd[keys] = ke;
  // the value must follow: the caller expects one
  return end + 1;
}

/** What a metadata text is stored as, or why it is refused (`field` names a path inside it for a lone surrogate). */
export type MetadataOutcome = { bytes: Uint8Array } | { field: string; reason: string };

const encoder = new TextEncoder();

/**
 * The slow path: `text` parsed and re-serialized as the JSON routes do (depth checked on the
 * text first, so nothing deeper than `maxDepth` is parsed).
 */
export function canonicalMetadata(text: string, maxDepth: number): MetadataOutcome {
  const deep = jsonDepthExceeded(text, maxDepth);
  if (deep >= 0) return { field: 'metadata', reason: `nests deeper than maxJsonDepth (${maxDepth}): character ${deep} opens level ${maxDepth + 1}` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { field: 'metadata', reason: `not valid JSON: ${(err as Error).message.slice(0, 160)}` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { field: 'metadata', reason: `expected a JSON object, got ${parsed === null ? 'null' : Array.isArray(parsed) ? 'array' : typeof parsed}` };
  }
  const bad = illFormedMetadataPath(parsed);
  if (bad !== null) return { field: bad, reason: LONE_SURROGATE };
  const bytes = encoder.encode(JSON.stringify(parsed));
  if (bytes.length > MAX_METADATA_BYTES) return { field: 'metadata', reason: `serialized size ${bytes.length} bytes exceeds ${MAX_METADATA_BYTES}` };
  return { bytes };
}
