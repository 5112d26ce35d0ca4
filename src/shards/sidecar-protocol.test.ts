import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FrameReader, encodeFrame } from './sidecar-protocol.js';

interface Vector {
  name: string;
  header: Record<string, unknown>;
  body_hex: string;
  frame_hex: string;
}

const vectors = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'test', 'vectors', 'frames.json'), 'utf8')) as Vector[];

describe('sidecar frames (vectors shared with the Python suite)', () => {
  it('has vectors to check', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(5);
  });

  it.each(vectors.map((v) => [v.name, v] as const))('encodes %s byte for byte', (_name, v) => {
    expect(encodeFrame(v.header, Buffer.from(v.body_hex, 'hex')).toString('hex')).toBe(v.frame_hex);
  });

  it.each(vectors.map((v) => [v.name, v] as const))('decodes %s even when split into 1-byte chunks', (_name, v) => {
    const reader = new FrameReader();
    const bytes = Buffer.from(v.frame_hex, 'hex');
    const frames = [];
    for (let i = 0; i < bytes.length; i++) frames.push(...reader.push(bytes.subarray(i, i + 1)));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.header).toEqual(v.header);
    expect(Buffer.from(frames[0]!.body).toString('hex')).toBe(v.body_hex);
  });
});
