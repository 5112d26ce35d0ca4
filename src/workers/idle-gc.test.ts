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

  it('reaches V8 full collection without --expose-gc, and it frees dead ArrayBuffers', async () => {
    const gc = fullCollector();
    expect(gc).toBeTypeOf('function');
    gc!();
    await sleep(200);
    const before = process.memoryUsage().arrayBuffers;
    // made and dropped in a frame of its own, so no stack slot of this one still holds them
    const garbage = () => {
      const made = Array.from({ length: 32 }, () => new Uint8Array(1024 * 1024).fill(1));
      return made.reduce((n, b) => n + b.length, 0);
    };
    expect(garbage()).toBe(32 * 1024 * 1024);
    // without a collection they stay: nothing else allocates here to make V8 collect
    await sleep(300);
    expect(process.memoryUsage().arrayBuffers - before).toBeGreaterThan(24 * 1024 * 1024);
    gc!();
    // the collection finds them dead; V8 frees their memory as it sweeps, just after
    let left = Infinity;
    for (let i = 0; i < 100 && left >= 4 * 1024 * 1024; i++) {
      await sleep(20);
      left = process.memoryUsage().arrayBuffers - before;
    }
    expect(left).toBeLessThan(4 * 1024 * 1024);
  });
});
