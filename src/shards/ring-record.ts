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
 */

export const RECORD_HEADER_BYTES = 4 + 8 + 8 + 1 + 1 + 2 + 2 + 4;
export const FLAG_VALUE = 1;
export const FLAG_METADATA = 2;

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
