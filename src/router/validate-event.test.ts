import { describe, expect, it } from 'vitest';
import type { FieldError } from './http-error.js';
import { validateBatch, validateEvent } from './validate-event.js';

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
    [{ ...ok, timestamp: '2026-13-45T00:00:00Z' }, 'timestamp', /not a valid date/],
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
