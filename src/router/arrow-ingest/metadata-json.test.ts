import { describe, expect, it } from 'vitest';
import { canonicalMetadata, isCanonicalObject } from './metadata-json.js';

const enc = new TextEncoder();

/** The reference: what the JSON routes store for this text (null: they would refuse it). */
function reference(text: string): string | null {
  try {
    const v = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
    return JSON.stringify(v);
  } catch {
    return null;
  }
}

function canonical(text: string, depth = 32): boolean {
  const b = enc.encode(text);
  // surrounded by other bytes: the recognizer must stay inside its range
  const padded = new Uint8Array(b.length + 4);
  padded.set([0x7b, 0x22], 0);
  padded.set(b, 2);
  padded.set([0x7d, 0x7d], b.length + 2);
  const r = isCanonicalObject(padded, 2, 2 + b.length, depth);
  expect(isCanonicalObject(b, 0, b.length, depth), text).toBe(r);
  return r;
}

// A small random JSON generator, biased to the forms that are almost canonical.
function randomJson(rand: () => number, depth = 0): string {
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const ws = () => (rand() < 0.05 ? pick([' ', '\n', '\t']) : '');
  const str = () =>
    '"' +
    Array.from({ length: Math.floor(rand() * 5) }, () =>
      pick(['a', 'é', '😀', '\\"', '\\\\', '\\n', '\\t', '\\b', '\\f', '\\r', '\\u0001', '\\u001f', '\\u0041', '\\/', '\\u00e9', '\\u000a', '\\u001F', '1', ' ', '\u2028', '\u007f']),
    ).join('') +
    '"';
  const num = () => pick(['0', '-0', '1', '-1', '12', '007', '1.5', '1.50', '1e21', '1e+21', '1E3', '0.1', '1e-7', '-1.5e-7', '123456789012345678', '9007199254740993', '1e400', '100', '0.0001', '3.14159']);
  const value = (): string => {
    const r = rand();
    if (depth < 3 && r < 0.2) return randomJson(rand, depth + 1);
    if (depth < 3 && r < 0.3) return '[' + ws() + Array.from({ length: Math.floor(rand() * 3) }, value).join(',' + ws()) + ']';
    if (r < 0.55) return str();
    if (r < 0.8) return num();
    return pick(['true', 'false', 'null']);
  };
  const keys = Array.from({ length: Math.floor(rand() * 4) }, () => (rand() < 0.1 ? pick(['"0"', '"1"', '"01"', '"4294967295"', '"4294967294"']) : rand() < 0.1 ? '"a"' : str()));
  return '{' + ws() + keys.map((k) => k + ws() + ':' + ws() + value()).join(',' + ws()) + ws() + '}';
}

describe('isCanonicalObject', () => {
  it('is true only for object text JSON.stringify(JSON.parse(text)) gives back byte for byte (5,000 random texts)', () => {
    let s = 12345;
    const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
    let yes = 0;
    for (let i = 0; i < 5000; i++) {
      const text = randomJson(rand);
      const ref = reference(text);
      const ok = canonical(text);
      if (ok) {
        yes++;
        expect(ref, text).toBe(text);
      }
      // it misses no canonical text but those with array-index keys (JSON.parse may reorder
      // them: always the slow path) and long digit runs (checked by a second look)
      if (ref === text && !/\d{16}/.test(text) && !/"\d+":/.test(text)) expect(ok, text).toBe(true);
    }
    expect(yes).toBeGreaterThan(500);
  });

  it('accepts what JSON.stringify writes and refuses every near miss', () => {
    for (const t of ['{}', '{"a":1}', '{"plan":"pro","page":"/p/1"}', '{"a":{"b":[1,2,{"c":null}]},"d":true}', '{"e":"\\u0001\\n\\"x\\\\"}', '{"n":-1.5e-7,"m":1e+21}', '{"k":"é😀\u2028"}']) {
      expect(JSON.stringify(JSON.parse(t))).toBe(t);
      expect(canonical(t), t).toBe(true);
    }
    for (const t of ['', '{', '{"a":1', '{"a":1}x', ' {"a":1}', '{"a": 1}', '{"a":1,}', '{"a":1,"a":2}', '{"1":1}', '{"b":1,"0":2}', '{"a":"\\u0041"}', '{"a":"\\/"}', '{"a":"\\u000a"}', '{"a":"\\u001F"}', '{"a":1.0}', '{"a":01}', '{"a":-0}', '{"a":1E3}', '{"a":NaN}', '{"a":tru}', '[1]', '"x"', '{"a":"\t"}', '{"a":"\\ud800"}', '{"a":"\\ud83d\\ude00"}']) {
      expect(canonical(t), JSON.stringify(t)).toBe(false);
    }
  });

  it('refuses text nested deeper than maxDepth', () => {
    expect(canonical('{"a":{"b":{}}}', 3)).toBe(true);
    expect(canonical('{"a":{"b":{}}}', 2)).toBe(false);
    expect(canonical('{"a":[[[]]]}', 3)).toBe(false);
  });
});

describe('canonicalMetadata', () => {
  it('rewrites valid object text as JSON.stringify does', () => {
    const out = canonicalMetadata('{ "plan" : "pro", "n": 1.0, "u": "\\u0041", "a": 1, "a": 2 }', 32);
    expect(out).toEqual({ bytes: enc.encode('{"plan":"pro","n":1,"u":"A","a":2}') });
  });

  it('names what is wrong: not JSON, not an object, too deep, too big, a lone surrogate', () => {
    expect(canonicalMetadata('{"a":', 32)).toMatchObject({ field: 'metadata', reason: expect.stringMatching(/^not valid JSON/) });
    expect(canonicalMetadata('', 32)).toMatchObject({ field: 'metadata', reason: expect.stringMatching(/^not valid JSON/) });
    expect(canonicalMetadata('[1,2]', 32)).toEqual({ field: 'metadata', reason: 'expected a JSON object, got array' });
    expect(canonicalMetadata('"x"', 32)).toEqual({ field: 'metadata', reason: 'expected a JSON object, got string' });
    expect(canonicalMetadata('null', 32)).toEqual({ field: 'metadata', reason: 'expected a JSON object, got null' });
    expect(canonicalMetadata('{"a":{"b":{"c":1}}}', 2)).toMatchObject({ field: 'metadata', reason: expect.stringMatching(/maxJsonDepth \(2\)/) });
    expect(canonicalMetadata(`{"a": "${'x'.repeat(5000)}"}`, 32)).toEqual({ field: 'metadata', reason: 'serialized size 5008 bytes exceeds 4096' });
    expect(canonicalMetadata('{"a":{"b":"x\\udc00"}}', 32)).toEqual({ field: 'metadata.a.b', reason: 'not well-formed Unicode (contains a lone surrogate)' });
  });
});
