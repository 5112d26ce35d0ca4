/**
 * The ring record: how one validated event travels from the router (main thread) to its shard
 * through the shard's SharedArrayBuffer ring. Pure encode/decode, imported by both sides.
 *
 * Layout (little-endian), one record:
 *
 *   u32  recordBytes   bytes that follow this field
 *   f64  timestamp     epoch milliseconds (integral)
 *   f64  value         ignored when the VALUE_PRESENT flag is clear
 *   u8   flags         bit 0: value present, bit 1: metadata present
 *   u8   reserved      0
 *   u16  eventTypeLen  UTF-8 bytes of event_type
 *   u16  userIdLen     UTF-8 bytes of user_id
 *   u32  metadataLen   UTF-8 bytes of the metadata JSON text (0 when absent)
 *   ...  event_type bytes, user_id bytes, metadata bytes
 *
 * Records are pushed whole: the producer checks `availableWrite()` for every record of a
 * request before pushing any, so the consumer never sees half a record.
 *
 * The `reserved` byte is the record kind: 0 an event (above), KEYED_PART a marker that opens an
 * Idempotency-Key request's part on this shard (src/router/idempotency/): the shard keeps the
 * `events` event records that follow it in one sealed batch and logs the key inside that batch,
 * so the key is durable exactly when the events are. Markers are not counted in `pushed`.
 * RECORD_KIND_COLUMNS is a column block of many events (ring-block.ts, POST /ingest/arrow).
 *
 *   u32 recordBytes | f64 at (ms the request arrived) | f64 total (events of the whole request)
 *   | u8 flags (bit 0: ?wait=true) | u8 kind = KEYED_PART | u16 keyLen | u16 parts (shards the
 *   request spans) | u32 events (on this shard) | key (ASCII) | SHA-256 of route + body (32 bytes)
 */

export const RECORD_HEADER_BYTES = 4 + 8 + 8 + 1 + 1 + 2 + 2 + 4;
export const FLAG_VALUE = 1;
export const FLAG_METADATA = 2;
/** Record kinds (the byte after the flags). */
export const RECORD_KIND_EVENT = 0;
export const RECORD_KIND_KEYED_PART = 1;
/** Many events of one request part as columns (ring-block.ts); counts as `rows` records. */
export const RECORD_KIND_COLUMNS = 2;
export const KEY_HASH_BYTES = 32;

/**
 * An event after validation, ready to encode. `event_type` and metadata are UTF-8 bytes; the
 * user id stays a string until the writer encodes it into a reused scratch buffer (it is needed
 * as bytes for routing anyway, and encoding it per event into fresh arrays was a hot spot).
 */
export interface EncodableEvent {
  timestamp: number;
  value: number | null;
  eventType: Uint8Array;
  userId: string;
  metadata: Uint8Array | null;
}

export function recordSize(e: EncodableEvent, userIdBytes: number): number {
  return RECORD_HEADER_BYTES + e.eventType.length + userIdBytes + (e.metadata?.length ?? 0);
}

/** Writes `e` (with its user id as `userId` bytes) at `offset` of `buf`; returns the offset after it. */
export function encodeRecord(e: EncodableEvent, userId: Uint8Array, buf: Uint8Array, view: DataView, offset: number): number {
  const metaLen = e.metadata?.length ?? 0;
  const body = RECORD_HEADER_BYTES - 4 + e.eventType.length + userId.length + metaLen;
  view.setUint32(offset, body, true);
  view.setFloat64(offset + 4, e.timestamp, true);
  view.setFloat64(offset + 12, e.value ?? 0, true);
  view.setUint8(offset + 20, (e.value === null ? 0 : FLAG_VALUE) | (e.metadata ? FLAG_METADATA : 0));
  view.setUint8(offset + 21, 0);
  view.setUint16(offset + 22, e.eventType.length, true);
  view.setUint16(offset + 24, userId.length, true);
  view.setUint32(offset + 26, metaLen, true);
  let p = offset + RECORD_HEADER_BYTES;
  buf.set(e.eventType, p);
  p += e.eventType.length;
  buf.set(userId, p);
  p += userId.length;
  if (e.metadata) {
    buf.set(e.metadata, p);
    p += metaLen;
  }
  return p;
}

/** A decoded record as views into the source buffer (no copies). */
export interface RecordView {
  /**
   * RECORD_KIND_EVENT, RECORD_KIND_KEYED_PART (then read it with `decodeKeyedPart`) or
   * RECORD_KIND_COLUMNS (then read it with ring-block.ts's `decodeBlock(view, offset, body)`)
   */
  kind: number;
  /** bytes after the record's length word */
  body: number;
  timestamp: number;
  value: number | null;
  eventTypeStart: number;
  eventTypeLen: number;
  userIdStart: number;
  userIdLen: number;
  metadataStart: number;
  metadataLen: number;
  hasMetadata: boolean;
  next: number;
}

/**
 * Reads the record at `offset`, or returns null when fewer than a whole record's bytes remain
 * before `end`. Throws when the framing is inconsistent (a producer bug, never user input).
 */
export function decodeRecord(view: DataView, offset: number, end: number): RecordView | null {
  if (end - offset < RECORD_HEADER_BYTES) return null;
  const body = view.getUint32(offset, true);
  if (end - offset < 4 + body) return null;
  const kind = view.getUint8(offset + 21);
  if (kind === RECORD_KIND_KEYED_PART) return keyedPartView(view, offset, body);
  if (kind === RECORD_KIND_COLUMNS) return opaqueView(kind, offset, body);
  const flags = view.getUint8(offset + 20);
  const eventTypeLen = view.getUint16(offset + 22, true);
  const userIdLen = view.getUint16(offset + 24, true);
  const metadataLen = view.getUint32(offset + 26, true);
  if (RECORD_HEADER_BYTES - 4 + eventTypeLen + userIdLen + metadataLen !== body) {
    throw new Error(`corrupt ring record at ${offset}: expected ${body} body bytes, fields add to ${RECORD_HEADER_BYTES - 4 + eventTypeLen + userIdLen + metadataLen}`);
  }
  const eventTypeStart = offset + RECORD_HEADER_BYTES;
  const userIdStart = eventTypeStart + eventTypeLen;
  const metadataStart = userIdStart + userIdLen;
  return {
    kind,
    body,
    timestamp: view.getFloat64(offset + 4, true),
    value: flags & FLAG_VALUE ? view.getFloat64(offset + 12, true) : null,
    eventTypeStart,
    eventTypeLen,
    userIdStart,
    userIdLen,
    metadataStart,
    metadataLen,
    hasMetadata: (flags & FLAG_METADATA) !== 0,
    next: metadataStart + metadataLen,
  };
}

function keyedPartView(view: DataView, offset: number, body: number): RecordView {
  const keyLen = view.getUint16(offset + 22, true);
  if (RECORD_HEADER_BYTES - 4 + keyLen + KEY_HASH_BYTES !== body) {
    throw new Error(`corrupt keyed-part marker at ${offset}: expected ${body} body bytes, a ${keyLen}-byte key and its hash add to ${RECORD_HEADER_BYTES - 4 + keyLen + KEY_HASH_BYTES}`);
  }
  return opaqueView(RECORD_KIND_KEYED_PART, offset, body);
}

/** A record that is not one event: only its kind, size and end are read here. */
function opaqueView(kind: number, offset: number, body: number): RecordView {
  const next = offset + 4 + body;
  return { kind, body, timestamp: 0, value: null, eventTypeStart: next, eventTypeLen: 0, userIdStart: next, userIdLen: 0, metadataStart: next, metadataLen: 0, hasMetadata: false, next };
}

/** An Idempotency-Key request's part on one shard, announced by a KEYED_PART marker. */
export interface KeyedPart {
  key: string;
  /** SHA-256 of route + body */
  hash: Uint8Array;
  /** ms the request arrived (its key expires `idempotencyWindow` later) */
  at: number;
  /** events of the whole request, and shards it spans */
  total: number;
  parts: number;
  /** the request asked for ?wait=true (a 200 rather than a 202) */
  wait: boolean;
  /** event records that follow the marker on this shard */
  events: number;
}

export const keyedPartSize = (keyLength: number): number => RECORD_HEADER_BYTES + keyLength + KEY_HASH_BYTES;

/**
 * Writes a KEYED_PART marker at `offset` (the key is ASCII: the router checks its charset);
 * returns the offset after it.
 */
export function encodeKeyedPart(p: KeyedPart, buf: Uint8Array, view: DataView, offset: number): number {
  const keyLen = p.key.length;
  view.setUint32(offset, RECORD_HEADER_BYTES - 4 + keyLen + KEY_HASH_BYTES, true);
  view.setFloat64(offset + 4, p.at, true);
  view.setFloat64(offset + 12, p.total, true);
  view.setUint8(offset + 20, p.wait ? 1 : 0);
  view.setUint8(offset + 21, RECORD_KIND_KEYED_PART);
  view.setUint16(offset + 22, keyLen, true);
  view.setUint16(offset + 24, p.parts, true);
  view.setUint32(offset + 26, p.events, true);
  let q = offset + RECORD_HEADER_BYTES;
  for (let i = 0; i < keyLen; i++) buf[q++] = p.key.charCodeAt(i);
  buf.set(p.hash.subarray(0, KEY_HASH_BYTES), q);
  return q + KEY_HASH_BYTES;
}

/** Reads the KEYED_PART marker at `offset` (decodeRecord said its kind; the hash is copied). */
export function decodeKeyedPart(buf: Uint8Array, view: DataView, offset: number): KeyedPart {
  const keyLen = view.getUint16(offset + 22, true);
  const keyStart = offset + RECORD_HEADER_BYTES;
  return {
    key: String.fromCharCode(...buf.subarray(keyStart, keyStart + keyLen)),
    hash: buf.slice(keyStart + keyLen, keyStart + keyLen + KEY_HASH_BYTES),
    at: view.getFloat64(offset + 4, true),
    total: view.getFloat64(offset + 12, true),
    parts: view.getUint16(offset + 24, true),
    wait: (view.getUint8(offset + 20) & 1) === 1,
    events: view.getUint32(offset + 26, true),
  };
}
