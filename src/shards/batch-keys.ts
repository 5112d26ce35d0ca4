/**
 * Worker side: Idempotency-Key parts inside sealed batches.
 *
 * A keyed request's part on a shard arrives as a KEYED_PART marker followed by its events
 * (ring-record.ts). The shard never seals in the middle of a part, and writes the keys of the
 * parts a batch holds into that batch's Arrow schema metadata (`KEYS_METADATA`), so a key is in
 * the same log record, under the same checksum and the same sync, as its events: after any crash
 * either both are in the log or neither is. polars ignores schema metadata.
 *
 * At start the shard collects the keys of every batch in its log (`keysOfBatchRecord`, called by
 * the open scan) and reports them to the main thread, which then knows, for a request that was in
 * flight at a crash, which shards have its part.
 */
import { RecordBatchReader } from 'apache-arrow';
import { LogRecordType, decodeNumberedBatch, type LogRecordTypeValue } from './log/shard-log.js';
import type { KeyedPart } from './ring-record.js';
import type { StoredKey } from './protocol.js';

export const KEYS_METADATA = 'shardlytics.idempotency_keys';
const KEYS_METADATA_BYTES = Buffer.from(KEYS_METADATA);

/** [key, SHA-256 base64url, at ms, events on this shard, events of the request, shards, wait 0|1] */
type KeyTuple = [string, string, number, number, number, number, number];

export class BatchKeys {
  private parts: KeyedPart[] = [];
  private open: KeyedPart | null = null;
  private remaining = 0;

  /** A marker: the next `part.events` event records are this part. */
  begin(part: KeyedPart): void {
    if (this.open) throw new Error(`keyed part ${part.key} opened inside part ${this.open.key} (${this.remaining} events short)`);
    if (part.events === 0) {
      this.parts.push(part);
      return;
    }
    this.open = part;
    this.remaining = part.events;
  }

  /** An event record went into the builder. */
  event(): void {
    if (this.open && --this.remaining === 0) {
      this.parts.push(this.open);
      this.open = null;
    }
  }

  /** A column block of `n` events went into the builder (a block never spans two parts). */
  events(n: number): void {
    if (!this.open) return;
    if (n > this.remaining) throw new Error(`column block of ${n} events overruns keyed part ${this.open.key} (${this.remaining} events left)`);
    this.remaining -= n;
    if (this.remaining === 0) {
      this.parts.push(this.open);
      this.open = null;
    }
  }

  /** Inside a part: the builder must not seal now (its other events are still in the ring). */
  get inPart(): boolean {
    return this.open !== null;
  }

  /** The keys of the parts in the builder as schema metadata (undefined when none); forgets them. */
  take(): Map<string, string> | undefined {
    if (this.parts.length === 0) return undefined;
    const tuples: KeyTuple[] = this.parts.map((p) => [p.key, Buffer.from(p.hash).toString('base64url'), p.at, p.events, p.total, p.parts, p.wait ? 1 : 0]);
    this.parts = [];
    return new Map([[KEYS_METADATA, JSON.stringify(tuples)]]);
  }
}

/** The Arrow IPC stream inside a batch record, or null for records that are not event batches. */
function batchIpc(type: LogRecordTypeValue, payload: Uint8Array): Uint8Array | null {
  if (type === LogRecordType.EVENT_BATCH) return payload;
  if (type === LogRecordType.NUMBERED_BATCH) return decodeNumberedBatch(payload).ipc;
  return null;
}

/**
 * The keys a logged batch carries (empty for batches without keys and other records). Only the
 * IPC stream's schema message is looked at, and only when it names `KEYS_METADATA`.
 */
export function keysOfBatchRecord(type: LogRecordTypeValue, payload: Uint8Array): StoredKey[] {
  const ipc = batchIpc(type, payload);
  if (!ipc || ipc.byteLength < 8) return [];
  // IPC stream: 0xFFFFFFFF, i32 schema message length, the schema message.
  const view = new DataView(ipc.buffer, ipc.byteOffset, 8);
  const schemaBytes = view.getUint32(0, true) === 0xffffffff ? view.getInt32(4, true) : view.getInt32(0, true);
  const schema = Buffer.from(ipc.buffer, ipc.byteOffset, Math.min(ipc.byteLength, 8 + Math.max(0, schemaBytes)));
  if (schema.indexOf(KEYS_METADATA_BYTES) < 0) return [];
  const reader = RecordBatchReader.from(ipc);
  reader.open();
  const text = reader.schema.metadata.get(KEYS_METADATA);
  if (!text) return [];
  return (JSON.parse(text) as KeyTuple[]).map(([key, hash, at, events, total, parts, wait]) => ({ key, hash, at, events, total, parts, wait: wait === 1 }));
}
