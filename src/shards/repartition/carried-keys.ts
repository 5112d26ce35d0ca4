/**
 * Idempotency-Key parts inside old batches (src/shards/batch-keys.ts), carried into the new
 * layout, so a retry after a re-partitioning is still recognised when its answer never reached
 * the key log (`dataDir/idempotency/keys.log`, which a re-partitioning leaves as it is).
 *
 * A key whose parts every old shard it spanned holds is written once, as one part covering the
 * whole request (`parts` 1, `events` = its total), in a zero-row batch at the end of new shard 0's
 * log: the key store then finds it held by every shard it spans and answers a retry with the
 * first answer. A key held by only some of its old shards (a crash in the middle of the request)
 * cannot be carried: its missing parts are named by old shard numbers, which mean other users
 * now; it is left out and counted.
 */
import { Field, Float64, Int64, RecordBatch, RecordBatchStreamWriter, Schema, Struct, Utf8, makeData, vectorFromArray } from 'apache-arrow';
import { KEYS_METADATA, keysOfBatchRecord } from '../batch-keys.js';
import { EVENT_BATCH_SCHEMA } from '../column-builder.js';
import type { LogRecord } from '../log/shard-log.js';
import type { StoredKey } from '../protocol.js';

export class CarriedKeys {
  private readonly byKey = new Map<string, { first: StoredKey; shards: Set<number> }>();

  /** Notes the keys of one old log record of old shard `shard`. */
  note(shard: number, rec: Pick<LogRecord, 'type' | 'payload'>): void {
    for (const k of keysOfBatchRecord(rec.type, rec.payload)) {
      const seen = this.byKey.get(k.key);
      if (seen) seen.shards.add(shard);
      else this.byKey.set(k.key, { first: k, shards: new Set([shard]) });
    }
  }

  /** Keys held by every old shard they spanned, each as one whole-request part. */
  complete(): StoredKey[] {
    return [...this.byKey.values()].filter((k) => k.shards.size >= k.first.parts).map(({ first }) => ({ ...first, events: first.total, parts: 1 }));
  }

  /** Keys some of whose parts no old shard held. */
  get incomplete(): number {
    return [...this.byKey.values()].filter((k) => k.shards.size < k.first.parts).length;
  }
}

/** A zero-row event batch whose schema metadata carries `keys` (as batch-keys.ts writes them). */
export function keysBatchIpc(keys: StoredKey[]): Uint8Array {
  const tuples = keys.map((k) => [k.key, k.hash, k.at, k.events, k.total, k.parts, k.wait ? 1 : 0]);
  const schema = new Schema(EVENT_BATCH_SCHEMA.fields, new Map([[KEYS_METADATA, JSON.stringify(tuples)]]));
  const children = EVENT_BATCH_SCHEMA.fields.map((f: Field) => vectorFromArray([], f.type instanceof Utf8 ? new Utf8() : f.type instanceof Int64 ? new Int64() : new Float64()).data[0]!);
  const struct = makeData({ type: new Struct(schema.fields), length: 0, nullCount: 0, children });
  return RecordBatchStreamWriter.writeAll([new RecordBatch(schema, struct)]).toUint8Array(true);
}
