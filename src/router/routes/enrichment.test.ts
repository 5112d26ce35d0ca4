/** Upsert encoding: every row lands in its user's shard's Arrow stream, values intact. */
import { describe, expect, it } from 'vitest';
import { tableFromIPC } from 'apache-arrow';
import { encodeShardRows } from './enrichment.js';
import { shardForUser } from '../route-hash.js';
import { parseEnrichmentUpsert } from './enrichment-request.js';
import { rng } from '../../../test/helpers/random-events.js';

const SAMPLES = ['DE', '', 'ünïcode ✓', '😀 emoji', 'a,b', null, 'x'.repeat(1024)];

describe('encodeShardRows', () => {
  it('routes each row to the shard that owns its user and keeps every value (UTF-8, nulls)', () => {
    for (const shards of [1, 2, 4, 7]) {
      const r = rng(shards);
      const rows = Array.from({ length: 3000 }, (_, i) => ({
        user_id: i % 11 === 0 ? `ü-${i}-✓` : `user-${Math.floor(r() * 5000)}`,
        country: SAMPLES[Math.floor(r() * SAMPLES.length)],
        tier: r() < 0.3 ? null : Math.floor(r() * 5),
        vip: r() < 0.5,
      }));
      const upsert = parseEnrichmentUpsert('users', { rows }, []);
      const expected = new Map(upsert.rows.map((row) => [row.userId, row.values]));
      const seen = new Set<string>();
      for (const [shard, ipc] of encodeShardRows(upsert, shards)) {
        const table = tableFromIPC(ipc);
        expect(table.schema.fields.map((f) => f.name)).toEqual(['user_id', 'country', 'tier', 'vip']);
        for (const row of table.toArray()) {
          const user = row.user_id as string;
          expect(shardForUser(user, shards)).toBe(shard);
          expect([row.country, row.tier, row.vip]).toEqual(expected.get(user));
          seen.add(user);
        }
      }
      expect(seen.size).toBe(expected.size);
    }
  });

  it('keeps the last row of a user and stores numbers and booleans as JSON text', () => {
    const upsert = parseEnrichmentUpsert('users', { rows: [{ user_id: 'a', tier: 1 }, { user_id: 'b', vip: true }, { user_id: 'a', tier: 2.5 }] }, []);
    expect(upsert.rows).toEqual([
      { userId: 'b', values: [null, 'true'] },
      { userId: 'a', values: ['2.5', null] },
    ]);
  });
});
