/**
 * Event validation: unknown JSON → an encodable event, or field errors. Pure.
 *
 * Rules (docs/API.md): event_type string 1–64 chars; user_id string 1–128 chars; timestamp
 * epoch-ms integer or ISO-8601 string naming a real date and time (no zone → UTC; absent →
 * receive time; with `maxFutureSkew`, at most that far ahead of the receive time); value finite
 * number or null/absent; metadata a JSON object of at most 4 KiB
 * serialized. Every string, metadata keys and nested values included, is well-formed Unicode
 * (a lone surrogate would be stored as U+FFFD and merge distinct users). Unknown fields are
 * rejected so nothing a client sends is dropped silently.
 */
import type { EncodableEvent } from '../shards/ring-record.js';
import type { FieldError } from './http-error.js';

export const EVENT_FIELDS = ['timestamp', 'event_type', 'user_id', 'value', 'metadata'] as const;
export const MAX_EVENT_TYPE_CHARS = 64;
export const MAX_USER_ID_CHARS = 128;
export const MAX_METADATA_BYTES = 4096;
// Year 0001 .. 9999 in epoch ms: anything else is almost surely seconds/µs confusion or garbage.
export const MIN_TS = -62135596800000;
export const MAX_TS = 253402300799999;
// Groups: year, month, day, hour, minute, second, fraction, zone (Z or ±hh[:]mm).
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

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

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!;
}

/** Days from 1970-01-01 to year-month-day (proleptic Gregorian; Howard Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * An ISO-8601 string to epoch ms, checking every calendar field itself: `Date.parse` rolls
 * `2026-02-31` over to March 3rd and reads a date-time without a zone as local time. Here a
 * missing zone means UTC, and an impossible date or time is an error naming the part.
 */
function parseIsoTimestamp(raw: string): number | string {
  const m = ISO_8601.exec(raw);
  // only an error shows the string: not quoted per valid timestamp
  const shown = () => JSON.stringify(raw.slice(0, 40));
  if (!m) return `expected epoch ms or an ISO-8601 string, got ${shown()}`;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const [hour, minute, second] = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  if (month < 1 || month > 12) return `not a real date: month ${m[2]} in ${shown()}`;
  if (day < 1 || day > daysInMonth(year, month)) return `not a real date: day ${m[3]} of ${year}-${m[2]} in ${shown()}`;
  if (hour > 23) return `not a real time: hour ${m[4]} in ${shown()} (00–23)`;
  if (minute > 59) return `not a real time: minute ${m[5]} in ${shown()} (00–59)`;
  if (second > 59) return `not a real time: second ${m[6]} in ${shown()} (00–59)`;
  let offsetMinutes = 0;
  const zone = m[8];
  if (zone !== undefined && zone !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const [oh, om] = [Number(digits.slice(0, 2)), Number(digits.slice(2))];
    if (oh > 23 || om > 59) return `not a real UTC offset: ${zone} in ${shown()}`;
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  // Sub-millisecond digits are dropped (truncated), as Date.parse does.
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  const epoch = ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute - offsetMinutes) * 60_000 + second * 1000 + ms;
  if (epoch < MIN_TS || epoch > MAX_TS) return `${shown()} is outside years 0001–9999 UTC`;
  return epoch;
}

/**
 * A timestamp (epoch-ms integer or ISO-8601 string) to epoch ms, or the reason it is not one.
 * Also used by query filters (`from`, `to`).
 */
export function parseTimestamp(raw: unknown): number | string {
  if (typeof raw === 'number') {
    if (!Number.isInteger(raw)) return 'expected an integer number of epoch milliseconds';
    if (raw < MIN_TS || raw > MAX_TS) return `epoch milliseconds out of range (${raw})`;
    return raw;
  }
  if (typeof raw === 'string') return parseIsoTimestamp(raw);
  return `expected epoch ms or an ISO-8601 string, got ${raw === null ? 'null' : typeof raw}`;
}

export const LONE_SURROGATE = 'not well-formed Unicode (contains a lone surrogate)';

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
  if (!raw.isWellFormed()) {
    errors.push({ ...(index !== undefined ? { index } : {}), field, reason: LONE_SURROGATE });
    return null;
  }
  return raw;
}

/** The path of the first key or string value in `metadata` that is not well-formed, or null. */
export function illFormedMetadataPath(metadata: object): string | null {
  // Iterative: depth is bounded by maxJsonDepth before parsing, but this must not rely on it.
  const stack: Array<[value: unknown, path: string]> = [[metadata, 'metadata']];
  while (stack.length > 0) {
    const [value, path] = stack.pop()!;
    if (typeof value === 'string') {
      if (!value.isWellFormed()) return path;
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push([value[i], `${path}[${i}]`]);
    } else if (typeof value === 'object' && value !== null) {
      const keys = Object.keys(value);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        // A bad key is named escaped, so the message itself stays well-formed.
        if (!key.isWellFormed()) return `${path}.${JSON.stringify(key).slice(1, -1)}`;
        stack.push([(value as Record<string, unknown>)[key], `${path}.${key}`]);
      }
    }
  }
  return null;
}

const DURATION_UNITS: Array<[unit: string, ms: number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** ms as the largest whole unit config uses: 86400000 → "1d", 5400000 → "90m", 1500 → "1500ms". */
export function formatDuration(ms: number): string {
  for (const [unit, size] of DURATION_UNITS) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** Why `timestamp` is too far in the future, or null. */
export function futureSkewReason(timestamp: number, receivedAt: number, maxFutureSkewMs: number): string | null {
  const ahead = timestamp - receivedAt;
  if (ahead <= maxFutureSkewMs) return null;
  return (
    `${new Date(timestamp).toISOString()} is ${formatDuration(ahead)} ahead of the receive time ${new Date(receivedAt).toISOString()}; ` +
    `at most maxFutureSkew (${formatDuration(maxFutureSkewMs)}) ahead`
  );
}

/**
 * Validates one event. Pushes its errors (with `index` when given) and returns null, or returns
 * the encodable event. `maxFutureSkewMs` (config `maxFutureSkew`; null: no bound) rejects a
 * timestamp more than that far ahead of `receivedAt`.
 */
export function validateEvent(raw: unknown, receivedAt: number, errors: FieldError[], index?: number, maxFutureSkewMs: number | null = null): EncodableEvent | null {
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
    const skew = typeof ts === 'number' && maxFutureSkewMs !== null ? futureSkewReason(ts, receivedAt, maxFutureSkewMs) : null;
    if (typeof ts === 'string') errors.push({ ...at, field: 'timestamp', reason: ts });
    else if (skew !== null) errors.push({ ...at, field: 'timestamp', reason: skew });
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
      } else {
        const bad = illFormedMetadataPath(obj.metadata);
        if (bad !== null) errors.push({ ...at, field: bad, reason: LONE_SURROGATE });
      }
    }
  }

  if (errors.length > before || eventType === null || userId === null) return null;
  return { timestamp, value, eventType: encodeEventType(eventType), userId, metadata };
}

/** Errors reported per rejected batch: enough to fix a client, bounded for a huge bad batch. */
export const MAX_REPORTED_ERRORS = 20;

/** Validates a whole batch; returns events only when every one is valid (see validateEvent). */
export function validateBatch(raws: unknown[], receivedAt: number, maxFutureSkewMs: number | null = null): { events: EncodableEvent[] } | { errors: FieldError[]; total: number } {
  const events: EncodableEvent[] = new Array(raws.length);
  const errors: FieldError[] = [];
  let total = 0;
  for (let i = 0; i < raws.length; i++) {
    const local: FieldError[] = [];
    const e = validateEvent(raws[i], receivedAt, local, i, maxFutureSkewMs);
    if (e) events[i] = e;
    else {
      total += local.length;
      for (const err of local) if (errors.length < MAX_REPORTED_ERRORS) errors.push(err);
    }
  }
  return total > 0 ? { errors, total } : { events };
}
