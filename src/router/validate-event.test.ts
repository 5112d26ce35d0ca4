import { describe, expect, it } from 'vitest';
import type { FieldError } from './http-error.js';
import { formatDuration, illFormedMetadataPath, parseTimestamp, validateBatch, validateEvent } from './validate-event.js';

const ok = { event_type: 'click', user_id: 'u1', value: 2.5, timestamp: 1_700_000_000_000 };

function errorsOf(raw: unknown): FieldError[] {
  const errors: FieldError[] = [];
  expect(validateEvent(raw, 123, errors)).toBeNull();
  return errors;
}

describe('event validation', () => {
  it('accepts a full event and fills the receive time when timestamp is absent', () => {
    const errors: FieldError[] = [];
    const e = validateEvent({ event_type: 'click', user_id: 'u1' }, 555, errors)!;
    expect(errors).toEqual([]);
    expect(e.timestamp).toBe(555);
    expect(e.value).toBeNull();
    expect(e.metadata).toBeNull();
  });

  it('parses ISO-8601 timestamps to epoch ms', () => {
    const e = validateEvent({ ...ok, timestamp: '2026-01-02T03:04:05.678Z' }, 0, [])!;
    expect(e.timestamp).toBe(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
  });

  it.each([
    [{ user_id: 'u' }, 'event_type', /required/],
    [{ ...ok, event_type: '' }, 'event_type', /1–64/],
    [{ ...ok, event_type: 'x'.repeat(65) }, 'event_type', /1–64/],
    [{ ...ok, event_type: 7 }, 'event_type', /expected a string/],
    [{ ...ok, user_id: 'x'.repeat(129) }, 'user_id', /1–128/],
    [{ ...ok, value: 'abc' }, 'value', /finite number/],
    [{ ...ok, timestamp: 1.5 }, 'timestamp', /integer/],
    [{ ...ok, timestamp: 'yesterday' }, 'timestamp', /ISO-8601/],
    [{ ...ok, timestamp: '2026-13-45T00:00:00Z' }, 'timestamp', /not a real date: month 13/],
    [{ ...ok, metadata: [1, 2] }, 'metadata', /JSON object/],
    [{ ...ok, metadata: { big: 'x'.repeat(5000) } }, 'metadata', /exceeds 4096/],
    [{ ...ok, extra: 1 }, 'extra', /unknown field/],
  ])('rejects %j naming field %s', (raw, field, reason) => {
    const errors = errorsOf(raw);
    const e = errors.find((x) => x.field === field);
    expect(e, JSON.stringify(errors)).toBeDefined();
    expect(e!.reason).toMatch(reason);
  });

  it('rejects a batch whole, naming the index and field of each bad event', () => {
    const raws = [ok, ok, ok, { ...ok, value: 'NaN' }, ok, { ...ok, user_id: null }];
    const result = validateBatch(raws, 0);
    expect('errors' in result).toBe(true);
    if ('errors' in result) {
      expect(result.errors).toEqual([
        { index: 3, field: 'value', reason: expect.stringMatching(/finite number/) },
        { index: 5, field: 'user_id', reason: 'required' },
      ]);
      expect(result.total).toBe(2);
    }
  });
});

describe('well-formed Unicode', () => {
  it.each([
    [{ ...ok, event_type: 'a\ud800' }, 'event_type'],
    [{ ...ok, user_id: 'a\ud800' }, 'user_id'],
    [{ ...ok, user_id: 'a\udc00' }, 'user_id'],
    [{ ...ok, user_id: '\udc00\ud800' }, 'user_id'],
    [{ ...ok, metadata: { page: 'a\ud800' } }, 'metadata.page'],
    [{ ...ok, metadata: { ['k\udc00']: 1 } }, 'metadata.k\\udc00'],
    [{ ...ok, metadata: { a: { b: ['x', 'y\udc00'] } } }, 'metadata.a.b[1]'],
  ])('rejects a lone surrogate in %j naming %s', (raw, field) => {
    const errors = errorsOf(raw);
    expect(errors, JSON.stringify(errors)).toEqual([{ field, reason: expect.stringMatching(/lone surrogate/) }]);
  });

  it('accepts surrogate pairs (emoji) and other non-ASCII text anywhere', () => {
    const errors: FieldError[] = [];
    const e = validateEvent({ ...ok, event_type: 'view 👀', user_id: 'ünï 😀', metadata: { 'kéy 🎉': ['ok 𝄞', { deep: 'ß' }] } }, 0, errors);
    expect(errors).toEqual([]);
    expect(e!.userId).toBe('ünï 😀');
  });

  it('finds an ill-formed string at any depth of metadata, first in document order', () => {
    expect(illFormedMetadataPath({ a: 1, b: [true, null, { c: 'ok' }] })).toBeNull();
    expect(illFormedMetadataPath({ a: 'x\ud800', b: 'y\ud800' })).toBe('metadata.a');
    expect(illFormedMetadataPath({ a: [[['\udfff']]] })).toBe('metadata.a[0][0][0]');
  });
});

describe('ISO-8601 timestamps', () => {
  it.each([
    ['2026-02-31', /day 31 of 2026-02/],
    ['2026-02-29T00:00:00Z', /day 29 of 2026-02/],
    ['2026-13-01', /month 13/],
    ['2026-00-10', /month 00/],
    ['2026-04-31T10:00:00Z', /day 31 of 2026-04/],
    ['2026-01-00', /day 00/],
    ['2026-02-28T25:00:00Z', /hour 25/],
    ['2026-02-28T24:00:00Z', /hour 24/],
    ['2026-02-28T10:60:00Z', /minute 60/],
    ['2026-02-28T10:00:60Z', /second 60/],
    ['2026-02-28T10:00:00+24:00', /UTC offset/],
    ['2026-02-28T10:00:00+05:60', /UTC offset/],
    ['0000-12-31T23:59:59Z', /outside years 0001–9999/],
    ['2026-2-28', /ISO-8601/],
    ['2026-02-28T10:00:00z', /ISO-8601/],
  ])('rejects %s', (raw, reason) => {
    const r = parseTimestamp(raw);
    expect(typeof r, String(r)).toBe('string');
    expect(r).toMatch(reason);
    expect(errorsOf({ ...ok, timestamp: raw })).toEqual([{ field: 'timestamp', reason: r }]);
  });

  it.each([
    ['2024-02-29', Date.UTC(2024, 1, 29)],
    ['2000-02-29T12:00Z', Date.UTC(2000, 1, 29, 12)],
    ['2026-03-01T00:00:00', Date.UTC(2026, 2, 1)],
    ['2026-03-01 10:20:30.5', Date.UTC(2026, 2, 1, 10, 20, 30, 500)],
    ['2026-03-01T10:20:30.123456789Z', Date.UTC(2026, 2, 1, 10, 20, 30, 123)],
    ['2026-03-01T10:20:30+02:00', Date.UTC(2026, 2, 1, 8, 20, 30)],
    ['2026-03-01T00:20:30-0530', Date.UTC(2026, 2, 1, 5, 50, 30)],
    ['0001-01-01T00:00:00Z', -62135596800000],
    ['9999-12-31T23:59:59.999Z', 253402300799999],
  ])('reads %s (no zone → UTC)', (raw, expected) => {
    expect(parseTimestamp(raw)).toBe(expected);
  });

  it('agrees with Date.parse on 2,000 random real instants with a zone', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    const pad = (v: number, w = 2) => String(v).padStart(w, '0');
    for (let i = 0; i < 2000; i++) {
      const ms = rand(2 ** 31) * 1000 + rand(1000) + (rand(2) ? 1_000_000_000_000 : 0);
      const d = new Date(ms);
      const off = (rand(2) ? 1 : -1) * (rand(14) * 60 + rand(4) * 15);
      const local = new Date(ms + off * 60_000);
      const zone = off === 0 ? 'Z' : `${off < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
      const text = `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}T${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}.${pad(local.getUTCMilliseconds(), 3)}${zone}`;
      expect(parseTimestamp(text), text).toBe(d.getTime());
      expect(parseTimestamp(text), text).toBe(Date.parse(text));
    }
  });

  it('with maxFutureSkew, rejects a batch whole when one timestamp is too far ahead of the receive time, naming index and timestamp', () => {
    const now = Date.UTC(2026, 5, 1);
    const day = 86_400_000;
    const raws = [
      { ...ok, timestamp: now + day },
      { ...ok, timestamp: now - 365 * day },
      { ...ok, timestamp: new Date(now + day + 1).toISOString() },
      { ...ok, timestamp: now + 30 * day },
      { event_type: 'x', user_id: 'u' },
    ];
    const result = validateBatch(raws, now, day);
    expect('errors' in result && result.errors.map((e) => [e.index, e.field])).toEqual([
      [2, 'timestamp'],
      [3, 'timestamp'],
    ]);
    if ('errors' in result) {
      expect(result.errors[1]!.reason).toBe(
        '2026-07-01T00:00:00.000Z is 30d ahead of the receive time 2026-06-01T00:00:00.000Z; at most maxFutureSkew (1d) ahead',
      );
    }
    // exactly maxFutureSkew ahead is accepted; without the setting nothing is too far ahead
    expect('events' in validateBatch([raws[0], raws[1], raws[4]], now, day)).toBe(true);
    expect('events' in validateBatch(raws, now)).toBe(true);
    const single: FieldError[] = [];
    expect(validateEvent(raws[3], now, single, undefined, day)).toBeNull();
    expect(single).toEqual([{ field: 'timestamp', reason: expect.stringMatching(/30d ahead .* maxFutureSkew \(1d\)/) }]);
  });

  it('formats durations in the largest whole unit', () => {
    expect([86_400_000, 5_400_000, 90_000, 1500, 0].map(formatDuration)).toEqual(['1d', '90m', '90s', '1500ms', '0ms']);
  });
});
