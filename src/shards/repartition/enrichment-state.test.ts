import { describe, expect, it } from 'vitest';
import { Null, Table, Utf8, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import { EnrichmentState } from './enrichment-state.js';

/** An upsert body as the router encodes it: `user_id` then String columns. */
function rows(columns: Record<string, Array<string | null>>): Uint8Array {
  const vectors: Record<string, Vector> = {};
  for (const [name, values] of Object.entries(columns)) vectors[name] = vectorFromArray(values, new Utf8());
  return tableToIPC(new Table(vectors), 'stream');
}

const table = (s: EnrichmentState, name: string) => {
  const t = s.tables.get(name);
  return t ? { columns: t.columns, rows: Object.fromEntries(t.rows) } : undefined;
};

describe('enrichment tables folded from a shard log (as polars applies the records)', () => {
  it('replaces a user row whole, adds new columns (null for rows held), lets the last row of a user win', () => {
    const s = new EnrichmentState(64);
    s.upsert('plans', rows({ user_id: ['a', 'b'], plan: ['free', 'pro'], seats: ['1', '2'] }));
    s.upsert('plans', rows({ user_id: ['b', 'c', 'b'], plan: ['team', 'free', 'pro2'], region: ['eu', null, 'us'] }));
    expect(table(s, 'plans')).toEqual({
      columns: ['plan', 'seats', 'region'],
      rows: { a: ['free', '1', null], c: ['free', null, null], b: ['pro2', null, 'us'] },
    });
  });

  it('drops a table, and a later upsert starts it afresh', () => {
    const s = new EnrichmentState(64);
    s.upsert('t', rows({ user_id: ['a'], x: ['1'] }));
    s.drop('t');
    expect(table(s, 't')).toBeUndefined();
    s.upsert('t', rows({ user_id: ['b'], y: ['2'] }));
    expect(table(s, 't')).toEqual({ columns: ['y'], rows: { b: ['2'] } });
  });

  it('leaves out upserts polars refuses: no user_id, a null user_id, a bad column name or type, too many columns', () => {
    const s = new EnrichmentState(2);
    s.upsert('t', rows({ user_id: ['a'], x: ['1'] }));
    s.upsert('t', rows({ x: ['9'] }));
    s.upsert('t', rows({ user_id: ['b', null], x: ['2', '3'] }));
    s.upsert('t', rows({ user_id: ['c'], 'bad-name': ['4'] }));
    s.upsert('t', tableToIPC(new Table({ user_id: vectorFromArray(['d'], new Utf8()), n: vectorFromArray([1]) }), 'stream'));
    s.upsert('t', rows({ user_id: ['e'], y: ['5'], z: ['6'] }));
    expect(s.refused.map((r) => r.reason)).toEqual([
      'no `user_id` column',
      '`user_id` has nulls',
      'column name "bad-name"',
      'column n is not String',
      '3 columns, at most 2',
    ]);
    expect(table(s, 't')).toEqual({ columns: ['x'], rows: { a: ['1'] } });
    // an all-null column may arrive typed Null: accepted, values null
    s.upsert('t', tableToIPC(new Table({ user_id: vectorFromArray(['f'], new Utf8()), x: vectorFromArray([null], new Null()) }), 'stream'));
    expect(table(s, 't')!.rows.f).toEqual([null]);
  });

  it('unites the tables of several old shards (disjoint users), columns in first-seen order', () => {
    const a = new EnrichmentState(64);
    const b = new EnrichmentState(64);
    a.upsert('t', rows({ user_id: ['a1'], x: ['1'] }));
    b.upsert('t', rows({ user_id: ['b1'], y: ['2'], x: ['3'] }));
    b.upsert('only_b', rows({ user_id: ['b2'], z: ['4'] }));
    const u = EnrichmentState.union([a, b]);
    expect(u.get('t')!.columns).toEqual(['x', 'y']);
    expect(Object.fromEntries(u.get('t')!.rows)).toEqual({ a1: ['1', null], b1: ['3', '2'] });
    expect(Object.fromEntries(u.get('only_b')!.rows)).toEqual({ b2: ['4'] });
  });
});
