/**
 * Event validation: unknown JSON → an encodable event, or field errors. Pure.
 *
 * Rules (docs/API.md): event_type string 1–64 chars; user_id string 1–128 chars; timestamp
 * epoch-ms integer or ISO-8601 string (absent → receive time); value finite number or
 * null/absent; metadata a JSON object of at most 4 KiB serialized. Unknown fields are rejected
 * so nothing a client sends is dropped silently.
 */
import type { EncodableEvent } from '../shards/ring-record.js';
import type { FieldError } from './http-error.js';

export const EVENT_FIELDS = ['timestamp', 'event_type', 'user_id', 'value', 'metadata'] as const;
export const MAX_EVENT_TYPE_CHARS = 64;
export const MAX_USER_ID_CHARS = 128;
export const MAX_METADATA_BYTES = 4096;
// Year 0001 .. 9999 in epoch ms: anything else is almost surely seconds/µs confusion or garbage.
const MIN_TS = -62135596800000;
const MAX_TS = 253402300799999;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

const encoder = new TextEncoder();
// Event types repeat endlessly; caching their bytes saves an encode per event.
const eventTypeBytes = new Map<string, Uint8Array>();

function encodeEventType(s: string): Uint8Array {
  let b = eventTypeBytes.get(s);
  if (!b) {
    b = encoder.encode(s);
    if (eventTypeBytes.size < 10_000) eventTypeBytes.set(s, b);
  }
  return b;
}

export function parseTimestamp(raw: unknown): number | string {
  if (typeof raw === 'number') {
    if (!Number.isInteger(raw)) return 'expected an integer number of epoch milliseconds';
    if (raw < MIN_TS || raw > MAX_TS) return `epoch milliseconds out of range (${raw})`;
    return raw;
  }
  if (typeof raw === 'string') {
    if (!ISO_8601.test(raw)) return `expected epoch ms or an ISO-8601 string, got ${JSON.stringify(raw.slice(0, 40))}`;
    const ms = Date.parse(raw);
    if (Number.isNaN(ms)) return `not a valid date: ${JSON.stringify(raw.slice(0, 40))}`;
    return ms;
  }
  return `expected epoch ms or an ISO-8601 string, got ${raw === null ? 'null' : typeof raw}`;
}

function checkString(raw: unknown, field: string, max: number, errors: FieldError[], index: number | undefined): string | null {
  if (raw === undefined || raw === null) {
    errors.push({ ...(index !== undefined ? { index } : {}), field, reason: 'required' });
    return null;
  }
  if (typeof raw !== 'string') {
    errors.push({ ...(index !== undefined ? { index } : {}), field, reason: `expected a string, got ${Array.isArray(raw) ? 'array' : typeof raw}` });
    return null;
  }
  if (raw.length < 1 || raw.length > max) {
    errors.push({ ...(index !== undefined ? { index } : {}), field, reason: `expected 1–${max} characters, got ${raw.length}` });
    return null;
  }
  return raw;
}

/**
 * Validates one event. Pushes its errors (with `index` when given) and returns null, or returns
 * the encodable event.
 */
export function validateEvent(raw: unknown, receivedAt: number, errors: FieldError[], index?: number): EncodableEvent | null {
  const at = index !== undefined ? { index } : {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    errors.push({ ...at, field: '(event)', reason: `expected a JSON object, got ${raw === null ? 'null' : Array.isArray(raw) ? 'array' : typeof raw}` });
    return null;
  }
  const before = errors.length;
  const obj = raw as Record<string, unknown>;
  for (const key in obj) {
    if (!(EVENT_FIELDS as readonly string[]).includes(key)) {
      errors.push({ ...at, field: key, reason: `unknown field; allowed: ${EVENT_FIELDS.join(', ')}` });
    }
  }
  const eventType = checkString(obj.event_type, 'event_type', MAX_EVENT_TYPE_CHARS, errors, index);
  const userId = checkString(obj.user_id, 'user_id', MAX_USER_ID_CHARS, errors, index);

  let timestamp = receivedAt;
  if (obj.timestamp !== undefined) {
    const ts = parseTimestamp(obj.timestamp);
    if (typeof ts === 'string') errors.push({ ...at, field: 'timestamp', reason: ts });
    else timestamp = ts;
  }

  let value: number | null = null;
  if (obj.value !== undefined && obj.value !== null) {
    if (typeof obj.value !== 'number' || !Number.isFinite(obj.value)) {
      errors.push({ ...at, field: 'value', reason: `expected a finite number or null, got ${typeof obj.value === 'number' ? String(obj.value) : typeof obj.value}` });
    } else {
      value = obj.value;
    }
  }

  let metadata: Uint8Array | null = null;
  if (obj.metadata !== undefined && obj.metadata !== null) {
    if (typeof obj.metadata !== 'object' || Array.isArray(obj.metadata)) {
      errors.push({ ...at, field: 'metadata', reason: `expected a JSON object, got ${Array.isArray(obj.metadata) ? 'array' : typeof obj.metadata}` });
    } else {
      metadata = encoder.encode(JSON.stringify(obj.metadata));
      if (metadata.length > MAX_METADATA_BYTES) {
        errors.push({ ...at, field: 'metadata', reason: `serialized size ${metadata.length} bytes exceeds ${MAX_METADATA_BYTES}` });
      }
    }
  }

  if (errors.length > before || eventType === null || userId === null) return null;
  return { timestamp, value, eventType: encodeEventType(eventType), userId, metadata };
}

/** Errors reported per rejected batch: enough to fix a client, bounded for a huge bad batch. */
export const MAX_REPORTED_ERRORS = 20;

/** Validates a whole batch; returns events only when every one is valid. */
export function validateBatch(raws: unknown[], receivedAt: number): { events: EncodableEvent[] } | { errors: FieldError[]; total: number } {
  const events: EncodableEvent[] = new Array(raws.length);
  const errors: FieldError[] = [];
  let total = 0;
  for (let i = 0; i < raws.length; i++) {
    const local: FieldError[] = [];
    const e = validateEvent(raws[i], receivedAt, local, i);
    if (e) events[i] = e;
    else {
      total += local.length;
      for (const err of local) if (errors.length < MAX_REPORTED_ERRORS) errors.push(err);
    }
  }
  return total > 0 ? { errors, total } : { events };
}
