import { afterAll, describe, expect, it } from 'vitest';
import { defineMerge } from '../merge/merge-def.js';
import summaryMerge from '../merge/summary.js';
import { MergePool } from './merge-pool.js';

describe('MergePool', () => {
  const pool = new MergePool(1);
  afterAll(() => pool.close());

  it("merges partials up to a merge's own inlineBytes on the calling thread, and past the default without one in the pool", async () => {
    const calls: number[] = [];
    const record = (_spec: unknown, partials: Uint8Array[]) => {
      calls.push(partials[0]!.byteLength);
      return 'inline';
    };
    // 100 KB: past the default inline size
    expect(await pool.merge(defineMerge('summary', record, { inlineBytes: 200 * 1024 }), {}, [new Uint8Array(100 * 1024)])).toBe('inline');
    expect(calls).toEqual([100 * 1024]);
    // without inlineBytes the pool's worker runs src/merge/summary.ts, which refuses zero bytes as a partial
    await expect(pool.merge(defineMerge('summary', record), { columns: ['value'], shards: 1 }, [new Uint8Array(100 * 1024)])).rejects.toThrow();
    expect(calls).toEqual([100 * 1024]);
    // and past a merge's inlineBytes, the pool too
    await expect(pool.merge(defineMerge('summary', record, { inlineBytes: 50 * 1024 }), { columns: ['value'], shards: 1 }, [new Uint8Array(100 * 1024)])).rejects.toThrow();
    expect(calls).toEqual([100 * 1024]);
    expect(summaryMerge.inlineBytes).toBe(256 * 1024);
  });
});
