import { afterAll, describe, expect, it, vi } from 'vitest';
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

  it('records an inline merge as its own run, not the merges started after it in the same tick', async () => {
    // a clock that only a merge's run moves: 10 ms per merge
    let clock = 0;
    const now = vi.spyOn(performance, 'now').mockImplementation(() => clock);
    try {
      const slow = defineMerge('summary', () => {
        clock += 10;
        return 'inline';
      });
      const recorded: number[] = [];
      const record = (ms: number) => recorded.push(ms);
      await Promise.all([0, 1, 2].map(() => pool.merge(slow, {}, [new Uint8Array(8)], Infinity, record)));
      expect(recorded).toEqual([10, 10, 10]);
      // mergeToJson alike
      recorded.length = 0;
      await Promise.all([0, 1].map(() => pool.mergeToJson(slow, {}, [new Uint8Array(8)], undefined, Infinity, record)));
      expect(recorded).toEqual([10, 10]);
    } finally {
      now.mockRestore();
    }
  });
});
