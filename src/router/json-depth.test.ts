import { describe, expect, it } from 'vitest';
import { countOpenBrackets, jsonDepthExceeded } from './json-depth.js';

/** Independent reference: the nesting depth of a parsed value, recursively. */
function depthOf(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depthOf));
  if (typeof v === 'object' && v !== null) return 1 + Math.max(0, ...Object.values(v).map(depthOf));
  return 0;
}

function randomValue(rand: () => number, depth: number): unknown {
  const r = rand();
  if (depth > 6 || r < 0.3) {
    // Strings full of the characters the scanner must not count: brackets, quotes, backslashes.
    const pieces = ['[', ']', '{', '}', '"', '\\', '\\"', 'a', '\\\\', 'é', '😀', ':', ','];
    return rand() < 0.5 ? Array.from({ length: Math.floor(rand() * 6) }, () => pieces[Math.floor(rand() * pieces.length)]).join('') : Math.floor(rand() * 100);
  }
  const n = Math.floor(rand() * 4);
  if (r < 0.65) return Array.from({ length: n }, () => randomValue(rand, depth + 1));
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}[{"\\`, randomValue(rand, depth + 1)]));
}

describe('jsonDepthExceeded', () => {
  it('agrees with a recursive depth count on 3,000 random documents, at every limit', () => {
    let s = 11;
    const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
    for (let i = 0; i < 3000; i++) {
      const value = randomValue(rand, 0);
      const text = JSON.stringify(value);
      const depth = depthOf(value);
      for (const limit of [depth - 1, depth, depth + 1]) {
        if (limit < 0) continue;
        const at = jsonDepthExceeded(text, limit);
        expect(at >= 0, `${text} limit ${limit} depth ${depth}`).toBe(depth > limit);
        if (at >= 0) expect('[{').toContain(text[at]);
      }
    }
  });

  it('points at the bracket that opens the first level over the limit', () => {
    expect(jsonDepthExceeded('{"a":[[1]]}', 2)).toBe(6);
    expect(jsonDepthExceeded('{"a":[[1]]}', 3)).toBe(-1);
    expect(jsonDepthExceeded('[[],[],[]]', 2)).toBe(-1);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(jsonDepthExceeded(JSON.stringify({ a: '[[[[{{{{', b: 'x\\"[[[[', c: '\\\\"' }), 1)).toBe(-1);
    expect(jsonDepthExceeded('["\\\\",[[1]]]', 2)).toBe(7);
  });

  it('scans 200,000 levels without recursion', () => {
    const deep = '{"metadata":' + '{"a":'.repeat(200_000) + '1' + '}'.repeat(200_000) + '}';
    expect(jsonDepthExceeded(deep, 32)).toBe(12 + 5 * 31);
    expect(jsonDepthExceeded('['.repeat(200_000), 32)).toBe(32);
  });

  it('leaves malformed text to JSON.parse (an unterminated string ends the scan)', () => {
    expect(jsonDepthExceeded('["abc', 0)).toBe(0);
    expect(jsonDepthExceeded('"abc[[[', 0)).toBe(-1);
  });
});

describe('countOpenBrackets', () => {
  it('counts every [ and {, inside strings too, on 1,000 random documents', () => {
    let s = 17;
    const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
    for (let i = 0; i < 1000; i++) {
      const text = JSON.stringify(randomValue(rand, 0));
      expect(countOpenBrackets(text), text).toBe([...text].filter((ch) => ch === '[' || ch === '{').length);
    }
    expect(countOpenBrackets('')).toBe(0);
    expect(countOpenBrackets('{"a":"[{"}')).toBe(3);
  });
});
