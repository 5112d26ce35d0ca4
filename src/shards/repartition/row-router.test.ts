import { describe, expect, it } from 'vitest';
import { Float64, LargeUtf8, Table, Utf8, tableFromIPC, tableToIPC, vectorFromArray } from 'apache-arrow';
import { RowRouter, type SealedPart } from './row-router.js';
import { shardForUser } from '../../router/route-hash.js';

interface Row {
  timestamp: number;
  event_type: string;
  user_id: string;
  value: number | null;
  metadata: string | null;
}

const rows: Row[] = Array.from({ length: 500 }, (_, i) => ({
  timestamp: 1_700_000_000_000 + i,
  event_type: ['view', 'click', 'ünïcode 👀'][i % 3]!,
  user_id: `user-${i % 97}`,
  value: i % 5 === 0 ? null : i * 1.5,
  metadata: i % 4 === 0 ? null : JSON.stringify({ i, tag: `t${i % 3}` }),
}));

function batchIpc(stringType: () => Utf8 | LargeUtf8): Uint8Array {
  const col = (k: 'event_type' | 'user_id' | 'metadata') => vectorFromArray(rows.map((r) => r[k]), stringType());
  return tableToIPC(
    new Table({
      timestamp: vectorFromArray(rows.map((r) => r.timestamp), new Float64()),
      event_type: col('event_type'),
      user_id: col('user_id'),
      value: vectorFromArray(rows.map((r) => r.value), new Float64()),
      metadata: col('metadata'),
    }),
    'stream',
  );
}

function routed(ipc: Uint8Array, shards: number, maxBatchRows: number): { parts: SealedPart[]; out: Row[][] } {
  const parts: SealedPart[] = [];
  const router = new RowRouter(shards, maxBatchRows, (p) => parts.push(p));
  expect(router.route(ipc)).toBe(rows.length);
  router.flush();
  const out: Row[][] = Array.from({ length: shards }, () => []);
  for (const p of parts) {
    const t = tableFromIPC(p.ipc);
    expect(t.numRows).toBe(p.rows);
    for (const r of t.toArray()) out[p.shard]!.push({ timestamp: Number(r.timestamp), event_type: r.event_type, user_id: r.user_id, value: r.value, metadata: r.metadata });
  }
  return { parts, out };
}

describe('RowRouter', () => {
  it.each([
    ['Utf8 (as a shard seals)', () => new Utf8()],
    ['LargeUtf8 (as polars writes an export page)', () => new LargeUtf8()],
  ])('sends every row of a %s batch to the shard owning its user, unchanged and in order, in batches of at most maxBatchRows', (_what, type) => {
    const { parts, out } = routed(batchIpc(type), 3, 40);
    expect(parts.every((p) => p.rows <= 40)).toBe(true);
    for (let s = 0; s < 3; s++) expect(out[s]).toEqual(rows.filter((r) => shardForUser(r.user_id, 3) === s));
  });
});
