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

  it('decodes every frame of a stream cut anywhere: several in one chunk, one body over many', () => {
    const big = Buffer.alloc(300_001);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
    const sent = [
      { header: { id: 1, ok: true }, body: Buffer.alloc(0) },
      { header: { id: 2, ok: true }, body: big },
      { header: { id: 3, ok: true, note: 'é' }, body: Buffer.from('abc') },
      { header: { id: 4, ok: true }, body: Buffer.alloc(0) },
    ];
    const stream = Buffer.concat(sent.map((f) => encodeFrame(f.header, f.body)));
    for (const cut of [1, 3, 50, 65_536, 299_999, stream.length]) {
      const reader = new FrameReader();
      const got = [];
      for (let at = 0; at < stream.length; at += cut) got.push(...reader.push(stream.subarray(at, at + cut)));
      expect(got.map((f) => f.header), `cut ${cut}`).toEqual(sent.map((f) => f.header));
      got.forEach((f, i) => {
        expect(Buffer.compare(Buffer.from(f.body), sent[i]!.body), `cut ${cut}, frame ${i}`).toBe(0);
        // each body owns its ArrayBuffer whole, so it can be transferred to another thread
        expect(f.body.byteOffset).toBe(0);
        expect(f.body.buffer.byteLength).toBe(sent[i]!.body.length);
      });
    }
  });
});
