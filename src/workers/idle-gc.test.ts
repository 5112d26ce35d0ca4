import { describe, expect, it } from 'vitest';
import { IdleCollector, fullCollector } from './idle-gc.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('IdleCollector', () => {
  it('collects once, after the notes stop, and only past minBytes', async () => {
    let calls = 0;
    const c = new IdleCollector(60, 1000, () => calls++);
    c.note(400);
    c.note(400);
    await sleep(120);
    expect(calls).toBe(0); // 800 bytes: under minBytes
    // notes every 20 ms keep pushing the collection back while the work goes on
    for (let i = 0; i < 8; i++) {
      c.note(400);
      await sleep(20);
    }
    expect(calls).toBe(0);
    await sleep(120);
    expect(calls).toBe(1);
    expect(c.runs).toBe(1);
    // counted afresh after a collection
    c.note(500);
    await sleep(120);
    expect(calls).toBe(1);
  });

  it('cancel drops a pending collection', async () => {
    let calls = 0;
    const c = new IdleCollector(30, 1, () => calls++);
    c.note(10);
    c.cancel();
    await sleep(80);
    expect(calls).toBe(0);
  });

  it('reaches V8 full collection without --expose-gc, and it frees dead ArrayBuffers', () => {
    const gc = fullCollector();
    expect(gc).toBeTypeOf('function');
    gc!();
    const before = process.memoryUsage().arrayBuffers;
    let keep: Uint8Array[] | null = Array.from({ length: 32 }, () => new Uint8Array(1024 * 1024).fill(1));
    expect(process.memoryUsage().arrayBuffers - before).toBeGreaterThanOrEqual(30 * 1024 * 1024);
    keep = null;
    gc!();
    expect(keep).toBeNull();
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(4 * 1024 * 1024);
  });
});
