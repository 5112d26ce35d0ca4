/**
 * POST /ingest/arrow, step 3: each row's shard by its user id, with the routing hash of every
 * other route (route-hash.ts: `jumpConsistentHash(fnv1a32(utf8(user_id)), shards)`), hashed once
 * per distinct dictionary entry or once per row; then the rows grouped by shard with a counting
 * sort into one index list, so the writer reads each shard's rows in their original order.
 */
import { shardForUserRange } from '../route-hash.js';
import type { StringColumn } from './read-arrow.js';

/** Rows of shard `s` are `order[bounds[s]..bounds[s + 1])`, in row order. */
export interface ShardOrder {
  order: Uint32Array;
  bounds: Int32Array;
}

export function orderByShard(userId: StringColumn, rows: number, shards: number): ShardOrder {
  const shardOf = new Uint8Array(rows);
  if (shards > 1) {
    if (userId.kind === 'plain') {
      const { data, offsets } = userId.strings;
      for (let i = 0; i < rows; i++) shardOf[i] = shardForUserRange(data, offsets[i]!, offsets[i + 1]!, shards);
    } else {
      const { data, offsets, count } = userId.entries;
      // 255: not hashed yet (shards ≤ 64); only the entries some row uses are hashed
      const entryShard = new Uint8Array(count).fill(255);
      for (let i = 0; i < rows; i++) {
        const k = userId.codes[i]!;
        let s = entryShard[k]!;
        if (s === 255) s = entryShard[k] = shardForUserRange(data, offsets[k]!, offsets[k + 1]!, shards);
        shardOf[i] = s;
      }
    }
  }
  return groupByShard(shardOf, shards);
}

/** Rows grouped by their shard (`shardOf[row]`), each shard's in row order: a counting sort. */
export function groupByShard(shardOf: Uint8Array, shards: number): ShardOrder {
  const rows = shardOf.length;
  const bounds = new Int32Array(shards + 1);
  for (let i = 0; i < rows; i++) bounds[shardOf[i]! + 1]!++;
  for (let s = 0; s < shards; s++) bounds[s + 1]! += bounds[s]!;
  const next = bounds.slice(0, shards);
  const order = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) order[next[shardOf[i]!]!++] = i;
  return { order, bounds };
}

/**
 * A lower bound of the ring bytes each shard's rows take as column blocks (ring-block.ts): the
 * fixed bytes per row plus their event_type and user_id bytes (metadata, bitmaps and block
 * headers left out), so a shard whose ring has less room can be refused before any row is
 * checked or encoded.
 */
export function minShardBytes(eventType: StringColumn, userId: StringColumn, order: ShardOrder, into: Float64Array): void {
  const shards = order.bounds.length - 1;
  for (let s = 0; s < shards; s++) {
    let bytes = 28 * (order.bounds[s + 1]! - order.bounds[s]!);
    for (let k = order.bounds[s]!; k < order.bounds[s + 1]!; k++) {
      const r = order.order[k]!;
      bytes += stringBytes(eventType, r) + stringBytes(userId, r);
    }
    into[s]! += bytes;
  }
}

function stringBytes(col: StringColumn, r: number): number {
  if (col.kind === 'plain') return col.strings.offsets[r + 1]! - col.strings.offsets[r]!;
  const k = col.codes[r]!;
  return col.entries.offsets[k + 1]! - col.entries.offsets[k]!;
}
