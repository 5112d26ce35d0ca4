/**
 * GET /enrichment's merge: random tables whose users are spread over 1–8 shards (each user on
 * exactly one, as routing does); the merged listing must equal the whole: rows = distinct users,
 * columns = the union.
 */
import { describe, expect, it } from 'vitest';
import { Int64, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { mergeEnrichmentTask } from './enrichment.js';
import { rng } from '../../test/helpers/random-events.js';

function listing(rows: Array<{ table: string; rows: number; columns: string[] }>): Uint8Array {
  return tableToIPC(
    new Table({
      table: vectorFromArray(rows.map((r) => r.table), new Utf8()),
      rows: vectorFromArray(rows.map((r) => BigInt(r.rows)), new Int64()),
      columns: vectorFromArray(rows.map((r) => r.columns.join(',')), new Utf8()),
    }),
    'stream',
  );
}

describe('enrichment listing merge', () => {
  it('sums rows per table over shards and unions columns', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const r = rng(seed);
      const shards = 1 + Math.floor(r() * 8);
      const tables = Array.from({ length: 1 + Math.floor(r() * 5) }, (_, t) => ({
        table: `t${t}`,
        users: Array.from({ length: Math.floor(r() * 300) }, () => ({ shard: Math.floor(r() ** 2 * shards), cols: ['a', 'b', 'c', 'd'].filter(() => r() < 0.5) })),
      }));
      const perShard = Array.from({ length: shards }, (_, s) =>
        listing(
          tables
            .map((t) => {
              const mine = t.users.filter((u) => u.shard === s);
              const columns = [...new Set(mine.flatMap((u) => u.cols))];
              return { table: t.table, rows: mine.length, columns, present: mine.length > 0 };
            })
            .filter((t) => t.present),
        ),
      );
      const merged = mergeEnrichmentTask({}, perShard).tables;
      const expected = tables
        .filter((t) => t.users.length > 0)
        .map((t) => ({ table: t.table, rows: t.users.length, columns: [...new Set(t.users.flatMap((u) => u.cols))].sort() }));
      expect(merged.map((t) => ({ table: t.table, rows: t.rows, columns: [...t.columns].sort() }))).toEqual(expected);
      for (const t of merged) expect(t.shard_rows.reduce((a, b) => a + b, 0)).toBe(t.rows);
    }
  });

  it('orders columns as the catalog knows them', () => {
    const merged = mergeEnrichmentTask({ columns: { users: ['tier', 'country'] } }, [listing([{ table: 'users', rows: 2, columns: ['country', 'tier', 'x'] }])]);
    expect(merged.tables).toEqual([{ table: 'users', rows: 2, columns: ['tier', 'country', 'x'], shard_rows: [2] }]);
  });
});
