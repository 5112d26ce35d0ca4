/**
 * Splits sealed event batches by the routing hash into one column builder per new shard.
 *
 * Rows are read from the Arrow buffers as bytes (strings are never decoded): the user id's UTF-8
 * bytes go straight to the routing hash, and every string is copied once, into a small scratch
 * laid out as a ring record's strings, which the shard's own ColumnBuilder appends, so a
 * re-partitioned batch has exactly the schema and encoding of one sealed from the ring.
 */
import { RecordBatchReader, type Data, type RecordBatch } from 'apache-arrow';
import { ColumnBuilder } from '../column-builder.js';
import type { RecordView } from '../ring-record.js';
// The router's own routing function: rows must land where ingest would send them. A pure leaf
// module (no router state), so importing it here does not tie the shard layer to the router.
import { shardForUserBytes } from '../../router/route-hash.js';

export interface SealedPart {
  shard: number;
  ipc: Uint8Array;
  rows: number;
}

/** A string column's UTF-8 bytes per row, or null for a null. */
type StringColumn = (row: number) => Uint8Array | null;

const encoder = new TextEncoder();

function stringColumn(batch: RecordBatch, name: string): StringColumn {
  const child = batch.getChild(name);
  if (!child || child.data.length !== 1) throw new Error(`event batch: expected one chunk of column \`${name}\`, got ${child ? child.data.length : 'none'}`);
  const data: Data = child.data[0]!;
  if (data.valueOffsets instanceof Int32Array) {
    // plain Utf8 (what a shard seals): the bytes as they are, no decoding
    const offsets = data.valueOffsets;
    const values = data.values as Uint8Array;
    return (row) => (data.getValid(row) ? values.subarray(offsets[row]!, offsets[row + 1]!) : null);
  }
  if (data.valueOffsets instanceof BigInt64Array) {
    // LargeUtf8 (polars' export pages, read when re-partitioning a shard's segments): the same
    // bytes behind 64-bit offsets
    const offsets = data.valueOffsets;
    const values = data.values as Uint8Array;
    return (row) => (data.getValid(row) ? values.subarray(Number(offsets[row]!), Number(offsets[row + 1]!)) : null);
  }
  // any other string layout (Utf8View): through the vector's own reader
  return (row) => {
    const v = child.get(row) as string | null;
    return v === null ? null : encoder.encode(v);
  };
}

export class RowRouter {
  private readonly builders: ColumnBuilder[];
  private scratch = new Uint8Array(64 * 1024);
  /** rows routed to each new shard */
  readonly rows: number[];

  /**
   * @param shards the new shard count
   * @param maxBatchRows a builder is sealed once it holds this many rows
   * @param emit takes each sealed batch, in order per shard
   */
  constructor(
    private readonly shards: number,
    private readonly maxBatchRows: number,
    private readonly emit: (part: SealedPart) => void,
  ) {
    this.builders = Array.from({ length: shards }, () => new ColumnBuilder());
    this.rows = new Array<number>(shards).fill(0);
  }

  /** Routes every row of an event batch's Arrow IPC stream; returns how many. */
  route(ipc: Uint8Array): number {
    let n = 0;
    for (const batch of RecordBatchReader.from(ipc)) n += this.routeBatch(batch);
    return n;
  }

  private routeBatch(batch: RecordBatch): number {
    const ts = batch.getChild('timestamp');
    const value = batch.getChild('value');
    if (!ts || !value) throw new Error('event batch: expected columns `timestamp` and `value`');
    const eventType = stringColumn(batch, 'event_type');
    const userId = stringColumn(batch, 'user_id');
    const metadata = stringColumn(batch, 'metadata');
    for (let i = 0; i < batch.numRows; i++) {
      const et = eventType(i);
      const u = userId(i);
      if (et === null || u === null) throw new Error(`event batch: row ${i} has a null event_type or user_id`);
      const m = metadata(i);
      const hasMetadata = m !== null;
      const etLen = et.length;
      const uLen = u.length;
      const mLen = m?.length ?? 0;
      if (this.scratch.length < etLen + uLen + mLen) this.scratch = new Uint8Array(2 * (etLen + uLen + mLen));
      const s = this.scratch;
      s.set(et, 0);
      s.set(u, etLen);
      if (m) s.set(m, etLen + uLen);
      const shard = shardForUserBytes(s.subarray(etLen, etLen + uLen), this.shards);
      const v = value.get(i) as number | null;
      const view = {
        kind: 0,
        timestamp: Number(ts.get(i)),
        value: v === null ? null : v,
        eventTypeStart: 0,
        eventTypeLen: etLen,
        userIdStart: etLen,
        userIdLen: uLen,
        metadataStart: etLen + uLen,
        metadataLen: mLen,
        hasMetadata,
        next: 0,
      } as RecordView;
      const builder = this.builders[shard]!;
      builder.append(s, view);
      this.rows[shard]!++;
      if (builder.rows >= this.maxBatchRows) this.seal(shard);
    }
    return batch.numRows;
  }

  /** Seals what every builder holds. */
  flush(): void {
    for (let shard = 0; shard < this.shards; shard++) this.seal(shard);
  }

  private seal(shard: number): void {
    const sealed = this.builders[shard]!.seal();
    if (sealed) this.emit({ shard, ipc: sealed.ipc, rows: sealed.rows });
  }
}
