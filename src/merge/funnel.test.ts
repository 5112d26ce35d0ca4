import { Int64, Table, tableToIPC, vectorFromArray } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { rng } from '../../test/helpers/random-events.js';
import { finishFunnel, mergeFunnelCounts, mergeFunnelTask } from './funnel.js';

/** One shard's partial, as python/engine_polars/ops/funnel.py builds it: users with level ≥ step. */
function shardPartial(levels: number[], steps: number): Uint8Array {
  const users = Array.from({ length: steps }, (_, k) => BigInt(levels.filter((l) => l >= k + 1).length));
  const table = new Table({
    step: vectorFromArray(Array.from({ length: steps }, (_, k) => BigInt(k + 1)), new Int64()),
    users: vectorFromArray(users, new Int64()),
  });
  return tableToIPC(table, 'stream');
}

/** Brute force on the whole: per user, its level; step k counts levels ≥ k. */
function bruteCounts(levels: number[], steps: number): number[] {
  return Array.from({ length: steps }, (_, k) => levels.filter((l) => l >= k + 1).length);
}

describe('mergeFunnelTask', () => {
  it('adds per-step user counts of users split across 1–8 skewed shards to the whole-data answer', () => {
    const r = rng(31);
    for (let trial = 0; trial < 200; trial++) {
      const steps = 2 + Math.floor(r() * 19);
      const shards = 1 + Math.floor(r() * 8);
      // Levels fall off like a real funnel: each step keeps a random share of the previous one.
      const keep = r();
      const levels = Array.from({ length: Math.floor(r() * 400) }, () => {
        if (r() < 0.3) return 0;
        let l = 1;
        while (l < steps && r() < keep) l++;
        return l;
      });
      // Skewed split: squaring the draw sends most users to low shards; every user to one shard.
      const perShard: number[][] = Array.from({ length: shards }, () => []);
      for (const l of levels) perShard[Math.floor(r() * r() * shards)]!.push(l);
      const names = Array.from({ length: steps }, (_, i) => `e${i % 5}`);
      const merged = mergeFunnelTask({ steps: names }, perShard.map((ls) => shardPartial(ls, steps)));
      const brute = bruteCounts(levels, steps);
      expect(merged.steps.map((s) => s.count)).toEqual(brute);
      expect(merged.funnel.map((s) => s.count)).toEqual(brute);
      expect(merged.total_users).toBe(brute[0]);
      merged.steps.forEach((s, i) => {
        expect(s.step).toBe(i + 1);
        expect(s.event_type).toBe(names[i]);
        expect(s.rate_from_start).toBe(brute[0] === 0 ? 0 : brute[i]! / brute[0]!);
        const prev = i === 0 ? brute[0]! : brute[i - 1]!;
        expect(s.rate_from_previous).toBe(prev === 0 ? 0 : brute[i]! / prev);
        expect(merged.funnel[i]!.percentage).toBe(brute[0] === 0 ? 0 : (brute[i]! * 100) / brute[0]!);
      });
    }
  });

  it('answers zero counts and zero rates when no shard has a step-1 user', () => {
    const out = mergeFunnelTask({ steps: ['a', 'b', 'c'] }, [shardPartial([], 3), shardPartial([0, 0], 3)]);
    expect(out.total_users).toBe(0);
    for (const s of out.steps) expect([s.count, s.rate_from_start, s.rate_from_previous]).toEqual([0, 0, 0]);
    expect(out.funnel.map((s) => s.percentage)).toEqual([0, 0, 0]);
  });

  it('gives rate_from_previous 0 after a step nobody reached', () => {
    const out = finishFunnel({ steps: ['a', 'b', 'c'] }, [4, 0, 0]);
    expect(out.steps.map((s) => s.rate_from_previous)).toEqual([1, 0, 0]);
    expect(out.funnel.map((s) => s.percentage)).toEqual([100, 0, 0]);
  });

  it('rejects a partial with the wrong number of steps, naming the shard', () => {
    expect(() => mergeFunnelCounts({ steps: ['a', 'b', 'c'] }, [shardPartial([1], 3), shardPartial([1], 2)])).toThrow(/shard 1: expected 3 step rows, got 2/);
  });
});
