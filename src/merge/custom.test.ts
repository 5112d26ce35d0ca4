/**
 * Property tests of the custom-plugin merge: random plugin output rows, split at random (skewed
 * sizes) over 1–8 shards, encoded as Arrow IPC partials the way the polars side sends them; the
 * merged answer must equal a brute force over all rows at once.
 */
import { describe, expect, it } from 'vitest';
import { Float64, Int64, Table, Utf8, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import { compareCells, mergeCustomTask, type Cell, type CustomMergeRule, type CustomRow } from './custom.js';
import { closeTo, rng } from '../../test/helpers/random-events.js';

interface Row {
  plan: string | null;
  page: string | null;
  n: number;
  amount: number | null;
}

const PLANS = ['free', 'pro', 'team', 'ünï', '😀', null];

function makeRows(r: () => number, count: number, keys: number): Row[] {
  return Array.from({ length: count }, () => ({
    plan: PLANS[Math.floor(r() * PLANS.length)]!,
    page: r() < 0.05 ? null : `/p/${Math.floor(r() * r() * keys)}`,
    n: Math.floor(r() * 50),
    amount: r() < 0.2 ? null : Math.round((r() * 2000 - 500) * 100) / 100,
  }));
}

/** The partial a plugin returns: the string `keys` columns, then `n` (Int64) and `amount` (Float64). */
function encode(rows: Row[], keys: Array<'plan' | 'page'> = ['plan', 'page'], withAmount = true): Uint8Array {
  const cols: Record<string, Vector> = {};
  for (const k of keys) cols[k] = vectorFromArray(rows.map((x) => x[k]), new Utf8());
  cols.n = vectorFromArray(rows.map((x) => BigInt(x.n)), new Int64());
  if (withAmount) cols.amount = vectorFromArray(rows.map((x) => x.amount), new Float64());
  return tableToIPC(new Table(cols), 'stream');
}

/** Random split with skewed shard sizes (a shard may get nothing). */
function split<T>(r: () => number, items: T[]): T[][] {
  const shards = 1 + Math.floor(r() * 8);
  const weights = Array.from({ length: shards }, () => r() ** 3);
  const total = weights.reduce((a, b) => a + b, 0) || 1;
  const parts: T[][] = weights.map(() => []);
  for (const item of items) {
    let x = r() * total;
    let i = 0;
    while (i < shards - 1 && x >= weights[i]!) x -= weights[i++]!;
    parts[i]!.push(item);
  }
  return parts;
}

/** Brute force: one pass over every row, grouping with a Map and exact-ish float sums. */
function bruteSum(rows: Row[], keys: Array<keyof Row>): Array<{ keys: Cell[]; n: number; amount: number | null }> {
  const groups = new Map<string, { keys: Cell[]; n: number; amount: number | null }>();
  for (const row of rows) {
    const k = keys.map((key) => row[key]);
    const id = JSON.stringify(k);
    const g = groups.get(id) ?? { keys: k, n: 0, amount: null };
    g.n += row.n;
    if (row.amount !== null) g.amount = (g.amount ?? 0) + row.amount;
    groups.set(id, g);
  }
  return [...groups.values()];
}

function byKeys(a: { keys: Cell[] }, b: { keys: Cell[] }): number {
  for (let i = 0; i < a.keys.length; i++) {
    const c = compareCells(a.keys[i]!, b.keys[i]!);
    if (c !== 0) return c;
  }
  return 0;
}

function expectRowsClose(actual: CustomRow[], expected: Array<{ keys: Cell[]; n: number; amount: number | null }>, keys: string[]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, i) => {
    const e = expected[i]!;
    expect(keys.map((k) => row[k])).toEqual(e.keys);
    expect(row.n).toBe(e.n);
    expect(closeTo(row.amount as number | null, e.amount)).toBe(true);
  });
}

describe('custom merge: sum by keys', () => {
  it('equals the sum over all rows, for random data split over 1–8 shards', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const r = rng(seed);
      const rows = makeRows(r, Math.floor(r() * 3000), 1 + Math.floor(r() * 200));
      const keys: Array<'plan' | 'page'> = seed % 2 ? ['plan'] : ['plan', 'page'];
      const rule: CustomMergeRule = { kind: 'sum', keys };
      const merged = mergeCustomTask({ name: 't', merge: rule }, split(r, rows).map((p) => encode(p, keys))).results;
      expectRowsClose(merged, bruteSum(rows, keys).sort(byKeys), keys);
    }
  });

  it('treats a column missing from one shard as null there', () => {
    const rows: Row[] = [
      { plan: 'a', page: '/1', n: 1, amount: 2.5 },
      { plan: 'a', page: '/1', n: 3, amount: 4 },
    ];
    const merged = mergeCustomTask({ name: 't', merge: { kind: 'sum', keys: ['plan'] } }, [encode([rows[0]!], ['plan'], false), encode([rows[1]!], ['plan'])]).results;
    expect(merged).toEqual([{ plan: 'a', n: 4, amount: 4 }]);
  });

  it('with no keys adds everything into one row, and nothing into no row', () => {
    const r = rng(7);
    const rows = makeRows(r, 500, 10);
    const merged = mergeCustomTask({ name: 't', merge: { kind: 'sum', keys: [] } }, split(r, rows).map((p) => encode(p, []))).results;
    expect(merged).toHaveLength(1);
    expect(merged[0]!.n).toBe(rows.reduce((a, x) => a + x.n, 0));
    expect(mergeCustomTask({ name: 't', merge: { kind: 'sum', keys: [] } }, [encode([], [])]).results).toEqual([]);
  });

  it('rejects a non-numeric value column with a message naming it', () => {
    const ipc = tableToIPC(new Table({ k: vectorFromArray(['a'], new Utf8()), label: vectorFromArray(['x'], new Utf8()) }), 'stream');
    expect(() => mergeCustomTask({ name: 'bad', merge: { kind: 'sum', keys: ['k'] } }, [ipc])).toThrow(/`label`/);
  });
});

describe('custom merge: top-n', () => {
  it('equals the top n of the sums over all rows (ties by key), by a key spread thinly over many shards', () => {
    for (let seed = 100; seed < 140; seed++) {
      const r = rng(seed);
      // Few rows per key and many shards: each key's total is split over shards.
      const rows = makeRows(r, Math.floor(r() * 4000), 1 + Math.floor(r() * 2000));
      const n = 1 + Math.floor(r() * 30);
      const order = seed % 3 === 0 ? 'asc' : 'desc';
      const by = seed % 2 ? 'n' : 'amount';
      const rule: CustomMergeRule = { kind: 'top-n', keys: ['page'], by, n, order };
      const merged = mergeCustomTask({ name: 't', merge: rule }, split(r, rows).map((p) => encode(p, ['page']))).results;
      const sign = order === 'desc' ? -1 : 1;
      const expected = bruteSum(rows, ['page'])
        .sort((a, b) => {
          const x = by === 'n' ? a.n : a.amount;
          const y = by === 'n' ? b.n : b.amount;
          if (x !== y) {
            if (x === null) return 1;
            if (y === null) return -1;
            return sign * (x < y ? -1 : 1);
          }
          return byKeys(a, b);
        })
        .slice(0, n);
      // Float sums can differ in the last bits with summation order, which may reorder near-ties:
      // compare the integer ranking exactly and the float ranking by score.
      if (by === 'n') expectRowsClose(merged, expected, ['page']);
      else {
        expect(merged.length).toBe(expected.length);
        merged.forEach((row, i) => expect(closeTo(row.amount as number | null, expected[i]!.amount)).toBe(true));
      }
    }
  });
});

describe('custom merge: concat', () => {
  it('returns every shard’s rows in shard order, the same multiset as all rows', () => {
    for (let seed = 200; seed < 220; seed++) {
      const r = rng(seed);
      const rows = makeRows(r, Math.floor(r() * 1000), 50);
      const parts = split(r, rows);
      const merged = mergeCustomTask({ name: 't', merge: { kind: 'concat' } }, parts.map((p) => encode(p))).results;
      expect(merged).toEqual(parts.flat().map((x) => ({ plan: x.plan, page: x.page, n: x.n, amount: x.amount })));
      const canon = (xs: object[]) => xs.map((x) => JSON.stringify(x)).sort();
      expect(canon(merged)).toEqual(canon(rows.map((x) => ({ plan: x.plan, page: x.page, n: x.n, amount: x.amount }))));
    }
  });
});

describe('compareCells', () => {
  it('orders numbers, booleans, strings by code point, nulls last', () => {
    const cells: Cell[] = [null, 'b', '\uffff', '😀', 'a', true, 2, -1, false];
    expect([...cells].sort(compareCells)).toEqual([-1, 2, false, true, 'a', 'b', '\uffff', '😀', null]);
  });
});
